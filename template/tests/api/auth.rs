//! Accounts and sessions, end to end through the HTTP API against a real Redis.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};

use {{crate_name}}::{
    auth::{AllowedOrigins, PasswordHasher, admin},
    client_ip::TrustedProxies,
    config::Settings,
};

use crate::{
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
    metrics::Metered,
    redis_server::PrivateRedis,
};

pub const PASSWORD: &str = "correct horse battery";
const ME: &str = "{ me { email role } }";
const CHANGE_PASSWORD: &str = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
const ONE_PER_REQUEST: &str = "one login, registration or password change per request";

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub async fn graphql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    graphql_from(app, None, token, query, variables).await
}

/// As the client at `client_ip` behind the app's trusted proxy (see [`behind_a_proxy`]).
pub async fn graphql_from(
    app: &TestApp,
    client_ip: Option<&str>,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(client_ip) = client_ip {
        request = request.header("X-Forwarded-For", client_ip);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Trusts the tests' own address as a reverse proxy, so that `X-Forwarded-For` says which
/// client a request comes from.
pub fn behind_a_proxy(settings: &mut Settings) {
    settings.http.trusted_proxies = Some(TrustedProxies::parse(&["127.0.0.1/32".into()]).unwrap());
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
    try_login_from(app, None, token, email, password).await
}

/// A login that asks for a bearer token, from `client_ip` (see [`graphql_from`]).
pub async fn try_login_from(
    app: &TestApp,
    client_ip: Option<&str>,
    token: Option<&str>,
    email: &str,
    password: &str,
) -> Value {
    graphql_from(
        app,
        client_ip,
        token,
        "mutation($email: String!, $password: String!) { login(email: $email, password: $password, bearer: true) { sessionToken user { email } } }",
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

/// Logs in from a client describing itself as `user_agent`; returns the session token.
pub async fn login_with_agent(app: &TestApp, email: &str, user_agent: &str) -> String {
    login_at(&app.address, email, user_agent).await
}

/// Logs in at `address`, the app's or another instance's, from a client describing
/// itself as `user_agent`; returns the session token.
pub async fn login_at(address: &str, email: &str, user_agent: &str) -> String {
    let body: Value = crate::helpers::graphql_client()
        .post(format!("{address}/graphql"))
        .header("User-Agent", user_agent)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }",
            "variables": { "e": email, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

/// The raw response to a browser's login (no `bearer`), to inspect its headers.
async fn post_login(app: &TestApp, email: &str) -> reqwest::Response {
    post_login_selecting(app, email, "user { email } sessionToken").await
}

/// [`post_login`] asking for `selection` of the answer.
pub async fn post_login_selecting(app: &TestApp, email: &str, selection: &str) -> reqwest::Response {
    let query = [
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { ",
        selection,
        " } }",
    ]
    .concat();
    app.client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": { "e": email, "p": PASSWORD } }))
        .send()
        .await
        .unwrap()
}

/// The `name=value` of the cookie a response sets.
pub fn cookie_set_by(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

/// `body` posted as a browser would: with `cookie` and the extra `headers`.
pub async fn post_with_cookie(
    app: &TestApp,
    cookie: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Cookie", cookie)
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The first GraphQL error's message, or "" when there is none.
pub fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

/// Posts every body at once, each on a task of its own; the answers in order.
pub async fn post_all_at_once(app: &TestApp, bodies: Vec<Value>) -> Vec<Value> {
    let url = format!("{}/graphql", app.address);
    let sent: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let request = app.client.post(&url).json(&body);
            tokio::spawn(async move { request.send().await?.json::<Value>().await })
        })
        .collect();
    let mut answers = Vec::with_capacity(sent.len());
    for answer in sent {
        answers.push(answer.await.expect("the request task panicked").expect("Failed to send the request"));
    }
    answers
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
    let session = cookie_set_by(&response);
    let with_cookie: Value = post_with_cookie(&app, &session, &json!({ "query": ME }), &[])
        .await
        .json()
        .await
        .unwrap();

    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert_eq!(with_cookie["data"]["me"]["email"], email.as_str());
}

#[tokio::test]
async fn production_cookies_are_host_prefixed_and_secure() {
    let app = spawn_app_with(|s| s.http.https = true).await;
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
    let app = spawn_app_with(|s| s.auth.session_idle_timeout = Duration::from_secs(1)).await;
    let (_, token) = signed_in(&app).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(error_code(&me(&app, &token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn activity_keeps_a_session_alive_past_its_idle_timeout() {
    let app = spawn_app_with(|s| s.auth.session_idle_timeout = Duration::from_secs(2)).await;
    let (_, token) = signed_in(&app).await;

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(me(&app, &token).await["data"]["me"].is_object());
    }
}

#[tokio::test]
async fn an_active_session_still_ends_at_its_absolute_timeout() {
    let app = spawn_app_with(|s| s.auth.session_absolute_timeout = Duration::from_secs(2)).await;
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

/// Creates an admin the way `create-admin --password-stdin` does; returns its address.
pub async fn create_admin(app: &TestApp) -> String {
    let email = unique_email();
    admin::create(
        &app.state.storage,
        &PasswordHasher::new(4),
        &email,
        SecretString::from(PASSWORD),
    )
    .await
    .unwrap();
    email
}

#[tokio::test]
async fn the_user_list_is_for_admins_only() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let admin = login(&app, &create_admin(&app).await, PASSWORD).await;
    let users = "{ users(first: 2) { users { email } nextCursor } }";

    let anonymous = graphql(&app, None, users, json!({})).await;
    let as_user = graphql(&app, Some(&token), users, json!({})).await;
    let as_admin = graphql(&app, Some(&admin), users, json!({})).await;

    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&as_user), "FORBIDDEN");
    assert!(as_admin["data"]["users"]["users"][0]["email"].is_string(), "{as_admin}");
}

#[tokio::test]
async fn admins_page_through_users() {
    let app = spawn_app().await;
    let admin_email = create_admin(&app).await;
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

    let passphrase = "correct horse battery staple ".repeat(3);
    let short = register(&app, &unique_email(), "vX9#qL2").await;
    let overlong = register(&app, &unique_email(), &passphrase[..73]).await;
    let longest = register(&app, &unique_email(), &passphrase[..64]).await;

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
    let app = spawn_app_with(|s| s.auth.login_failures_per_account = 3).await;
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
async fn logins_and_rate_limit_refusals_are_counted_by_outcome() {
    // Arrange: one wrong password locks the account for the client that sent it.
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let app = Metered::serve(&[
        ("APP_REDIS__KEY_PREFIX", &prefix),
        ("APP_AUTH__BCRYPT_COST", "4"),
        ("APP_AUTH__LOGIN_FAILURES_PER_ACCOUNT", "1"),
    ]);
    let email = unique_email();
    let register =
        "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }";
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }";
    app.graphql(register, json!({ "e": email, "p": PASSWORD }))
        .await;

    // Act
    let ok = app
        .graphql(login, json!({ "e": email, "p": PASSWORD }))
        .await;
    let wrong = app
        .graphql(login, json!({ "e": email, "p": "not the password" }))
        .await;
    let refused = app
        .graphql(login, json!({ "e": email, "p": PASSWORD }))
        .await;
    let scrape = app.scrape().await;

    // Assert
    assert!(ok["data"]["login"]["sessionToken"].is_string(), "{ok}");
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    for outcome in ["ok", "wrong_credentials", "rate_limited"] {
        let logins = scrape.value("auth_logins_total", &[("outcome", outcome)]);
        assert_eq!(logins, Some(1.0), "{outcome}");
    }
    let refusals = scrape.value("auth_rate_limited_total", &[("action", "login")]);
    assert_eq!(refusals, Some(1.0));
    let operations = |outcome| {
        let labels = [("operation", "login"), ("outcome", outcome)];
        scrape.value("graphql_operations_total", &labels)
    };
    assert_eq!(operations("ok"), Some(1.0));
    assert_eq!(operations("UNAUTHENTICATED"), Some(1.0));
    assert_eq!(operations("RATE_LIMITED"), Some(1.0));
    app.stop().await;
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
            "query": CHANGE_PASSWORD,
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
    let app = spawn_app_with(|s| s.redis.url = {{crate_name}}::redis::RedisUrl::parse(&url).unwrap()).await;
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

/// A batch of `operations` sent with `token` as a bearer token.
async fn post_batch(app: &TestApp, token: Option<&str>, operations: Value) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&operations);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn change_password(app: &TestApp, token: &str, current: &str) -> Value {
    let variables = json!({ "c": current, "n": "a much better passphrase" });
    graphql(app, Some(token), CHANGE_PASSWORD, variables).await
}

#[tokio::test]
async fn a_request_runs_one_password_operation_however_it_is_batched_or_aliased() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;
    let login_with = |password: &str| {
        json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }",
            "variables": { "e": email, "p": password },
        })
    };
    let (first, second) = (unique_email(), unique_email());

    let batch = post_batch(&app, None, json!([login_with("not the password"), login_with(PASSWORD)])).await;
    let aliased = graphql(
        &app,
        None,
        "mutation($a: String!, $b: String!, $p: String!) { a: register(email: $a, password: $p) { message } b: register(email: $b, password: $p) { message } }",
        json!({ "a": first, "b": second, "p": PASSWORD }),
    )
    .await;

    // The right password came second: refused before bcrypt could check it.
    assert_eq!(error_code(&batch[0]), "UNAUTHENTICATED");
    assert_eq!(error_code(&batch[1]), "BAD_USER_INPUT");
    let refusal = batch[1]["errors"][0]["message"].as_str().unwrap();
    assert!(refusal.contains(ONE_PER_REQUEST), "{refusal}");
    assert!(aliased["data"].is_null(), "{aliased}");
    assert_eq!(aliased["errors"][0]["path"], json!(["b"]), "{aliased}");
    assert_eq!(error_code(&aliased), "BAD_USER_INPUT");
    login(&app, &first, PASSWORD).await;
    assert_eq!(
        error_code(&try_login(&app, None, &second, PASSWORD).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn wrong_current_passwords_lock_out_like_failed_logins() {
    let app = spawn_app_with(|s| s.auth.login_failures_per_account = 2).await;
    let (email, token) = signed_in(&app).await;

    for _ in 0..2 {
        let wrong = change_password(&app, &token, "not the password").await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    }
    let right = change_password(&app, &token, PASSWORD).await;
    let login_after = try_login(&app, None, &email, PASSWORD).await;

    assert_eq!(error_code(&right), "RATE_LIMITED");
    assert_eq!(error_code(&login_after), "RATE_LIMITED");
}

#[tokio::test]
async fn password_changes_count_against_the_clients_limit() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_ip = 3).await;
    let (_, token) = signed_in(&app).await; // the login was the first check

    for _ in 0..2 {
        let wrong = change_password(&app, &token, "not the password").await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    }
    let limited = change_password(&app, &token, PASSWORD).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn forged_forwarded_for_entries_do_not_escape_the_client_limit() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_attempts_per_ip = 2;
    })
    .await;
    let attempt = async |forwarded_for: &str| {
        let answer =
            try_login_from(&app, Some(forwarded_for), None, &unique_email(), "not the password")
                .await;
        error_code(&answer).to_string()
    };

    // One client, 198.51.100.7, forging a new left-most entry each time.
    let forging = [
        attempt("10.1.1.1, 198.51.100.7").await,
        attempt("10.2.2.2, 198.51.100.7").await,
        attempt("10.3.3.3, 192.0.2.3, 198.51.100.7").await,
    ];
    let another_client = attempt("198.51.100.7, 203.0.113.9").await;
    // IPv6 clients count per /64.
    let same_64 = [
        attempt("2001:db8:1:2::1").await,
        attempt("2001:db8:1:2::2").await,
        attempt("2001:db8:1:2:ffff::3").await,
    ];
    let next_64 = attempt("2001:db8:1:3::1").await;

    assert_eq!(forging, ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]);
    assert_eq!(another_client, "UNAUTHENTICATED");
    assert_eq!(same_64, ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]);
    assert_eq!(next_64, "UNAUTHENTICATED");
}

