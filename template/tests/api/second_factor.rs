//! The second factor: enrolling an authenticator, signing in with its codes or a
//! recovery code, and the limits on guessing them. Codes are computed from the secret
//! `setUpTotp` returns, as an authenticator app computes them.

use std::time::Duration;

use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{
    accounts::{keys_of, user_id},
    auth::{
        PASSWORD, cookie_set_by, error_message, graphql, post_login_selecting, post_all_at_once, post_with_cookie, register,
        signed_in, unique_email,
    },
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
};

pub const SET_UP: &str = "mutation { setUpTotp { secret uri qrCodeSvg } }";
pub const CONFIRM: &str = "mutation($c: String!) { confirmTotp(code: $c) }";
const DISABLE: &str = "mutation { disableTotp }";
const REGENERATE: &str = "mutation { regenerateRecoveryCodes }";
const STATUS: &str = "{ me { secondFactor { enabled recoveryCodesLeft } } }";
pub const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { user { email } sessionToken secondFactorRequired secondFactorToken } }";
pub const COMPLETE: &str = "mutation($c: String!, $t: String) { completeLogin(code: $c, secondFactorToken: $t) { user { email } sessionToken } }";
/// What a browser asks of `login`: the pending sign-in's token goes to a cookie instead.
const BROWSER_LOGIN: &str = "secondFactorRequired secondFactorToken";
const WRONG_CODE: &str = "the code is wrong";
const LAST_TRY: &str = "that was the last try";

/// An account with TOTP on: its address, a session, the base32 secret and the recovery
/// codes. The code of the current period is used up by the confirmation.
pub struct Enrolled {
    pub email: String,
    pub token: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code of the period `offset` periods from now.
    pub fn code(&self, offset: i64) -> String {
        code_at(&self.secret, offset)
    }
}

pub fn code_at(secret: &str, offset: i64) -> String {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().unwrap();
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes, None, String::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now.saturating_add_signed(offset * 30))
}

/// Waits until the current period has at least `margin` left, so that a code computed
/// now is still this period's when the app checks it.
pub async fn with_time_left_in_the_period(margin: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_period = Duration::from_millis(u64::try_from(now.as_millis() % 30_000).unwrap());
    if Duration::from_secs(30) - into_period < margin {
        tokio::time::sleep(Duration::from_secs(30) - into_period + Duration::from_millis(50)).await;
    }
}

async fn set_up(app: &TestApp, token: &str) -> Value {
    graphql(app, Some(token), SET_UP, json!({})).await
}

pub async fn enrolled(app: &TestApp) -> Enrolled {
    let (email, token) = signed_in(app).await;
    let setup = set_up(app, &token).await;
    let secret = setup["data"]["setUpTotp"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no secret: {setup}"))
        .to_string();
    with_time_left_in_the_period(Duration::from_secs(3)).await;
    let confirmed = graphql(app, Some(&token), CONFIRM, json!({ "c": code_at(&secret, 0) })).await;
    let recovery_codes = confirmed["data"]["confirmTotp"]
        .as_array()
        .unwrap_or_else(|| panic!("not confirmed: {confirmed}"))
        .iter()
        .map(|code| code.as_str().unwrap().to_string())
        .collect();
    Enrolled {
        email,
        token,
        secret,
        recovery_codes,
    }
}

/// A bearer login's answer.
async fn login(app: &TestApp, email: &str) -> Value {
    let body = graphql(app, None, LOGIN, json!({ "e": email, "p": PASSWORD })).await;
    body["data"]["login"].clone()
}

/// The second-factor token of a login that now waits for a code.
async fn pending(app: &TestApp, email: &str) -> String {
    let login = login(app, email).await;
    login["secondFactorToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no pending sign-in: {login}"))
        .to_string()
}

async fn complete(app: &TestApp, pending: &str, code: &str) -> Value {
    graphql(app, None, COMPLETE, json!({ "c": code, "t": pending })).await
}

