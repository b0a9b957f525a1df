//! Headers on every `/graphql` response, whatever its status. Answers are per caller and
//! may carry secrets, so no cache may keep them (`Cache-Control: no-store`). With
//! `http.https` on, HSTS tells browsers to use nothing but HTTPS for two years (OWASP ASVS
//! 5.0 V3.4.1).

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
    web,
};

use super::HttpSettings;

pub async fn graphql_headers(
    settings: web::Data<HttpSettings>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if settings.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    Ok(response)
}