#[tokio::test]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_ip = 2).await;

    let mut codes = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let answer =
            try_login_from(&app, Some(client), None, &unique_email(), "not the password").await;
        codes.push(error_code(&answer).to_string());
    }

    assert_eq!(codes, ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]);
}

#[tokio::test]
async fn common_and_self_describing_passwords_are_refused_with_the_ratings_feedback() {
    let app = spawn_app().await;
    let email = unique_email();

    let common = register(&app, &email, "password1234").await;
    let own_address = register(&app, &email, &email).await;

    assert_eq!(error_code(&common), "BAD_USER_INPUT");
    assert_eq!(
        common["errors"][0]["message"],
        "This is a very common password. Add another word or two. Uncommon words are better."
    );
    assert_eq!(error_code(&own_address), "BAD_USER_INPUT");
    assert_eq!(
        error_code(&try_login(&app, None, &email, "password1234").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_guess_longer_than_72_bytes_does_not_match_a_72_byte_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let password = &"correct horse battery staple, ".repeat(3)[..72];
    register(&app, &email, password).await;

    let longer = try_login(&app, None, &email, &format!("{password}!")).await;

    assert_eq!(error_code(&longer), "UNAUTHENTICATED");
    login(&app, &email, password).await;
}

#[tokio::test]
async fn a_strangers_wrong_guesses_do_not_lock_the_owner_out() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_failures_per_account = 3;
    })
    .await;
    let (email, _) = signed_in(&app).await;
    let attempt = async |client: &str, password: &str| {
        try_login_from(&app, Some(client), None, &email, password).await
    };

    for _ in 0..3 {
        let guess = attempt("203.0.113.66", "not the password").await;
        assert_eq!(error_code(&guess), "UNAUTHENTICATED");
    }
    let stranger_right = attempt("203.0.113.66", PASSWORD).await;
    let owner = attempt("198.51.100.7", PASSWORD).await;
    // Past the lockout, each new client gets one guess.
    let newcomer_wrong = attempt("192.0.2.1", "not the password").await;
    let newcomer_again = attempt("192.0.2.1", PASSWORD).await;

    assert_eq!(error_code(&stranger_right), "RATE_LIMITED");
    assert!(owner["data"]["login"]["sessionToken"].is_string(), "{owner}");
    assert_eq!(error_code(&newcomer_wrong), "UNAUTHENTICATED");
    assert_eq!(error_code(&newcomer_again), "RATE_LIMITED");
}

