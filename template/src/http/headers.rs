//! Headers on every `/graphql` response, whatever its status. Answers are per caller and
//! may carry secrets, so no cache may keep them (`Cache-Control: no-store`).
{%- if auth %} With
//! `auth.secure_cookie` on, the service is served over HTTPS, and HSTS tells browsers to
//! use nothing else for two years (OWASP ASVS 5.0 V3.4.1).
{%- endif %}

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
};

pub async fn graphql_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
{%- if auth %}
    let hsts = request
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .is_some_and(|state| state.auth.settings.secure_cookie);
{%- endif %}
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
{%- if auth %}
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
{%- endif %}
    Ok(response)
}
