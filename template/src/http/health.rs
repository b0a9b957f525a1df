//! Liveness and readiness probes for orchestrators and load balancers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// The process is up and serving HTTP; says nothing about dependencies.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when every dependency answered, 503 otherwise, with a per-dependency report
/// (at most a second old).
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = state.readiness.report().await;
    if report.ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}