/// Sends `guesses` logins for `email` from `client` all at once; returns their error
/// codes (`OK` for a session), in the order they came back.
async fn concurrent_logins(app: &TestApp, client: &str, email: &str, guesses: &[&str]) -> Vec<String> {
    let mut requests = tokio::task::JoinSet::new();
    for password in guesses {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("X-Forwarded-For", client)
            .json(&json!({
                "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }",
                "variables": { "e": email, "p": password },
            }));
        requests.spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() });
    }
    let mut codes = Vec::new();
    while let Some(answer) = requests.join_next().await {
        let answer = answer.unwrap();
        codes.push(match answer["data"]["login"]["sessionToken"].as_str() {
            Some(_) => "OK".to_string(),
            None => error_code(&answer).to_string(),
        });
    }
    codes
}

fn count(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| *c == code).count()
}

#[tokio::test]
async fn concurrent_guesses_evaluate_no_more_than_the_accounts_allowance() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_failures_per_account = 5;
    })
    .await;
    let (email, _) = signed_in(&app).await;

    let codes = concurrent_logins(&app, "203.0.113.66", &email, &["not the password"; 20]).await;

    assert_eq!(count(&codes, "UNAUTHENTICATED"), 5, "{codes:?}");
    assert_eq!(count(&codes, "RATE_LIMITED"), 15, "{codes:?}");
}

