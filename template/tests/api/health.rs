use serde_json::Value;

use {{crate_name}}::health::probe;

use crate::helpers::{free_port, spawn_app};

#[tokio::test]
async fn liveness_answers_200() {
    let app = spawn_app().await;

    let response = app.get("/health/live").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = spawn_app().await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["ok"], true);
}

#[tokio::test]
async fn graphql_health_field_matches_the_readiness_probe() {
    let app = spawn_app().await;

    let response = app
        .post_graphql("{ health { ready checks { name ok } } }")
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["health"]["ready"], true);
    assert_eq!(body["data"]["health"]["checks"][0]["name"], "database");
}

#[tokio::test]
async fn the_healthcheck_probe_passes_only_on_a_ready_answer() {
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let closed = free_port();

    let outcomes = tokio::task::spawn_blocking(move || {
        [
            probe(port, "/health/ready"),
            probe(port, "/no-such-path"),
            probe(closed, "/health/ready"),
        ]
    })
    .await
    .unwrap();

    let [ready, missing, nothing] = outcomes;
    assert!(ready.is_ok(), "{ready:?}");
    assert!(missing.unwrap_err().to_string().contains("404"));
    assert!(nothing.is_err());
}
