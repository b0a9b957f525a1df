use std::num::NonZeroUsize;

use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app, spawn_app_with};

/// `{ __schema { queryType { fields { type { ofType { … } } } } } }`, nested `levels` deep.
fn nested_introspection_query(levels: usize) -> String {
    let mut query = String::from("{ __schema { queryType { fields { type { name ");
    for _ in 0..levels {
        query.push_str("ofType { name ");
    }
    query.push_str(&"} ".repeat(levels + 4));
    query.push('}');
    query
}

#[tokio::test]
async fn api_version_is_answered_over_post() {
    let app = spawn_app().await;

    let response = app.post_graphql("{ apiVersion }").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["apiVersion"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn get_carrying_an_operation_is_refused_with_405() {
    let app = spawn_app().await;

    for query in ["{ apiVersion }", "mutation { anything }"] {
        let response = app
            .client
            .get(format!("{}/graphql", app.address))
            .query(&[("query", query)])
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 405, "GET ran {query}");
        assert_eq!(response.headers()["allow"], "POST");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn graphiql_is_served_on_get_only_when_enabled() {
    let enabled = spawn_app().await;
    let disabled = spawn_app_with(|s| s.graphql.graphiql = false).await;

    let page = enabled.get("/graphql").await;
    let refused = disabled.get("/graphql").await;
    let asset = disabled.get("/graphiql/graphiql.min.js").await;

    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    assert_eq!(refused.status(), 405);
    assert_eq!(asset.status(), 404);
}

/// Every `src="…"` and `href="…"` of an HTML page.
fn references(html: &str) -> Vec<&str> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| {
            html.match_indices(attribute)
                .map(|(at, _)| at + attribute.len())
        })
        .filter_map(|start| html[start..].split('"').next())
        .collect()
}

#[tokio::test]
async fn graphiql_loads_from_the_app_alone() {
    let app = spawn_app().await;

    let page = app.get("/graphql").await;

    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(
        !policy.contains("://") && !policy.contains("unsafe"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    let page_url = reqwest::Url::parse(&format!("{}/graphql", app.address)).unwrap();
    let files = references(&html);
    assert_eq!(files.len(), 6, "{html}");
    for file in files {
        assert!(!file.contains("//"), "{file} may come from another host");
        let url = page_url.join(file).unwrap();
        let response = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if file.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(content_type.starts_with(expected), "{url}: {content_type}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{url}");
    }
    let start = app.get("/graphiql/start.js").await.text().await.unwrap();
    assert!(
        !start.contains("://"),
        "the start script names a host: {start}"
    );
}

#[tokio::test]
async fn other_methods_are_refused_with_405() {
    let app = spawn_app().await;

    let response = app
        .client
        .put(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_is_refused_before_execution() {
    let app = spawn_app_with(|s| s.graphql.max_depth = NonZeroUsize::new(8).unwrap()).await;

    let shallow = app.post_graphql(&nested_introspection_query(2)).await;
    let deep = app.post_graphql(&nested_introspection_query(6)).await;

    assert_eq!(shallow.status(), 200);
    assert_eq!(deep.status(), 400);
    let body: Value = deep.json().await.unwrap();
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
    assert!(body.get("data").is_none(), "the query ran: {body}");
}

#[tokio::test]
async fn a_query_with_more_fields_than_the_limit_is_refused() {
    let app = spawn_app_with(|s| s.graphql.max_fields = NonZeroUsize::new(10).unwrap()).await;
    // 9 fields, then 13 once the 3-field fragment is spread once more.
    let fragment = "fragment T on __Type { name kind description }";
    let within = [
        "{ __schema { types { ...T } queryType { ...T } } }",
        fragment,
    ]
    .join(" ");
    let beyond = [
        "{ __schema { types { ...T } queryType { ...T } mutationType { ...T } } }",
        fragment,
    ]
    .join(" ");

    let accepted = app.post_graphql(&within).await;
    let refused = app.post_graphql(&beyond).await;

    assert_eq!(accepted.status(), 200);
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn too_many_aliases_are_refused() {
    let app = spawn_app_with(|s| s.graphql.max_aliases = 3).await;

    let accepted = app
        .post_graphql("{ a: apiVersion b: apiVersion c: apiVersion }")
        .await;
    let refused = app
        .post_graphql("{ a: apiVersion b: apiVersion c: apiVersion d: apiVersion }")
        .await;

    assert_eq!(accepted.status(), 200);
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn batches_are_answered_in_order_up_to_the_cap() {
    let app = spawn_app_with(|s| s.graphql.max_batch = NonZeroUsize::new(2).unwrap()).await;
    let operation = json!({ "query": "{ apiVersion }" });
    let health = json!({ "query": "{ health { ready } }" });

    let accepted = app.post_json(&json!([operation, health])).await;
    let refused = app
        .post_json(&json!([operation, operation, operation]))
        .await;

    assert_eq!(accepted.status(), 200);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body[0]["data"]["apiVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body[1]["data"]["health"]["ready"], true);
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app_with(|s| s.graphql.max_body_bytes = NonZeroUsize::new(1024).unwrap()).await;
    let limit = app.settings.graphql.max_body_bytes.get();
    let padding = " ".repeat(limit);
    // The JSON around the query adds a few bytes: stay well under for the control.
    let fits = "{ apiVersion ".to_string() + &padding[..limit - 40] + "}";
    let too_big = "{ apiVersion ".to_string() + &padding + "}";

    let control = app.post_graphql(&fits).await;
    let response = app.post_graphql(&too_big).await;

    assert_eq!(control.status(), 200, "a body under the limit is served");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn malformed_json_gets_a_graphql_shaped_400() {
    let app = spawn_app().await;

    for body in [r#"{"query": "#, r#"{"variables": {}}"#, "[]", "not json"] {
        let response = app.post_raw("application/json", body).await;

        assert_eq!(response.status(), 400, "accepted {body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "BAD_REQUEST", "for {body}");
        assert!(answer["errors"][0]["message"].is_string());
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415() {
    let app = spawn_app().await;

    let response = app.post_raw("text/plain", "{ apiVersion }").await;

    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn syntax_and_validation_errors_carry_distinct_codes() {
    let app = spawn_app().await;

    let syntax = app.post_graphql("{ apiVersion").await;
    let unknown_field = app.post_graphql("{ noSuchField }").await;

    assert_eq!(syntax.status(), 400);
    assert_eq!(
        error_code(&syntax.json().await.unwrap()),
        "GRAPHQL_PARSE_FAILED"
    );
    assert_eq!(unknown_field.status(), 400);
    assert_eq!(
        error_code(&unknown_field.json().await.unwrap()),
        "GRAPHQL_VALIDATION_FAILED"
    );
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let app = spawn_app_with(|s| s.graphql.introspection = false).await;

    let introspection = app
        .post_graphql("{ __schema { queryType { name } } }")
        .await;
    let regular = app.post_graphql("{ apiVersion }").await;

    assert_eq!(introspection.status(), 400);
    assert_eq!(
        error_code(&introspection.json().await.unwrap()),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(regular.status(), 200);
}

#[tokio::test]
async fn graphiql_introspection_fits_within_the_default_limits() {
    let app = spawn_app().await;

    let response = app.post_graphql(GRAPHIQL_INTROSPECTION_QUERY).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["__schema"]["types"].is_array(), "{body}");
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery`, with
/// descriptions, `specifiedByURL` and `isRepeatable`).
const GRAPHIQL_INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test]
async fn no_graphql_response_may_be_cached() {
    let app = spawn_app_with(|s| s.graphql.max_body_bytes = NonZeroUsize::new(1024).unwrap()).await;
    let url = format!("{}/graphql", app.address);

    let responses = [
        app.post_graphql("{ apiVersion }").await,
        app.post_graphql("{ apiVersion").await,
        app.post_raw("text/plain", "{ apiVersion }").await,
        app.post_graphql(&" ".repeat(2048)).await,
        app.get("/graphql").await,
        app.client
            .get(&url)
            .query(&[("query", "{ apiVersion }")])
            .send()
            .await
            .unwrap(),
        app.client.put(&url).send().await.unwrap(),
    ];

    for response in responses {
        let status = response.status();
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "on a {status}"
        );
    }
}

#[tokio::test]
async fn hsts_is_sent_when_the_service_is_served_over_https() {
    let https = spawn_app_with(|s| s.http.https = true).await;
    let plain = spawn_app().await;

    let with_https = https.post_graphql("{ apiVersion }").await;
    let without = plain.post_graphql("{ apiVersion }").await;

    assert_eq!(
        with_https.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    assert!(!without.headers().contains_key("strict-transport-security"));
}
