//! Confirmation and password recovery, following the links in the mails the app writes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    auth::{PASSWORD, graphql, login, me, register, signed_in, try_login, unique_email},
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
    mail::SentMail,
};

const CONFIRM: &str = "Confirm your email address";
const RESET: &str = "Reset your password";
const PASSWORD_CHANGED: &str = "Your password was changed";
const ADDRESS_TAKEN: &str = "Someone tried to sign up with your address";

/// The newest mail to `to` with `subject`{% if queue %}: jobs may deliver mails in any order{% endif %}.
async fn last_mail_to(app: &TestApp, to: &str, subject: &str) -> SentMail {
    app.mails_to(to)
        .await
        .into_iter()
        .rfind(|mail| mail.subject() == subject)
        .unwrap_or_else(|| panic!("no mail to {to} with the subject {subject:?}"))
}

/// The token of the first single-use link in `mail`.
fn token_in(mail: &SentMail) -> String {
    let start = mail.raw.find("token=").expect("no link with a token") + "token=".len();
    mail.raw[start..start + 64].to_string()
}

async fn confirm(app: &TestApp, token: &str) -> Value {
    graphql(
        app,
        None,
        "mutation($t: String!) { confirmEmail(token: $t) }",
        json!({ "t": token }),
    )
    .await
}

async fn request_reset(app: &TestApp, email: &str) -> Value {
    graphql(
        app,
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Value {
    graphql(
        app,
        None,
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
        json!({ "t": token, "p": password }),
    )
    .await
}

async fn email_confirmed(app: &TestApp, email: &str) -> bool {
    let token = login(app, email, PASSWORD).await;
    let answer = graphql(app, Some(&token), "{ me { emailConfirmed } }", json!({})).await;
    answer["data"]["me"]["emailConfirmed"].as_bool().unwrap()
}

#[tokio::test]
async fn the_confirmation_link_confirms_the_address_once() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    assert!(!email_confirmed(&app, &email).await);

    let mail = last_mail_to(&app, &email, CONFIRM).await;
    let first = confirm(&app, &token_in(&mail)).await;
    let again = confirm(&app, &token_in(&mail)).await;

    assert_eq!(first["data"]["confirmEmail"], true, "{first}");
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert!(email_confirmed(&app, &email).await);
}

#[tokio::test]
async fn registering_a_taken_address_mails_its_owner_and_answers_the_same() {
    let app = spawn_app().await;
    let email = unique_email();

    let first = register(&app, &email, PASSWORD).await;
    let second = register(&app, &email, "someone else's password").await;

    assert_eq!(first, second);
    assert_eq!(app.mails_to(&email).await.len(), 2);
    let notice = last_mail_to(&app, &email, ADDRESS_TAKEN).await;
    assert!(!notice.raw.contains("token="), "a taken address got a token");
}

#[tokio::test]
async fn resending_confirmation_answers_the_same_for_unknown_addresses() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    let first_token = token_in(&last_mail_to(&app, &email, CONFIRM).await);
    let resend = "mutation($e: String!) { resendConfirmation(email: $e) }";

    let known = graphql(&app, None, resend, json!({ "e": email })).await;
    let unknown = graphql(&app, None, resend, json!({ "e": unique_email() })).await;

    assert_eq!(known, unknown);
    let second_token = token_in(&last_mail_to(&app, &email, CONFIRM).await);
    assert_ne!(first_token, second_token);
    // Issuing a new link voids the previous one.
    assert_eq!(
        error_code(&confirm(&app, &first_token).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        confirm(&app, &second_token).await["data"]["confirmEmail"],
        true
    );
}

#[tokio::test]
async fn a_password_reset_ends_every_session_and_sets_the_new_password() {
    let app = spawn_app().await;
    let (email, session) = signed_in(&app).await;
    let new_password = "a brand new passphrase";

    let requested = request_reset(&app, &email).await;
    let mail = last_mail_to(&app, &email, RESET).await;
    let answer = reset(&app, &token_in(&mail), new_password).await;

    assert!(requested["data"]["requestPasswordReset"].is_string());
    assert_eq!(answer["data"]["resetPassword"], true, "{answer}");
    assert_eq!(error_code(&me(&app, &session).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&try_login(&app, None, &email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    login(&app, &email, new_password).await;
    last_mail_to(&app, &email, PASSWORD_CHANGED).await;
}

#[tokio::test]
async fn a_reset_link_works_once() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;
    request_reset(&app, &email).await;
    let token = token_in(&last_mail_to(&app, &email, RESET).await);

    reset(&app, &token, "first new password").await;
    let again = reset(&app, &token, "second new password").await;

    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    login(&app, &email, "first new password").await;
}

#[tokio::test]
async fn a_confirmation_token_cannot_reset_a_password() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    let confirmation = token_in(&last_mail_to(&app, &email, CONFIRM).await);

    let answer = reset(&app, &confirmation, "an attacker's password").await;

    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    login(&app, &email, PASSWORD).await;
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let app = spawn_app_with(|s| s.auth.reset_token_ttl_secs = 1).await;
    let (email, _) = signed_in(&app).await;
    request_reset(&app, &email).await;
    let token = token_in(&last_mail_to(&app, &email, RESET).await);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answer = reset(&app, &token, "too late for this").await;

    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
}

#[tokio::test]
async fn reset_requests_answer_the_same_for_unknown_addresses() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;
    let stranger = unique_email();

    let known = request_reset(&app, &email).await;
    let unknown = request_reset(&app, &stranger).await;

    assert_eq!(known, unknown);
    assert!(app.mails_to(&stranger).await.is_empty());
}

#[tokio::test]
async fn reset_requests_are_rate_limited() {
    let app = spawn_app_with(|s| s.auth.login_attempts_per_account = 2).await;
    let email = unique_email();

    for _ in 0..2 {
        request_reset(&app, &email).await;
    }
    let limited = request_reset(&app, &email).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn unconfirmed_accounts_can_be_kept_from_signing_in() {
    let app = spawn_app_with(|s| s.auth.require_confirmed_email = true).await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let refused = try_login(&app, None, &email, PASSWORD).await;
    confirm(&app, &token_in(&last_mail_to(&app, &email, CONFIRM).await)).await;

    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    login(&app, &email, PASSWORD).await;
}

#[tokio::test]
async fn changing_the_password_sends_a_notice() {
    let app = spawn_app().await;
    let (email, session) = signed_in(&app).await;

    graphql(
        &app,
        Some(&session),
        "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"another fine passphrase\") }",
        json!({}),
    )
    .await;

    last_mail_to(&app, &email, PASSWORD_CHANGED).await;
}