#[tokio::test]
async fn concurrent_guesses_from_a_fresh_client_on_a_locked_account_evaluate_one() {
    // Arrange: a stranger locks the account for the clients that failed.
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_failures_per_account = 3;
    })
    .await;
    let (email, _) = signed_in(&app).await;
    for _ in 0..3 {
        try_login_from(&app, Some("203.0.113.66"), None, &email, "not the password").await;
    }
    // 20 guesses at once from a client that has not failed yet, the 18th right.
    let mut guesses = ["not the password"; 20];
    guesses[17] = PASSWORD;

    // Act
    let codes = concurrent_logins(&app, "192.0.2.1", &email, &guesses).await;

    // Assert: one guess was evaluated, whichever it was; every other one was refused.
    assert_eq!(count(&codes, "RATE_LIMITED"), 19, "{codes:?}");
}

#[tokio::test]
async fn an_ipv6_site_counts_as_one_client_across_its_64s() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_attempts_per_ip = 2;
        s.auth.ipv6_56_factor = 2;
        s.auth.ipv6_48_factor = 3;
    })
    .await;
    let attempt = async |client: String| {
        let answer = try_login_from(&app, Some(&client), None, &unique_email(), "wrong").await;
        error_code(&answer).to_string()
    };

    // Six /64s of one /48, each in a /56 of its own: the /48 allows 2 × 3 attempts.
    let mut codes = Vec::new();
    for site_56 in 0..7 {
        codes.push(attempt(format!("2001:db8:1:{:x}00::1", site_56)).await);
    }
    let other_site = attempt("2001:db8:2::1".into()).await;

    assert_eq!(count(&codes, "UNAUTHENTICATED"), 6, "{codes:?}");
    assert_eq!(codes[6], "RATE_LIMITED");
    assert_eq!(other_site, "UNAUTHENTICATED");
}

