//! The one place where failures become HTTP statuses and GraphQL error codes.
//!
//! Clients see a short public message and a stable `extensions.code`; the cause chain of
//! an internal error goes to the log only.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use juniper::{FieldError, GraphQLError, IntoFieldError, ScalarValue, graphql_value};
use serde_json::{Value, json};

/// Stable, machine-readable error codes, sent as `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    BadUserInput,
    Unauthenticated,
    ReauthenticationRequired,
    Forbidden,
    RateLimited,
    ServiceUnavailable,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    QueryTooComplex,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotAcceptable,
    MethodNotAllowed,
    Internal,
}

impl ErrorCode {
    /// Every code, so that a code read back from a response maps to one of them.
    pub const ALL: [Self; 15] = [
        Self::BadRequest,
        Self::BadUserInput,
        Self::Unauthenticated,
        Self::ReauthenticationRequired,
        Self::Forbidden,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::GraphqlParseFailed,
        Self::GraphqlValidationFailed,
        Self::QueryTooComplex,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::NotAcceptable,
        Self::MethodNotAllowed,
        Self::Internal,
    ];

    /// The code spelt `code`, if it is one of these.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::ReauthenticationRequired => "REAUTHENTICATION_REQUIRED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The HTTP request is not a usable GraphQL request (malformed JSON, no query).
    #[error("{0}")]
    BadRequest(String),
    /// A resolver argument failed validation; the message says which and why.
    #[error("{0}")]
    BadUserInput(String),
    /// No valid session, or wrong credentials; the message never says which part failed.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The session is signed in, but not recently enough for a sensitive operation:
    /// `reauthenticate` first.
    #[error("confirm your password to continue: call reauthenticate, then try again")]
    ReauthenticationRequired,
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("too many attempts: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    QueryTooComplex(String),
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send GraphQL requests as application/json")]
    UnsupportedMediaType,
    #[error("accept application/graphql-response+json or application/json")]
    NotAcceptable,
    #[error("GraphQL operations are sent with POST")]
    MethodNotAllowed,
    /// A dependency (Redis, SMTP) is down; retrying later can succeed.
    #[error("a service this request needs is unavailable, retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::BadUserInput(_) => ErrorCode::BadUserInput,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::QueryTooComplex(_) => ErrorCode::QueryTooComplex,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::NotAcceptable => ErrorCode::NotAcceptable,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What a client may read: never the cause of an internal error.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "Internal server error".to_string(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        match self {
            Self::Internal(error) => {
                tracing::error!(error.cause_chain = ?error, error.message = %error, "Request failed");
            }
            Self::Unavailable(error) => {
                tracing::warn!(error.cause_chain = ?error, error.message = %error, "Dependency unavailable");
            }
            _ => {}
        }
    }

    /// `extensions` of the GraphQL error: the code, plus a retry hint when limited.
    fn extensions<S: ScalarValue>(&self) -> juniper::Value<S> {
        let code = self.code().as_str();
        match self {
            Self::RateLimited { retry_after_secs } => {
                let retry_after = i32::try_from(*retry_after_secs).unwrap_or(i32::MAX);
                graphql_value!({ "code": code, "retryAfter": retry_after })
            }
            _ => graphql_value!({ "code": code }),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadUserInput(_) | Self::QueryTooComplex(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::ReauthenticationRequired | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Every error body has the GraphQL shape, so clients parse one format.
    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::MethodNotAllowed => {
                response.insert_header(("Allow", "POST"));
            }
            Self::RateLimited { retry_after_secs } => {
                response.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(self.graphql_body())
    }
}

impl AppError {
    /// A GraphQL response holding this error alone.
    pub fn graphql_body(&self) -> Value {
        let extensions: juniper::Value = self.extensions();
        json!({
            "errors": [{
                "message": self.public_message(),
                "extensions": extensions,
            }]
        })
    }
}

impl<S: ScalarValue> IntoFieldError<S> for AppError {
    fn into_field_error(self) -> FieldError<S> {
        self.log();
        FieldError::new(self.public_message(), self.extensions())
    }
}

/// Code for a document juniper refused before running it.
pub fn graphql_error_code(error: &GraphQLError) -> ErrorCode {
    use juniper::parser::ParseError;
    match error {
        GraphQLError::ParseError(parse) => match parse.item {
            ParseError::DepthLimitExceeded(_)
            | ParseError::TokenLimitExceeded(_)
            | ParseError::FieldLimitExceeded(_) => ErrorCode::QueryTooComplex,
            _ => ErrorCode::GraphqlParseFailed,
        },
        GraphQLError::ValidationError(_) => ErrorCode::GraphqlValidationFailed,
        _ => ErrorCode::BadRequest,
    }
}

/// juniper's own error list (messages and locations) with `extensions.code` added.
pub fn graphql_error_body(error: &GraphQLError) -> Value {
    let code = graphql_error_code(error).as_str();
    let mut errors = serde_json::to_value(error).unwrap_or_else(|_| json!([]));
    if let Some(list) = errors.as_array_mut() {
        for entry in list.iter_mut().filter_map(Value::as_object_mut) {
            entry.insert("extensions".into(), json!({ "code": code }));
        }
    }
    json!({ "errors": errors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: &AppError) -> Value {
        let bytes = error
            .error_response()
            .into_body()
            .try_into_bytes()
            .expect("a JSON body");
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    #[test]
    fn every_code_parses_back_from_its_spelling() {
        for code in ErrorCode::ALL {
            // A new variant fails to compile here until it is listed in `ALL` too.
            match code {
                ErrorCode::BadRequest
                | ErrorCode::BadUserInput
                | ErrorCode::Unauthenticated
                | ErrorCode::ReauthenticationRequired
                | ErrorCode::Forbidden
                | ErrorCode::RateLimited
                | ErrorCode::ServiceUnavailable
                | ErrorCode::GraphqlParseFailed
                | ErrorCode::GraphqlValidationFailed
                | ErrorCode::QueryTooComplex
                | ErrorCode::PayloadTooLarge
                | ErrorCode::UnsupportedMediaType
                | ErrorCode::NotAcceptable
                | ErrorCode::MethodNotAllowed
                | ErrorCode::Internal => {}
            }
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("NOT_A_CODE"), None);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = AppError::Internal(anyhow::anyhow!("password=hunter2 leaked"));
        let body = body_of(&error);
        assert_eq!(body["errors"][0]["message"], "Internal server error");
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn field_errors_carry_the_stable_code() {
        let error: FieldError =
            AppError::BadUserInput("email is invalid".into()).into_field_error();
        assert_eq!(error.message(), "email is invalid");
        assert_eq!(
            error.extensions(),
            &graphql_value!({ "code": "BAD_USER_INPUT" })
        );
    }

    #[test]
    fn rate_limited_errors_say_when_to_retry() {
        let error = AppError::RateLimited {
            retry_after_secs: 42,
        };
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get("Retry-After").unwrap(), "42");
        let field: FieldError = error.into_field_error();
        assert_eq!(
            field.extensions(),
            &graphql_value!({ "code": "RATE_LIMITED", "retryAfter": 42 })
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_method() {
        let response = AppError::MethodNotAllowed.error_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get("Allow").unwrap(), "POST");
    }
}
