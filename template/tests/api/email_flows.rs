//! Confirmation and password recovery, following the links in the mails the app writes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    auth::{PASSWORD, graphql, login, me, register, signed_in, try_login, unique_email},
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
    mail::SentMail,
    redis_server,
};

const CONFIRM: &str = "Confirm your email address";
const RESET: &str = "Reset your password";
const PASSWORD_CHANGED: &str = "Your password was changed";
pub const ADDRESS_TAKEN: &str = "Someone tried to sign up with your address";
const NO_ACCOUNT: &str = "No account uses this address";
const ALREADY_CONFIRMED: &str = "Your email address is already confirmed";
const RESEND: &str = "mutation($e: String!) { resendConfirmation(email: $e) }";

/// The newest mail to `to` with `subject`{% if queue %}: jobs may deliver mails in any order{% endif %}.
pub async fn last_mail_to(app: &TestApp, to: &str, subject: &str) -> SentMail {
    app.mails_to(to)
        .await
        .into_iter()
        .rfind(|mail| mail.subject() == subject)
        .unwrap_or_else(|| panic!("no mail to {to} with the subject {subject:?}"))
}

/// The token of the first single-use link in `mail`.
pub fn token_in(mail: &SentMail) -> String {
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

    let known = graphql(&app, None, RESEND, json!({ "e": email })).await;
    let unknown = graphql(&app, None, RESEND, json!({ "e": unique_email() })).await;

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
    let app = spawn_app_with(|s| s.auth.reset_token_ttl = Duration::from_secs(1)).await;
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
    let notices = app.mails_to(&stranger).await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].subject(), NO_ACCOUNT);
    assert!(!notices[0].raw.contains("token="), "an unknown address got a token");
}

#[tokio::test]
async fn every_link_request_sends_one_mail_whoever_owns_the_address() {
    let app = spawn_app().await;
    let (confirmed, _) = signed_in(&app).await;
    confirm(&app, &token_in(&last_mail_to(&app, &confirmed, CONFIRM).await)).await;
    let unknown = unique_email();

    graphql(&app, None, RESEND, json!({ "e": confirmed })).await;
    graphql(&app, None, RESEND, json!({ "e": unknown })).await;

    last_mail_to(&app, &confirmed, ALREADY_CONFIRMED).await;
    let to_unknown = app.mails_to(&unknown).await;
    assert_eq!(to_unknown.len(), 1);
    assert_eq!(to_unknown[0].subject(), NO_ACCOUNT);
}