#[tokio::test]
async fn tunnelled_ipv6_addresses_count_as_the_ipv4_client_they_carry() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.login_attempts_per_ip = 2;
    })
    .await;
    let attempt = async |client: &str| {
        let answer = try_login_from(&app, Some(client), None, &unique_email(), "wrong").await;
        error_code(&answer).to_string()
    };

    // 192.0.2.1 itself, then through 6to4 from two /64s of its /48.
    let codes = [
        attempt("192.0.2.1").await,
        attempt("2002:c000:201:1::1").await,
        attempt("2002:c000:201:2::1").await,
    ];

    assert_eq!(codes, ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]);
}

#[tokio::test]
async fn operations_batched_after_a_logout_run_signed_out() {
    let app = spawn_app().await;
    let (_, laptop) = signed_in(&app).await;
    let (_, phone) = signed_in(&app).await;
    let change = json!({
        "query": CHANGE_PASSWORD,
        "variables": { "c": PASSWORD, "n": "a much better passphrase" },
    });

    let after_logout = post_batch(
        &app,
        Some(&laptop),
        json!([{ "query": "mutation { logout }" }, { "query": ME }]),
    )
    .await;
    let after_everywhere = post_batch(
        &app,
        Some(&phone),
        json!([{ "query": "mutation { logoutEverywhere }" }, change]),
    )
    .await;

    assert_eq!(after_logout[0]["data"]["logout"], true);
    assert_eq!(error_code(&after_logout[1]), "UNAUTHENTICATED");
    assert_eq!(after_everywhere[0]["data"]["logoutEverywhere"], true);
    assert_eq!(error_code(&after_everywhere[1]), "UNAUTHENTICATED");
}

#[tokio::test]
async fn only_clients_that_ask_get_the_session_token() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let browser = post_login(&app, &email).await;
    let browser_cookie = browser.headers().contains_key("set-cookie");
    let browser_body: Value = browser.json().await.unwrap();
    let api = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }",
            "variables": { "e": email, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap();
    let api_cookie = api.headers().contains_key("set-cookie");
    let api_body: Value = api.json().await.unwrap();
    let token = api_body["data"]["login"]["sessionToken"].as_str().unwrap();

    assert!(browser_cookie);
    assert!(
        browser_body["data"]["login"]["sessionToken"].is_null(),
        "{browser_body}"
    );
    assert!(!api_cookie, "a bearer client got a cookie");
    assert_eq!(me(&app, token).await["data"]["me"]["email"], email.as_str());
}

#[tokio::test]
async fn cookie_requests_from_other_origins_are_refused() {
    let app = spawn_app_with(|s| {
        s.auth.allowed_origins =
            AllowedOrigins::parse(&["https://app.example.com".into()]).unwrap();
    })
    .await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    let cookie = cookie_set_by(&post_login(&app, &email).await);
    let token = login(&app, &email, PASSWORD).await;
    let evil = ("Origin", "https://evil.example");
    let me = json!({ "query": ME });

    let cross_site = post_with_cookie(&app, &cookie, &me, &[evil, ("Sec-Fetch-Site", "cross-site")]).await;
    let older_browser = post_with_cookie(&app, &cookie, &me, &[evil]).await;
    let same_origin = post_with_cookie(&app, &cookie, &me, &[("Sec-Fetch-Site", "same-origin")]).await;
    let front_end = post_with_cookie(
        &app,
        &cookie,
        &me,
        &[("Origin", "https://app.example.com"), ("Sec-Fetch-Site", "same-site")],
    )
    .await;
    let bearer = app
        .client
        .post(format!("{}/graphql", app.address))
        .header(evil.0, evil.1)
        .bearer_auth(&token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();

    for refused in [cross_site, older_browser] {
        assert_eq!(refused.status(), 403);
        assert_eq!(error_code(&refused.json().await.unwrap()), "FORBIDDEN");
    }
    for accepted in [same_origin, front_end, bearer] {
        let body: Value = accepted.json().await.unwrap();
        assert_eq!(body["data"]["me"]["email"], email.as_str(), "{body}");
    }
}
