//! Accounts and sessions, end to end through the HTTP API against a real Redis.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};

use {{crate_name}}::auth::{PasswordHasher, admin};

use crate::{
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
    redis_server::PrivateRedis,
};

pub const PASSWORD: &str = "correct horse battery";
const ME: &str = "{ me { email role } }";

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub async fn graphql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

pub async fn register(app: &TestApp, email: &str, password: &str) -> Value {
    graphql(
        app,
        None,
        "mutation($email: String!, $password: String!) { register(email: $email, password: $password) { message } }",
        json!({ "email": email, "password": password }),
    )
    .await
}

pub async fn try_login(app: &TestApp, token: Option<&str>, email: &str, password: &str) -> Value {
    graphql(
        app,
        token,
        "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { sessionToken user { email } } }",
        json!({ "email": email, "password": password }),
    )
    .await
}

/// Logs in and returns the session token.
pub async fn login(app: &TestApp, email: &str, password: &str) -> String {
    let body = try_login(app, None, email, password).await;
    body["data"]["login"]["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_string()
}

/// A registered account and one session of it.
pub async fn signed_in(app: &TestApp) -> (String, String) {
    let email = unique_email();
    register(app, &email, PASSWORD).await;
    let token = login(app, &email, PASSWORD).await;
    (email, token)
}

/// The raw login response, to inspect its headers.
async fn post_login(app: &TestApp, email: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/graphql", app.address))
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { user { email } } }",
            "variables": { "e": email, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap()
}

pub async fn me(app: &TestApp, token: &str) -> Value {
    graphql(app, Some(token), ME, json!({})).await
}

#[tokio::test]
async fn register_login_me_logout_then_me_fails() {
    let app = spawn_app().await;
    let email = unique_email();

    let registered = register(&app, &email, PASSWORD).await;
    let token = login(&app, &email, PASSWORD).await;
    let signed_in = me(&app, &token).await;
    let logout = graphql(&app, Some(&token), "mutation { logout }", json!({})).await;
    let after_logout = me(&app, &token).await;

    assert!(
        registered["data"]["register"]["message"].is_string(),
        "{registered}"
    );
    assert_eq!(signed_in["data"]["me"]["email"], email.as_str());
    assert_eq!(signed_in["data"]["me"]["role"], "USER");
    assert_eq!(logout["data"]["logout"], true);
    assert_eq!(error_code(&after_logout), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_session_cookie_is_hardened_and_authenticates() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let response = post_login(&app, &email).await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let session = set_cookie.split(';').next().unwrap().to_string();
    let with_cookie: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Cookie", &session)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert_eq!(with_cookie["data"]["me"]["email"], email.as_str());
}

#[tokio::test]
async fn production_cookies_are_host_prefixed_and_secure() {
    let app = spawn_app_with(|s| s.auth.secure_cookie = true).await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let response = post_login(&app, &email).await;

    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("__Host-session="), "{set_cookie}");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn login_issues_a_new_session_and_drops_the_one_presented() {
    let app = spawn_app().await;
    let (email, first) = signed_in(&app).await;

    let relogin = try_login(&app, Some(&first), &email, PASSWORD).await;
    let second = relogin["data"]["login"]["sessionToken"].as_str().unwrap();

    assert_ne!(first, second);
    assert_eq!(error_code(&me(&app, &first).await), "UNAUTHENTICATED");
    assert_eq!(
        me(&app, second).await["data"]["me"]["email"],
        email.as_str()
    );
}

#[tokio::test]
async fn logout_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let (email, laptop) = signed_in(&app).await;
    let phone = login(&app, &email, PASSWORD).await;

    let answer = graphql(
        &app,
        Some(&laptop),
        "mutation { logoutEverywhere }",
        json!({}),
    )
    .await;

    assert_eq!(answer["data"]["logoutEverywhere"], true);
    assert_eq!(error_code(&me(&app, &phone).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&me(&app, &laptop).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_idle_session_expires() {
    let app = spawn_app_with(|s| s.auth.session_idle_timeout_secs = 1).await;
    let (_, token) = signed_in(&app).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(error_code(&me(&app, &token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn activity_keeps_a_session_alive_past_its_idle_timeout() {
    let app = spawn_app_with(|s| s.auth.session_idle_timeout_secs = 2).await;
    let (_, token) = signed_in(&app).await;

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(me(&app, &token).await["data"]["me"].is_object());
    }
}

#[tokio::test]
async fn an_active_session_still_ends_at_its_absolute_timeout() {
    let app = spawn_app_with(|s| s.auth.session_absolute_timeout_secs = 2).await;
    let (_, token) = signed_in(&app).await;

    // Activity keeps an idle timer alive, but not the absolute one.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        me(&app, &token).await;
    }

    assert_eq!(error_code(&me(&app, &token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_forged_token_is_unauthenticated() {
    let app = spawn_app().await;

    for token in ["not-a-token", &"0".repeat(64)] {
        assert_eq!(error_code(&me(&app, token).await), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn the_user_list_is_for_admins_only() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    let users = "{ users(first: 2) { users { email } nextCursor } }";

    let anonymous = graphql(&app, None, users, json!({})).await;
    let as_user = graphql(&app, Some(&token), users, json!({})).await;
    admin::promote_or_create(&app.state.storage, &PasswordHasher::new(4), &email, None)
        .await
        .unwrap();
    let as_admin = graphql(&app, Some(&token), users, json!({})).await;

    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&as_user), "FORBIDDEN");
    assert_eq!(
        as_admin["data"]["users"]["users"][0]["email"],
        email.as_str()
    );
}

#[tokio::test]
async fn admins_page_through_users() {
    let app = spawn_app().await;
    let admin_email = unique_email();
    admin::promote_or_create(
        &app.state.storage,
        &PasswordHasher::new(4),
        &admin_email,
        Some(SecretString::from(PASSWORD)),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        register(&app, &unique_email(), PASSWORD).await;
    }
    let token = login(&app, &admin_email, PASSWORD).await;
    let page =
        "query($after: ID) { users(first: 2, after: $after) { users { email } nextCursor } }";

    let first = graphql(&app, Some(&token), page, json!({})).await;
    let cursor = first["data"]["users"]["nextCursor"].clone();
    let second = graphql(&app, Some(&token), page, json!({ "after": cursor })).await;

    assert_eq!(first["data"]["users"]["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        first["data"]["users"]["users"][0]["email"],
        admin_email.as_str()
    );
    assert_eq!(
        second["data"]["users"]["users"].as_array().unwrap().len(),
        1
    );
    assert!(second["data"]["users"]["nextCursor"].is_null());
}

#[tokio::test]
async fn registering_a_taken_email_answers_the_same_and_changes_nothing() {
    let app = spawn_app().await;
    let email = unique_email();

    let first = register(&app, &email, PASSWORD).await;
    let second = register(&app, &email.to_uppercase(), "another password").await;

    assert_eq!(first, second);
    login(&app, &email, PASSWORD).await;
    let with_second_password = try_login(&app, None, &email, "another password").await;
    assert_eq!(error_code(&with_second_password), "UNAUTHENTICATED");
}

#[tokio::test]
async fn weak_and_overlong_passwords_are_refused_with_a_reason() {
    let app = spawn_app().await;

    let short = register(&app, &unique_email(), "seven77").await;
    let overlong = register(&app, &unique_email(), &"a".repeat(73)).await;
    let longest = register(&app, &unique_email(), &"a".repeat(64)).await;

    assert_eq!(error_code(&short), "BAD_USER_INPUT");
    assert_eq!(error_code(&overlong), "BAD_USER_INPUT");
    assert!(
        overlong["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("72 bytes")
    );
    assert!(longest["data"]["register"].is_object(), "{longest}");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;

    let wrong_password = try_login(&app, None, &email, "not the password").await;
    let unknown_email = try_login(&app, None, &unique_email(), "not the password").await;

    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_email["errors"][0]["message"]
    );
    assert_eq!(wrong_password["data"], unknown_email["data"]);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_with_a_retry_hint() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_account = 3).await;
    let (email, _) = signed_in(&app).await; // a success resets the counter

    for _ in 0..3 {
        let answer = try_login(&app, None, &email, "wrong password").await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    }
    let limited = try_login(&app, None, &email, PASSWORD).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
    let retry_after = limited["errors"][0]["extensions"]["retryAfter"]
        .as_i64()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 900, "{limited}");
}

#[tokio::test]
async fn login_is_rate_limited_per_client_ip_across_accounts() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_ip = 2).await;

    for _ in 0..2 {
        try_login(&app, None, &unique_email(), "wrong password").await;
    }
    let limited = try_login(&app, None, &unique_email(), "wrong password").await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn registration_is_rate_limited_per_client_ip() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_ip = 2).await;

    for _ in 0..2 {
        register(&app, &unique_email(), PASSWORD).await;
    }
    let limited = register(&app, &unique_email(), PASSWORD).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn batched_login_attempts_count_one_each() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_account = 3).await;
    let (email, _) = signed_in(&app).await;
    let attempt = json!({
        "query": "mutation($e: String!) { login(email: $e, password: \"wrong password\") { sessionToken } }",
        "variables": { "e": email },
    });

    let answers: Value = app
        .post_json(&json!([attempt, attempt, attempt, attempt]))
        .await
        .json()
        .await
        .unwrap();

    let codes: Vec<&str> = answers.as_array().unwrap().iter().map(error_code).collect();
    assert_eq!(
        codes,
        [
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "RATE_LIMITED"
        ]
    );
}

#[tokio::test]
async fn changing_the_password_revokes_other_sessions() {
    let app = spawn_app().await;
    let (email, laptop) = signed_in(&app).await;
    let phone = login(&app, &email, PASSWORD).await;
    let new_password = "a much better passphrase";

    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&laptop)
        .json(&json!({
            "query": "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            "variables": { "c": PASSWORD, "n": new_password },
        }))
        .send()
        .await
        .unwrap();

    assert!(
        response.headers().contains_key("set-cookie"),
        "no fresh session"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["data"]["changePassword"], true, "{answer}");
    assert_eq!(error_code(&me(&app, &phone).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&try_login(&app, None, &email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    login(&app, &email, new_password).await;
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;

    let answer = graphql(
        &app,
        Some(&token),
        "mutation { changePassword(currentPassword: \"not it at all\", newPassword: \"whatever it is\") }",
        json!({}),
    )
    .await;

    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    login(&app, &email, PASSWORD).await;
}

#[tokio::test]
async fn redis_outage_answers_503_and_recovers_without_a_restart() {
    let redis = PrivateRedis::start();
    let port = redis.port();
    let url = redis.url();
    let app = spawn_app_with(|s| s.redis.url = SecretString::from(url)).await;
    let (email, token) = signed_in(&app).await;

    redis.stop();
    let down = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let readiness = app.get("/health/ready").await;
    let _restarted = PrivateRedis::start_on(port);
    let mut recovered = Value::Null;
    for _ in 0..50 {
        recovered = try_login(&app, None, &email, PASSWORD).await;
        if recovered["data"]["login"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(down.status(), 503);
    assert_eq!(
        error_code(&down.json().await.unwrap()),
        "SERVICE_UNAVAILABLE"
    );
    assert_eq!(readiness.status(), 503);
    assert!(
        recovered["data"]["login"].is_object(),
        "no recovery: {recovered}"
    );
}

#[tokio::test]
async fn readiness_includes_redis() {
    let app = spawn_app().await;

    let report: Value = app.get("/health/ready").await.json().await.unwrap();

    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|check| check["name"].as_str())
        .collect();
    assert!(names.contains(&"redis"), "{names:?}");
}