#[tokio::test]
async fn reset_requests_are_rate_limited() {
    let app = spawn_app_with(|s| s.auth.mails_per_address = 2).await;
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
async fn an_unconfirmed_accounts_right_password_gets_the_wrong_passwords_answer() {
    let app = spawn_app_with(|s| s.auth.require_confirmed_email = true).await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    let right = try_login(&app, None, &email, PASSWORD).await;
    let wrong = try_login(&app, None, &email, "not the password").await;

    assert_eq!(right, wrong);
    // The mail is where the owner learns why.
    let mail = last_mail_to(&app, &email, CONFIRM).await;
    assert!(mail.raw.contains("invalid email or password"), "{}", mail.raw);
}

#[tokio::test]
async fn a_password_change_voids_an_outstanding_reset_link() {
    let app = spawn_app().await;
    let (email, session) = signed_in(&app).await;
    request_reset(&app, &email).await;
    let token = token_in(&last_mail_to(&app, &email, RESET).await);

    graphql(
        &app,
        Some(&session),
        "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"another fine passphrase\") }",
        json!({}),
    )
    .await;
    let answer = reset(&app, &token, "an attacker's passphrase").await;

    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    login(&app, &email, "another fine passphrase").await;
}

#[tokio::test]
async fn tagged_addresses_share_their_mailboxs_limit() {
    let app = spawn_app_with(|s| s.auth.mails_per_address = 2).await;
    let victim = unique_email();
    let tagged = |tag: u32| victim.replacen('@', &format!("+{tag}@"), 1);

    let answers = [
        request_reset(&app, &tagged(1)).await,
        request_reset(&app, &tagged(2)).await,
        request_reset(&app, &tagged(3)).await,
        request_reset(&app, &victim).await,
    ];

    assert!(answers[1]["data"]["requestPasswordReset"].is_string(), "{answers:?}");
    assert_eq!(error_code(&answers[2]), "RATE_LIMITED");
    assert_eq!(error_code(&answers[3]), "RATE_LIMITED");
}

#[tokio::test]
async fn a_client_may_have_only_its_share_of_mails_sent() {
    let app = spawn_app_with(|s| s.auth.mails_per_client = 2).await;
    let (first, second, third) = (unique_email(), unique_email(), unique_email());

    register(&app, &first, PASSWORD).await;
    request_reset(&app, &second).await;
    let limited = request_reset(&app, &third).await;
    let registered = register(&app, &unique_email(), PASSWORD).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
    // `register` answers as ever, and sends nothing past the share.
    assert!(registered["data"]["register"]["message"].is_string(), "{registered}");
    assert_eq!(app.mails_to(&first).await.len(), 1);
    assert_eq!(app.mails_to(&third).await.len(), 0);
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

#[tokio::test]
async fn a_refused_new_password_leaves_the_reset_link_usable() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;
    request_reset(&app, &email).await;
    let token = token_in(&last_mail_to(&app, &email, RESET).await);

    let weak = reset(&app, &token, "password1234").await;
    let strong = reset(&app, &token, "a brand new passphrase").await;

    assert_eq!(error_code(&weak), "BAD_USER_INPUT");
    assert_eq!(strong["data"]["resetPassword"], true, "{strong}");
}

#[tokio::test]
async fn an_address_receives_at_most_its_share_of_mails() {
    let app = spawn_app_with(|s| s.auth.mails_per_address = 2).await;
    let email = unique_email();

    let registrations = [
        register(&app, &email, PASSWORD).await,
        register(&app, &email, "someone else's password").await,
        register(&app, &email, "a third party's password").await,
        register(&app, &email, "yet another fine password").await,
    ];
    let reset_request = request_reset(&app, &email).await;

    // The answers never change; the mails stop at the address's share.
    assert!(registrations.iter().all(|answer| answer == &registrations[0]));
    assert_eq!(app.mails_to(&email).await.len(), 2);
    assert_eq!(error_code(&reset_request), "RATE_LIMITED");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn known_and_unknown_addresses_are_answered_in_the_same_time() {
    // Arrange: every Redis round trip of the app costs 30 ms more, so any extra work on
    // a known address's path (a token, a queued job) would add at least that.
    let delay = Duration::from_millis(30);
    // A proxy can stand in front of one node only: a cluster's clients follow redirects.
    let server = redis_server::PrivateRedis::start();
    let proxy = redis_server::LaggingProxy::start(server.port(), redis_server::Lag::Requests(delay)).await;
    let app = spawn_app_with(|s| {
        s.redis.url = {{crate_name}}::redis::RedisUrl::parse(&proxy.url()).unwrap();
        s.auth.login_attempts_per_ip = 1000;
        s.auth.mails_per_address = 1000;
        s.auth.mails_per_client = 1000;
    })
    .await;
    let (known, _) = signed_in(&app).await;
    let unknown = unique_email();
    let resend = "mutation($e: String!) { resendConfirmation(email: $e) }";
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());

    // Act: interleaved, alternating which goes first, each after the work the previous
    // one left behind is done.
    for round in 0..12 {
        let mut pair = [(&known, true), (&unknown, false)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (email, is_known) in pair {
            let started = Instant::now();
            let answer = if round % 4 < 2 {
                request_reset(&app, email).await
            } else {
                graphql(&app, None, resend, json!({ "e": email })).await
            };
            let elapsed = started.elapsed();
            assert!(answer["errors"].is_null(), "{answer}");
            if is_known { known_times.push(elapsed) } else { unknown_times.push(elapsed) }
            app.state.auth.background.idle().await;
        }
    }

    // Assert: the medians differ by less than half a round trip.
    let (known_median, unknown_median) = (median(known_times), median(unknown_times));
    assert!(
        known_median.abs_diff(unknown_median) < delay / 2,
        "known {known_median:?}, unknown {unknown_median:?}"
    );
    assert!(!app.mails_to(&known).await.is_empty(), "no mail was sent");
}
{%- if queue %}

#[tokio::test]
async fn queued_account_mails_carry_no_link_token() {
    // Every delivery fails at once, so the job dies after one run and `jobs dead` shows it.
    let app = spawn_app_with(|s| {
        s.mail.transport = {{crate_name}}::mail::TransportKind::Smtp;
        s.mail.smtp_url = secrecy::SecretString::from(format!(
            "smtp://127.0.0.1:{}",
            crate::helpers::free_port()
        ));
        s.mail.timeout = Duration::from_secs(1);
        s.jobs.max_attempts = std::num::NonZeroU32::MIN;
    })
    .await;
    let (email, _) = signed_in(&app).await;

    request_reset(&app, &email).await;
    app.state.auth.background.idle().await;
    app.wait_for_jobs().await;

    let dead = app.state.jobs.dead().await.unwrap();
    let payloads: Vec<&str> = dead.iter().map(|job| job.payload.as_str()).collect();
    assert!(
        payloads.iter().any(|payload| payload.contains("reset_password")),
        "{payloads:?}"
    );
    for payload in payloads {
        assert!(!payload.contains("token="), "a link at rest: {payload}");
    }
}

#[tokio::test]
async fn queued_account_mails_do_not_tell_registered_addresses_apart() {
    // Arrange: the real server, metrics on, no worker (jobs only queue).
    let app = crate::metrics::Metered::serve(&[
        ("APP_REDIS__KEY_PREFIX", &crate::redis_server::unique_prefix()),
        ("APP_AUTH__BCRYPT_COST", "4"),
    ]);
    let known = unique_email();
    let register =
        "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }";
    let reset = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    app.graphql(register, json!({ "e": known, "p": PASSWORD })).await;
    let queued = async || {
        // Mails are queued after the answer: wait until the count settles.
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = app
                .scrape()
                .await
                .value("jobs_enqueued_total", &[("job", "account_mail")]);
            if now == last {
                return now.unwrap_or(0.0);
            }
            last = now;
        }
    };
    let before = queued().await;

    // Act
    app.graphql(reset, json!({ "e": known })).await;
    let after_known = queued().await;
    app.graphql(reset, json!({ "e": unique_email() })).await;
    let after_unknown = queued().await;

    // Assert: one job each.
    assert_eq!(after_known - before, 1.0);
    assert_eq!(after_unknown - after_known, 1.0);
    app.stop().await;
}
{%- endif %}