#[tokio::test]
async fn setting_up_shows_a_secret_uri_and_qr_code_and_changes_nothing_until_confirmed() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;

    let setup = set_up(&app, &token).await;
    let status = graphql(&app, Some(&token), STATUS, json!({})).await;
    let login = login(&app, &email).await;

    let setup = &setup["data"]["setUpTotp"];
    let secret = setup["secret"].as_str().unwrap();
    let uri = setup["uri"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains(&email.replace('@', "%40")), "{uri}");
    assert!(uri.contains("issuer="), "{uri}");
    assert!(setup["qrCodeSvg"].as_str().unwrap().contains("<svg"), "{setup}");
    assert_eq!(status["data"]["me"]["secondFactor"], json!({ "enabled": false, "recoveryCodesLeft": 0 }));
    assert!(login["sessionToken"].is_string(), "{login}");
}

#[tokio::test]
async fn setting_up_needs_a_recent_password_proof() {
    let app = spawn_app_with(|s| s.auth.reauth_window = Duration::from_secs(1)).await;
    let (_, token) = signed_in(&app).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let stale = set_up(&app, &token).await;

    assert_eq!(error_code(&stale), "REAUTHENTICATION_REQUIRED", "{stale}");
}

#[tokio::test]
async fn a_wrong_first_code_enables_nothing() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let setup = set_up(&app, &token).await;
    let secret = setup["data"]["setUpTotp"]["secret"].as_str().unwrap();

    let wrong = graphql(&app, Some(&token), CONFIRM, json!({ "c": code_at(secret, -5) })).await;
    let status = graphql(&app, Some(&token), STATUS, json!({})).await;

    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert_eq!(status["data"]["me"]["secondFactor"]["enabled"], false);
}

#[tokio::test]
async fn with_totp_on_login_waits_for_a_code_and_the_code_signs_in() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;

    let status = graphql(&app, Some(&account.token), STATUS, json!({})).await;
    let login = login(&app, &account.email).await;
    // The current period's code went to the confirmation: the next one is accepted too.
    let pending = login["secondFactorToken"].as_str().unwrap();
    let completed = complete(&app, pending, &account.code(1)).await;

    assert_eq!(account.recovery_codes.len(), 10);
    assert_eq!(status["data"]["me"]["secondFactor"], json!({ "enabled": true, "recoveryCodesLeft": 10 }));
    assert_eq!(login["secondFactorRequired"], true, "{login}");
    assert!(login["user"].is_null() && login["sessionToken"].is_null(), "{login}");
    let session = completed["data"]["completeLogin"]["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("not signed in: {completed}"));
    let me = graphql(&app, Some(session), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], account.email.as_str());
}

#[tokio::test]
async fn an_accepted_code_is_refused_when_replayed() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;
    let code = account.code(1);
    let first = complete(&app, &pending(&app, &account.email).await, &code).await;

    let replayed = complete(&app, &pending(&app, &account.email).await, &code).await;
    // The confirmation's code, older still, is refused as well.
    let older = complete(&app, &pending(&app, &account.email).await, &account.code(0)).await;

    assert!(first["data"]["completeLogin"]["sessionToken"].is_string(), "{first}");
    assert_eq!(error_code(&replayed), "UNAUTHENTICATED", "{replayed}");
    assert_eq!(error_message(&replayed), WRONG_CODE);
    assert_eq!(error_code(&older), "UNAUTHENTICATED", "{older}");
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;
    // Typed in capitals without dashes, as people do.
    let typed = account.recovery_codes[3].replace('-', "").to_uppercase();

    let first = complete(&app, &pending(&app, &account.email).await, &typed).await;
    let again = complete(&app, &pending(&app, &account.email).await, &account.recovery_codes[3]).await;
    let status = graphql(&app, Some(&account.token), STATUS, json!({})).await;

    assert!(first["data"]["completeLogin"]["sessionToken"].is_string(), "{first}");
    assert_eq!(error_code(&again), "UNAUTHENTICATED", "{again}");
    assert_eq!(status["data"]["me"]["secondFactor"]["recoveryCodesLeft"], 9);
}

