//! `/graphql`: operations over POST only, GraphiQL's page over GET when enabled.
//!
//! The handler reads the body itself so that every refusal (size, media type, JSON,
//! limits) answers in the GraphQL error shape with a stable code, in the media type the
//! client accepts (see `accept`).

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
    web,
};
use juniper::http::{GraphQLBatchRequest, GraphQLRequest, GraphQLResponse};
use serde::Serialize;

use super::accept::ResponseMedia;
use crate::{
    error::{AppError, graphql_error_body},
    graphql::{Context, GraphqlSettings, Schema, limits::RequestLimits, metrics::OperationMetrics, operation, schema},
    state::AppState,
};

/// The schema and the request rules, built once at start-up.
pub struct GraphqlEndpoint {
    schema: std::sync::Arc<Schema>,
    limits: RequestLimits,
    max_body_bytes: usize,
    graphiql: bool,
}

impl GraphqlEndpoint {
    pub fn new(settings: &GraphqlSettings) -> Self {
        Self {
            schema: schema::build(settings).into(),
            limits: RequestLimits::from(settings),
            max_body_bytes: settings.max_body_bytes.get(),
            graphiql: settings.graphiql,
        }
    }

    /// The schema, for the WebSocket connections that share it.
    pub fn schema(&self) -> std::sync::Arc<Schema> {
        self.schema.clone()
    }

    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// Whether the GraphiQL IDE is served.
    pub fn graphiql(&self) -> bool {
        self.graphiql
    }
}

/// One operation's answer: juniper's response, or the reason it never ran.
#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Executed(GraphQLResponse),
    Refused(serde_json::Value),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Single(Outcome),
    Batch(Vec<Outcome>),
}

/// Answers in the media type the client accepts, errors included.
pub async fn post(
    request: HttpRequest,
    payload: web::Payload,
    endpoint: web::Data<GraphqlEndpoint>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(media) = ResponseMedia::negotiate(&request) else {
        let mut refusal = AppError::NotAcceptable.error_response();
        ResponseMedia::Json.label(&mut refusal);
        return refusal;
    };
    let mut response = answer(&request, payload, &endpoint, &state, media)
        .await
        .unwrap_or_else(|error| error.error_response());
    media.label(&mut response);
    response
}

async fn answer(
    request: &HttpRequest,
    payload: web::Payload,
    endpoint: &GraphqlEndpoint,
    state: &AppState,
    media: ResponseMedia,
) -> Result<HttpResponse, AppError> {
    ensure_json(request)?;
    let limit = endpoint.max_body_bytes;
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit })?
        .map_err(|e| AppError::BadRequest(format!("could not read the request body: {e}")))?;
    let operations: GraphQLBatchRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("malformed GraphQL request: {e}")))?;
    endpoint.limits.check_request(&operations)?;
    crate::telemetry::record_graphql_operation(|| operation::name(&operations));

    let context = Context {
{%- if auth %}
        auth: crate::auth::RequestAuth::from_request(request, &state.auth).await?.into(),
{%- endif %}
        state: state.clone(),
    };
    let (answer, all_executed) = match operations {
        GraphQLBatchRequest::Single(operation) => {
            let outcome = execute(endpoint, &context, operation).await;
            let executed = matches!(outcome, Outcome::Executed(_));
            (Answer::Single(outcome), executed)
        }
        GraphQLBatchRequest::Batch(operations) => {
            let mut outcomes = Vec::with_capacity(operations.len());
            for operation in operations {
                outcomes.push(execute(endpoint, &context, operation).await);
            }
            let executed = outcomes.iter().all(|o| matches!(o, Outcome::Executed(_)));
            (Answer::Batch(outcomes), executed)
        }
    };
    // Errors raised while running are part of a 200 answer next to the data; a
    // document that could not run at all is a 400 where the media type allows it.
    let status = if all_executed {
        StatusCode::OK
    } else {
        media.status_when_nothing_ran()
    };
    let mut response = HttpResponse::build(status);
{%- if auth %}
    context.auth.write_cookies(&mut response, &state.auth);
{%- endif %}
    Ok(response.json(answer))
}

async fn execute(
    endpoint: &GraphqlEndpoint,
    context: &Context,
    operation: GraphQLRequest,
) -> Outcome {
    if let Err(refusal) = endpoint.limits.check_document(&operation.query) {
        return Outcome::Refused(refusal.graphql_body());
    }
    let schema = &endpoint.schema;
    let metrics = OperationMetrics::start(schema, &operation);
    let executed = operation.execute(schema, context).await.into_result();
    metrics.finish(&executed);
    match executed {
        Ok(result) => Outcome::Executed(GraphQLResponse::from_result(Ok(result))),
        Err(error) => Outcome::Refused(graphql_error_body(&error)),
    }
}

fn ensure_json(request: &HttpRequest) -> Result<(), AppError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType)
    }
}

/// GraphiQL for developers. Operations never run over GET: a GET carrying a query
/// could be triggered cross-site by a link or an image tag.
pub async fn get(
    request: HttpRequest,
    endpoint: web::Data<GraphqlEndpoint>,
) -> Result<HttpResponse, AppError> {
    let carries_operation = request
        .query_string()
        .split('&')
        .any(|pair| pair == "query" || pair.starts_with("query="));
    if carries_operation || !endpoint.graphiql {
        return Err(AppError::MethodNotAllowed);
    }
    Ok(super::graphiql::page())
}

pub async fn other_method() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}
