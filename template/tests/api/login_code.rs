//! Sign-in by a mailed code: the code from the mail the app writes, on the client that
//! asked for it, with the limits on guessing it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    auth::{
        PASSWORD, cookie_set_by, error_message, graphql, post_all_at_once, post_with_cookie,
        register, unique_email,
    },
    email_flows::last_mail_to,
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
    second_factor::{COMPLETE, enrolled},
};

const REQUEST: &str = "mutation($e: String!) { requestLoginCode(email: $e, bearer: true) { message loginCodeToken } }";
const LOGIN: &str = "mutation($c: String!, $t: String) { loginWithCode(code: $c, loginCodeToken: $t) { user { email emailConfirmed } sessionToken secondFactorRequired secondFactorToken } }";
const CODE_MAIL: &str = "Your sign-in code";
const NO_ACCOUNT: &str = "No account uses this address";
const NO_CODE_SIGN_IN: &str = "no code sign-in is waiting here: ask for a new code";

/// A registered account's address.
async fn account(app: &TestApp) -> String {
    let email = unique_email();
    register(app, &email, PASSWORD).await;
    email
}

/// Asks for a code for `email` as an API client; returns the token of the code sign-in.
async fn request(app: &TestApp, email: &str) -> String {
    let body = graphql(app, None, REQUEST, json!({ "e": email })).await;
    body["data"]["requestLoginCode"]["loginCodeToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no code sign-in: {body}"))
        .to_string()
}

/// The code in the newest code mail to `email`.
async fn mailed_code(app: &TestApp, email: &str) -> String {
    let mail = last_mail_to(app, email, CODE_MAIL).await;
    let start = mail
        .raw
        .find("Your sign-in code: ")
        .expect("no code in the mail")
        + 19;
    mail.raw[start..start + 9].to_string()
}

async fn login(app: &TestApp, code: &str, token: Option<&str>) -> Value {
    graphql(app, None, LOGIN, json!({ "c": code, "t": token })).await
}

#[tokio::test]
async fn a_mailed_code_signs_in_once() {
    let app = spawn_app().await;
    let email = account(&app).await;
    let token = request(&app, &email).await;
    let code = mailed_code(&app, &email).await;

    let first = login(&app, &code, Some(&token)).await;
    let again = login(&app, &code, Some(&token)).await;

    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-", "{code}");
    let session = first["data"]["loginWithCode"]["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("not signed in: {first}"));
    let me = graphql(&app, Some(session), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], email.as_str());
    assert_eq!(error_message(&again), NO_CODE_SIGN_IN, "{again}");
}

#[tokio::test]
async fn a_mailed_code_sent_twenty_times_at_once_signs_in_once() {
    // Allowances above twenty concurrent checks: the code's single use is under test.
    let app = spawn_app_with(|s| {
        s.auth.login_failures_per_account = 100;
        s.auth.login_attempts_per_ip = 1000;
    })
    .await;
    let email = account(&app).await;
    let token = request(&app, &email).await;
    let code = mailed_code(&app, &email).await;
    let body = json!({ "query": LOGIN, "variables": { "c": code, "t": token } });

    let answers = post_all_at_once(&app, vec![body; 20]).await;

    let signed_in = answers
        .iter()
        .filter(|a| a["data"]["loginWithCode"]["sessionToken"].is_string());
    assert_eq!(signed_in.count(), 1, "{answers:?}");
}

#[tokio::test]
async fn the_code_works_only_on_the_client_that_asked_for_it() {
    let app = spawn_app().await;
    let email = account(&app).await;
    let asked: reqwest::Response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "mutation($e: String!) { requestLoginCode(email: $e) { loginCodeToken } }", "variables": { "e": email } }))
        .send()
        .await
        .unwrap();
    let cookie = cookie_set_by(&asked);
    let code = mailed_code(&app, &email).await;

    let elsewhere = login(&app, &code, None).await;
    let here: Value = post_with_cookie(
        &app,
        &cookie,
        &json!({ "query": LOGIN, "variables": { "c": code } }),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();

    assert!(cookie.starts_with("pending-login="), "{cookie}");
    assert_eq!(error_message(&elsewhere), NO_CODE_SIGN_IN, "{elsewhere}");
    assert_eq!(
        here["data"]["loginWithCode"]["user"]["email"],
        email.as_str(),
        "{here}"
    );
    assert!(
        here["data"]["loginWithCode"]["sessionToken"].is_null(),
        "browsers get a cookie"
    );
}

