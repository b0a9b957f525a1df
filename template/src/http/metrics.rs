//! Metrics of every HTTP request: `http_requests_total` and
//! `http_request_duration_seconds`, labelled by `method`, `route` and `status`.
//!
//! `route` is the pattern of the route that matched (`/graphql`), or `unmatched`: a
//! client's path never becomes a label, so scanning for URLs cannot mint series. A method
//! outside the standard ones is `OTHER` for the same reason.

use std::{cell::RefCell, collections::HashMap, time::Instant};

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
};

use crate::monitoring::{TimedSeries, record_timed};

/// Method, route and status of the requests each series counts.
type Labels = (&'static str, String, u16);

thread_local! {
    static SERIES: RefCell<HashMap<Labels, TimedSeries>> = RefCell::default();
}

/// Records the request once the handler has answered; the body's streaming is not timed.
pub async fn record_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.call(request).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let labels = (method, route, status.as_u16());
    record_timed(&SERIES, labels, started.elapsed(), register);
    response
}

fn register((method, route, status): &Labels) -> TimedSeries {
    let labels = [
        ("method", (*method).to_string()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    TimedSeries::new(
        metrics::counter!("http_requests_total", &labels),
        metrics::histogram!("http_request_duration_seconds", &labels),
    )
}

fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|standard| *standard == method.as_str())
        .unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            "OTHER"
        );
    }
}
