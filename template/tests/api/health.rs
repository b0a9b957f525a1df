use serde_json::Value;

use crate::helpers::spawn_app;

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
