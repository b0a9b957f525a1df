//! Readiness of the service's dependencies, shared by `/health/ready` and the GraphQL
//! `health` field.

use std::{fmt::Display, future::Future, time::Duration};

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
    let timeout = state.health_timeout;
    let checks = vec![
        // One line per dependency; modules add theirs.
        check("database", timeout, state.storage.ping(timeout)).await,
{%- if uses_redis %}
        check("redis", timeout, state.redis.ping()).await,
{%- endif %}
{%- if email %}
        check("mail", timeout, state.mailer.check()).await,
{%- endif %}
    ];
    HealthReport {
        ready: checks.iter().all(|check| check.ok),
        checks,
    }
}

async fn check<E: Display>(
    name: &str,
    timeout: Duration,
    probe: impl Future<Output = Result<(), E>>,
) -> HealthCheck {
    let ok = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(dependency = name, error = %error, "Dependency is not ready");
            false
        }
        Err(_) => {
            tracing::warn!(
                dependency = name,
                ?timeout,
                "Dependency did not answer in time"
            );
            false
        }
    };
    HealthCheck {
        name: name.to_string(),
        ok,
    }
}