#[tokio::test]
async fn a_recovery_code_sent_by_twenty_pending_sign_ins_at_once_signs_in_once() {
    // Allowances above twenty concurrent checks: the code's single use is under test.
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_account = 100;
        s.auth.login_attempts_per_ip = 1000;
    })
    .await;
    let account = enrolled(&app).await;
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let pending = pending(&app, &account.email).await;
        bodies.push(json!({ "query": COMPLETE, "variables": { "c": account.recovery_codes[0], "t": pending } }));
    }

    let answers = post_all_at_once(&app, bodies).await;
    let status = graphql(&app, Some(&account.token), STATUS, json!({})).await;

    let signed_in = answers.iter().filter(|a| a["data"]["completeLogin"]["sessionToken"].is_string());
    assert_eq!(signed_in.count(), 1, "{answers:?}");
    assert_eq!(status["data"]["me"]["secondFactor"]["recoveryCodesLeft"], 9);
}

#[tokio::test]
async fn the_fifth_wrong_code_ends_the_pending_login() {
    // An account allowance above the pending sign-in's, which is the limit under test.
    let app = spawn_app_with(|s| s.auth.login_failures_per_account = 100).await;
    let account = enrolled(&app).await;
    let pending = pending(&app, &account.email).await;

    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(complete(&app, &pending, "000000").await);
    }
    let right_too_late = complete(&app, &pending, &account.code(1)).await;

    for answer in &answers[..4] {
        assert_eq!(error_message(answer), WRONG_CODE, "{answer}");
    }
    assert!(error_message(&answers[4]).contains(LAST_TRY), "{}", answers[4]);
    assert_eq!(error_code(&right_too_late), "UNAUTHENTICATED", "{right_too_late}");
    assert!(error_message(&right_too_late).contains("sign in with your password again"));
}

#[tokio::test]
async fn wrong_codes_count_against_the_accounts_lockout() {
    let app = spawn_app_with(|s| s.auth.login_failures_per_account = 2).await;
    let account = enrolled(&app).await;

    let first = complete(&app, &pending(&app, &account.email).await, "000000").await;
    let second = complete(&app, &pending(&app, &account.email).await, "000000").await;
    let third = graphql(&app, None, LOGIN, json!({ "e": account.email, "p": PASSWORD })).await;

    assert_eq!(error_message(&first), WRONG_CODE);
    assert_eq!(error_message(&second), WRONG_CODE);
    assert_eq!(error_code(&third), "RATE_LIMITED", "{third}");
}

#[tokio::test]
async fn a_request_checks_one_code_however_it_is_batched() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;
    let pending = pending(&app, &account.email).await;
    let operation = |code: &str| json!({ "query": COMPLETE, "variables": { "c": code, "t": pending } });

    let answers: Value = app
        .post_json(&json!([operation("000000"), operation(&account.code(1))]))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(error_message(&answers[0]), WRONG_CODE, "{answers}");
    assert!(error_message(&answers[1]).starts_with("one login"), "{answers}");
}