#[tokio::test]
async fn the_third_wrong_code_ends_the_code_sign_in() {
    let app = spawn_app_with(|s| s.auth.login_failures_per_account = 100).await;
    let email = account(&app).await;
    let token = request(&app, &email).await;
    let code = mailed_code(&app, &email).await;

    let wrong: Vec<Value> = [
        login(&app, "AAAA-AAAA", Some(&token)).await,
        login(&app, "BBBB-BBBB", Some(&token)).await,
        login(&app, "CCCC-CCCC", Some(&token)).await,
    ]
    .into();
    let right_too_late = login(&app, &code, Some(&token)).await;

    assert_eq!(error_message(&wrong[0]), "the code is wrong");
    assert_eq!(error_message(&wrong[1]), "the code is wrong");
    assert!(
        error_message(&wrong[2]).contains("last try"),
        "{}",
        wrong[2]
    );
    assert_eq!(
        error_message(&right_too_late),
        NO_CODE_SIGN_IN,
        "{right_too_late}"
    );
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_the_no_account_notice() {
    let app = spawn_app().await;
    let known = account(&app).await;
    let unknown = unique_email();

    let for_known = graphql(&app, None, REQUEST, json!({ "e": known })).await;
    let for_unknown = graphql(&app, None, REQUEST, json!({ "e": unknown })).await;
    let notice = last_mail_to(&app, &unknown, NO_ACCOUNT).await;
    let token = for_unknown["data"]["requestLoginCode"]["loginCodeToken"]
        .as_str()
        .unwrap();
    let guess = login(&app, "ABCD-EFGH", Some(token)).await;

    let message_of = |body: &Value| body["data"]["requestLoginCode"]["message"].clone();
    assert_eq!(message_of(&for_known), message_of(&for_unknown));
    let token_length = |body: &Value| {
        body["data"]["requestLoginCode"]["loginCodeToken"]
            .as_str()
            .map(str::len)
    };
    assert_eq!(token_length(&for_known), token_length(&for_unknown));
    assert!(!notice.raw.contains(CODE_MAIL), "{}", notice.raw);
    assert_eq!(error_message(&guess), "the code is wrong", "{guess}");
}

#[tokio::test]
async fn asking_takes_the_same_time_for_known_and_unknown_addresses() {
    let app = spawn_app_with(|s| s.auth.mails_per_client = 1000).await;
    let known = account(&app).await;
    let mut timings = [Vec::new(), Vec::new()];
    for round in 0..20 {
        let (which, email) = if round % 2 == 0 {
            (0, known.clone())
        } else {
            (1, unique_email())
        };
        let started = Instant::now();
        graphql(
            &app,
            None,
            "mutation($e: String!) { requestLoginCode(email: $e) { message } }",
            json!({ "e": email }),
        )
        .await;
        timings[which].push(started.elapsed());
    }

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut timings[0]), median(&mut timings[1]));
    // The request never looks the address up: only noise may tell them apart.
    let gap = known.abs_diff(unknown);
    assert!(
        gap < Duration::from_millis(20) || gap < known.max(unknown) / 2,
        "known {known:?}, unknown {unknown:?}"
    );
}

#[tokio::test]
async fn a_code_sign_in_confirms_the_address_even_where_confirmation_is_required() {
    let app = spawn_app_with(|s| s.auth.require_confirmed_email = true).await;
    let email = account(&app).await;
    let token = request(&app, &email).await;
    let code = mailed_code(&app, &email).await;

    let signed_in = login(&app, &code, Some(&token)).await;

    assert_eq!(
        signed_in["data"]["loginWithCode"]["user"]["emailConfirmed"], true,
        "{signed_in}"
    );
}

#[tokio::test]
async fn with_a_second_factor_a_code_sign_in_still_asks_for_it() {
    let app = spawn_app().await;
    let enrolled = enrolled(&app).await;
    let token = request(&app, &enrolled.email).await;
    let code = mailed_code(&app, &enrolled.email).await;

    let by_code = login(&app, &code, Some(&token)).await;
    let pending = by_code["data"]["loginWithCode"]["secondFactorToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{by_code}"));
    let completed = graphql(
        &app,
        None,
        COMPLETE,
        json!({ "c": enrolled.code(1), "t": pending }),
    )
    .await;

    assert_eq!(
        by_code["data"]["loginWithCode"]["secondFactorRequired"], true,
        "{by_code}"
    );
    assert!(by_code["data"]["loginWithCode"]["sessionToken"].is_null());
    assert!(
        completed["data"]["completeLogin"]["sessionToken"].is_string(),
        "{completed}"
    );
}

#[tokio::test]
async fn a_setting_turns_code_sign_in_off() {
    let app = spawn_app_with(|s| s.auth.login_by_code = false).await;
    let email = account(&app).await;

    let asked = graphql(&app, None, REQUEST, json!({ "e": email })).await;
    let guessed = login(&app, "ABCD-EFGH", Some(&"0".repeat(96))).await;

    assert_eq!(error_code(&asked), "BAD_USER_INPUT", "{asked}");
    assert!(error_message(&asked).contains("turned off"), "{asked}");
    assert_eq!(error_code(&guessed), "BAD_USER_INPUT", "{guessed}");
}

#[tokio::test]
async fn codes_for_one_mailbox_are_limited_whatever_the_tag() {
    let app = spawn_app_with(|s| s.auth.mails_per_address = 2).await;
    let email = account(&app).await;
    let tagged = email.replace('@', "+1@");

    graphql(&app, None, REQUEST, json!({ "e": email })).await;
    graphql(&app, None, REQUEST, json!({ "e": tagged })).await;
    let third = graphql(&app, None, REQUEST, json!({ "e": email })).await;

    assert_eq!(error_code(&third), "RATE_LIMITED", "{third}");
}
