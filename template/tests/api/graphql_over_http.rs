//! GraphQL over HTTP, rule by rule: the media type follows `Accept`, and the status of a
//! document that cannot run depends on it.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, spawn_app};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Documents that never run: a parse failure, a validation failure and variables that do
/// not coerce, each with the code it must carry.
fn documents_that_cannot_run() -> [(Value, &'static str); 3] {
    [
        (json!({ "query": "{" }), "GRAPHQL_PARSE_FAILED"),
        (
            json!({ "query": "{ noSuchField }" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({ "query": "query Coerce($id: ID!) { __typename }", "variables": { "id": null } }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ]
}

async fn post(app: &TestApp, accept: Option<&str>, body: impl Into<String>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("Content-Type", JSON)
        .body(body.into());
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().await.expect("Failed to send the request")
}

fn content_type(response: &reqwest::Response) -> &str {
    response.headers()["content-type"].to_str().unwrap()
}

#[tokio::test]
async fn the_answer_comes_in_the_media_type_the_client_accepts() {
    let app = spawn_app().await;
    let query = json!({ "query": "{ __typename }" }).to_string();

    for (accept, expected) in [
        (Some(GRAPHQL_RESPONSE_JSON), GRAPHQL_RESPONSE_JSON),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE_JSON,
        ),
        (Some(JSON), JSON),
        (Some("*/*"), JSON),
        (None, JSON),
    ] {
        let response = post(&app, accept, query.clone()).await;

        assert_eq!(response.status(), 200, "with Accept: {accept:?}");
        assert!(
            content_type(&response).starts_with(expected),
            "with Accept: {accept:?}"
        );
        assert_eq!(response.headers()["vary"], "Accept");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
    }
}

#[tokio::test]
async fn a_client_that_accepts_neither_type_gets_406() {
    let app = spawn_app().await;

    let response = post(
        &app,
        Some("text/html"),
        json!({ "query": "{ __typename }" }).to_string(),
    )
    .await;

    assert_eq!(response.status(), 406);
    assert!(content_type(&response).starts_with(JSON));
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "NOT_ACCEPTABLE"
    );
}

#[tokio::test]
async fn a_document_that_cannot_run_is_a_400_without_data_for_graphql_response_clients() {
    let app = spawn_app().await;

    for (body, code) in documents_that_cannot_run() {
        let response = post(&app, Some(GRAPHQL_RESPONSE_JSON), body.to_string()).await;

        assert_eq!(response.status(), 400, "for {body}");
        assert!(content_type(&response).starts_with(GRAPHQL_RESPONSE_JSON));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), code, "for {body}");
        assert!(answer.get("data").is_none(), "data in {answer}");
    }
}

#[tokio::test]
async fn a_document_that_cannot_run_is_a_200_for_legacy_json_clients() {
    let app = spawn_app().await;

    for (body, code) in documents_that_cannot_run() {
        for accept in [Some(JSON), None] {
            let response = post(&app, accept, body.to_string()).await;

            assert_eq!(response.status(), 200, "for {body} with Accept: {accept:?}");
            assert!(content_type(&response).starts_with(JSON));
            let answer: Value = response.json().await.unwrap();
            assert_eq!(error_code(&answer), code, "for {body}");
            assert!(answer.get("data").is_none(), "data in {answer}");
        }
    }
}

#[tokio::test]
async fn a_request_that_is_no_graphql_request_is_a_400_in_either_media_type() {
    let app = spawn_app().await;

    for body in [
        "".to_string(),
        r#"{ "not a JSON"#.to_string(),
        json!({ "qeury": "{ __typename }" }).to_string(),
        json!({ "query": ["{ __typename }"] }).to_string(),
        json!({ "query": "{ __typename }", "operationName": 0 }).to_string(),
        json!({ "query": "{ __typename }", "variables": "string" }).to_string(),
        json!({ "query": "{ __typename }", "variables": ["list"] }).to_string(),
    ] {
        for (accept, media) in [(GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON), (JSON, JSON)] {
            let response = post(&app, Some(accept), body.clone()).await;

            assert_eq!(
                response.status(),
                400,
                "accepted {body} with Accept: {accept}"
            );
            assert!(content_type(&response).starts_with(media));
            assert_eq!(
                error_code(&response.json().await.unwrap()),
                "BAD_REQUEST",
                "for {body}"
            );
        }
    }
}

#[tokio::test]
async fn null_optional_parameters_and_extensions_are_accepted() {
    let app = spawn_app().await;

    for parameters in [
        json!({ "variables": null }),
        json!({ "operationName": null }),
        json!({ "extensions": null }),
        json!({ "extensions": { "some": "value" } }),
        json!({ "operationName": "Typename", "query": "query Typename { __typename }" }),
    ] {
        let mut body = json!({ "query": "{ __typename }" });
        body.as_object_mut()
            .unwrap()
            .extend(parameters.as_object().unwrap().clone());

        for accept in [GRAPHQL_RESPONSE_JSON, JSON] {
            let response = post(&app, Some(accept), body.to_string()).await;

            assert_eq!(response.status(), 200, "for {body}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(
                answer,
                json!({ "data": { "__typename": "Query" } }),
                "for {body}"
            );
        }
    }
}

#[tokio::test]
async fn requests_are_read_as_utf8_with_or_without_a_charset() {
    let app = spawn_app().await;
    let body = json!({ "query": r#"{ __type(name: "Run🏃Swim🏊") { name } }"# }).to_string();

    for content_type in [JSON, "application/json; charset=utf-8"] {
        let response = reqwest::Client::new()
            .post(format!("{}/graphql", app.address))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "with {content_type}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer, json!({ "data": { "__type": null } }));
    }
}