async fn browser_complete(app: &TestApp, cookie: Option<&str>, code: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": COMPLETE, "variables": { "c": code } }));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_pending_login_is_completed_only_by_the_client_that_started_it() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;

    let login = post_login_selecting(&app, &account.email, BROWSER_LOGIN).await;
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let pending_cookie = cookie_set_by(&login);
    let answer: Value = login.json().await.unwrap();
    let other_client: Value = browser_complete(&app, None, &account.code(1)).await.json().await.unwrap();
    let own_client = browser_complete(&app, Some(&pending_cookie), &account.code(1)).await;
    let cookies: Vec<String> = own_client
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .collect();

    assert_eq!(answer["data"]["login"]["secondFactorRequired"], true, "{answer}");
    assert!(answer["data"]["login"]["secondFactorToken"].is_null(), "browsers get a cookie: {answer}");
    assert!(set_cookie.starts_with("pending-login="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=300"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    assert_eq!(error_code(&other_client), "UNAUTHENTICATED", "{other_client}");
    assert!(cookies.iter().any(|c| c.starts_with("session=") && !c.starts_with("session=;")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("pending-login=;")), "{cookies:?}");
}

#[tokio::test]
async fn a_pending_cookie_from_another_origins_page_is_ignored() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;
    let login = post_login_selecting(&app, &account.email, BROWSER_LOGIN).await;
    let pending_cookie = cookie_set_by(&login);

    let complete = json!({ "query": COMPLETE, "variables": { "c": account.code(1) } });
    let cross_site: Value = post_with_cookie(&app, &pending_cookie, &complete, &[("Origin", "https://evil.example")])
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(error_code(&cross_site), "UNAUTHENTICATED", "{cross_site}");
}

#[tokio::test]
async fn turning_totp_off_needs_a_recent_proof_and_leaves_the_password_alone() {
    let app = spawn_app_with(|s| s.auth.reauth_window = Duration::from_secs(2)).await;
    let account = enrolled(&app).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;

    let stale = graphql(&app, Some(&account.token), DISABLE, json!({})).await;
    graphql(&app, Some(&account.token), "mutation($p: String!) { reauthenticate(password: $p) }", json!({ "p": PASSWORD })).await;
    let disabled = graphql(&app, Some(&account.token), DISABLE, json!({})).await;
    let login = login(&app, &account.email).await;

    assert_eq!(error_code(&stale), "REAUTHENTICATION_REQUIRED", "{stale}");
    assert_eq!(disabled["data"]["disableTotp"], true, "{disabled}");
    assert!(login["sessionToken"].is_string(), "{login}");
    assert_eq!(login["secondFactorRequired"], false);
}

#[tokio::test]
async fn new_recovery_codes_void_the_old_ones() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;

    let regenerated = graphql(&app, Some(&account.token), REGENERATE, json!({})).await;
    let new_codes = regenerated["data"]["regenerateRecoveryCodes"].as_array().unwrap().clone();
    let old = complete(&app, &pending(&app, &account.email).await, &account.recovery_codes[0]).await;
    let new = complete(&app, &pending(&app, &account.email).await, new_codes[0].as_str().unwrap()).await;

    assert_eq!(new_codes.len(), 10);
    assert!(!new_codes.iter().any(|code| account.recovery_codes.contains(&code.as_str().unwrap().to_string())));
    assert_eq!(error_code(&old), "UNAUTHENTICATED", "{old}");
    assert!(new["data"]["completeLogin"]["sessionToken"].is_string(), "{new}");
}

#[tokio::test]
async fn a_second_enrolment_is_refused_while_one_is_on() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;

    let again = set_up(&app, &account.token).await;

    assert_eq!(error_code(&again), "BAD_USER_INPUT", "{again}");
}

#[tokio::test]
async fn accounts_without_totp_sign_in_with_the_password_alone() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let login = login(&app, &email).await;

    assert!(login["sessionToken"].is_string(), "{login}");
    assert_eq!(login["secondFactorRequired"], false);
    assert!(login["secondFactorToken"].is_null());
}

#[tokio::test]
async fn erasing_an_account_leaves_nothing_of_its_second_factor() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;
    let user = user_id(&app, &account.token).await;
    // Redis holds the confirmation's code period and now a pending sign-in too.
    pending(&app, &account.email).await;

    let deleted = graphql(&app, Some(&account.token), "mutation { deleteAccount }", json!({})).await;

    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");
    let erased = app.state.redis.key(&["user:{", &user.to_string(), "}:erased"].concat());
    assert_eq!(keys_of(&app, user, &account.email).await, vec![erased]);
}
{%- if email %}

#[tokio::test]
async fn each_change_to_the_second_factor_mails_a_notice() {
    let app = spawn_app().await;
    let account = enrolled(&app).await;

    graphql(&app, Some(&account.token), REGENERATE, json!({})).await;
    graphql(&app, Some(&account.token), DISABLE, json!({})).await;

    let notices: Vec<String> = app
        .mails_to(&account.email)
        .await
        .into_iter()
        .filter(|mail| mail.subject() == "Your two-step sign-in changed")
        .map(|mail| mail.raw)
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    for change in ["was just turned on", "New recovery codes", "was just turned off"] {
        assert!(notices.iter().any(|raw| raw.contains(change)), "{change}: {notices:?}");
    }
}
{%- endif %}
