//! `create-admin`: the operator's command never hands the admin role to an account whose
//! password someone else chose.

use secrecy::SecretString;

use {{crate_name}}::{
    auth::{PasswordHasher, admin},
    domain::Email,
    storage::users::UserRepository as _,
};

use crate::{
    auth::{PASSWORD, login, me, register, signed_in, try_login, unique_email},
    helpers::{TestApp, error_code, spawn_app},
    shutdown::binary,
};

const OPERATORS_PASSWORD: &str = "the operator's own passphrase";

async fn create(app: &TestApp, email: &str) -> anyhow::Result<String> {
    admin::create(
        &app.state.storage,
        &PasswordHasher::new(4),
        email,
        SecretString::from(OPERATORS_PASSWORD),
    )
    .await
}

async fn promote(app: &TestApp, email: &str) -> anyhow::Result<String> {
    admin::promote_existing(&app.state.storage, &app.state.auth.sessions, email).await
}

async fn confirm(app: &TestApp, email: &str) {
    let email = Email::parse(email).unwrap();
    let user = app.state.storage.find_by_email(&email).await.unwrap().unwrap();
    app.state.storage.confirm_email(user.id).await.unwrap();
}

async fn role(app: &TestApp, token: &str) -> String {
    me(app, token).await["data"]["me"]["role"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

#[tokio::test]
async fn an_address_a_stranger_registered_first_is_refused_and_stays_theirs() {
    // Arrange: a stranger registers the address the operator means to use.
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;

    // Act
    let refused = create(&app, &email).await.unwrap_err().to_string();

    // Assert: nothing changed, and the refusal says how to proceed.
    assert!(refused.contains("--promote-existing"), "{refused}");
    let strangers = login(&app, &email, PASSWORD).await;
    assert_eq!(role(&app, &strangers).await, "USER");
    let operators = try_login(&app, None, &email, OPERATORS_PASSWORD).await;
    assert_eq!(error_code(&operators), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_new_admin_signs_in_with_the_operators_password() {
    let app = spawn_app().await;
    let email = unique_email();

    let done = create(&app, &email).await.unwrap();
    let token = login(&app, &email, OPERATORS_PASSWORD).await;

    assert!(done.contains(&email), "{done}");
    assert_eq!(role(&app, &token).await, "ADMIN");
}

#[tokio::test]
async fn an_unconfirmed_account_is_not_promoted() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;

    let refused = promote(&app, &email).await.unwrap_err().to_string();

    assert!(refused.contains("not confirmed"), "{refused}");
    assert_eq!(role(&app, &token).await, "USER");
}

#[tokio::test]
async fn promoting_a_confirmed_account_shows_its_age_and_ends_its_sessions() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    confirm(&app, &email).await;

    let done = promote(&app, &email).await.unwrap();
    let old_session = me(&app, &token).await;
    let new_session = login(&app, &email, PASSWORD).await;

    assert!(done.contains("account created 20"), "{done}");
    assert_eq!(error_code(&old_session), "UNAUTHENTICATED");
    assert_eq!(role(&app, &new_session).await, "ADMIN");
}

#[tokio::test]
async fn the_command_refuses_an_existing_account_with_a_nonzero_exit() {
    // Two runs of the real command on one store: the second finds the account.
    let store = tempfile::tempdir().unwrap();
    let url = format!("embedded://{}", store.path().join("app.redb").display());
    let email = unique_email();
    let run = || {
        let mut command = binary(&["create-admin", "--email", &email, "--password-stdin"]);
        command
            .env("APP_DATABASE__URL", &url)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{OPERATORS_PASSWORD}").unwrap();
        child.wait_with_output().unwrap()
    };

    let first = run();
    let second = run();

    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("--promote-existing"), "{stderr}");
}
