//! Readiness of the service's dependencies, shared by `/health/ready` and the GraphQL
//! `health` field.

use juniper::GraphQLObject;
use serde::Serialize;

use crate::state::AppState;

/// Whether every dependency answered, and how each one did.
#[derive(Debug, Serialize, GraphQLObject)]
pub struct HealthReport {
    pub ready: bool,
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Serialize, GraphQLObject)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
}

/// Checks each dependency once; failures are logged here and reported as `ok: false`.
#[tracing::instrument(name = "Checking readiness", skip_all)]
pub async fn readiness(state: &AppState) -> HealthReport {
    let database = match state.storage.ping(state.health_timeout).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error, backend = state.storage.backend(), "Database is not ready");
            false
        }
    };
    let checks = vec![HealthCheck {
        name: "database".to_string(),
        ok: database,
    }];
    HealthReport {
        ready: checks.iter().all(|check| check.ok),
        checks,
    }
}
