//! Account self-service and admin tools: the session list, recent authentication,
//! deleting an account, roles, disabling accounts and the audit log.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use {{crate_name}}::{
    domain::UserId,
    storage::users::UserRepository as _,
};

use crate::{
    auth::{
        PASSWORD, create_admin, graphql, login, login_with_agent, me, register, signed_in,
        try_login,
    },
    helpers::{TestApp, error_code, spawn_app, spawn_app_with},
};

const SESSIONS: &str = "{ sessions { id createdAt lastSeenAt device client current } }";
const REVOKE: &str = "mutation($id: ID!) { revokeSession(id: $id) }";
const REAUTHENTICATE: &str = "mutation($p: String!) { reauthenticate(password: $p) }";
const DELETE: &str = "mutation { deleteAccount }";

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let body = graphql(app, Some(token), SESSIONS, json!({})).await;
    body["data"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions: {body}"))
        .clone()
}

pub async fn user_id(app: &TestApp, token: &str) -> UserId {
    let body = graphql(app, Some(token), "{ me { id } }", json!({})).await;
    UserId::parse(body["data"]["me"]["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_session_list_shows_each_device_and_marks_the_current_one() {
    let app = spawn_app().await;
    let (email, _) = signed_in(&app).await;
    let firefox = login_with_agent(
        &app,
        &email,
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    )
    .await;

    let listed = sessions(&app, &firefox).await;

    assert_eq!(listed.len(), 2, "{listed:?}");
    let current: Vec<_> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"], "Firefox on Linux");
    assert_eq!(current[0]["client"], "127.0.0.1");
    for session in &listed {
        let id = session["id"].as_str().unwrap();
        // An id names a session without being its token or any part of it.
        assert!(!firefox.contains(id) && !id.contains(&firefox[32..40]), "{id}");
    }
}

#[tokio::test]
async fn a_revoked_sessions_token_is_refused_at_once() {
    let app = spawn_app().await;
    let (email, laptop) = signed_in(&app).await;
    let phone = login(&app, &email, PASSWORD).await;
    let phone_id = sessions(&app, &phone).await.into_iter().find(|s| s["current"] == true).unwrap()["id"].clone();

    let revoked = graphql(&app, Some(&laptop), REVOKE, json!({ "id": phone_id })).await;

    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");
    assert_eq!(error_code(&me(&app, &phone).await), "UNAUTHENTICATED");
    assert_eq!(sessions(&app, &laptop).await.len(), 1);
    // Nobody else's session can be named: the id is unknown to this account.
    let (_, stranger) = signed_in(&app).await;
    let laptop_id = sessions(&app, &laptop).await[0]["id"].clone();
    let foreign = graphql(&app, Some(&stranger), REVOKE, json!({ "id": laptop_id })).await;
    assert_eq!(error_code(&foreign), "BAD_USER_INPUT");
    assert_eq!(me(&app, &laptop).await["data"]["me"]["email"], email.as_str());
}

#[tokio::test]
async fn revoking_the_current_session_signs_it_out() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let id = sessions(&app, &token).await[0]["id"].clone();

    let revoked = graphql(&app, Some(&token), REVOKE, json!({ "id": id })).await;

    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");
    assert_eq!(error_code(&me(&app, &token).await), "UNAUTHENTICATED");
}

/// An app whose sessions count as recently authenticated for one second only.
async fn app_with_short_reauth_window() -> TestApp {
    spawn_app_with(|settings| settings.auth.reauth_window = Duration::from_secs(1)).await
}

/// Outlasts the one-second window (times are kept in whole seconds).
async fn let_the_window_pass() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

#[tokio::test]
async fn sensitive_operations_need_a_recent_password_proof() {
    let app = app_with_short_reauth_window().await;
    let (email, token) = signed_in(&app).await;
    let_the_window_pass().await;

    let stale = graphql(&app, Some(&token), DELETE, json!({})).await;
    let wrong = graphql(&app, Some(&token), REAUTHENTICATE, json!({ "p": "not it at all" })).await;
    let still_stale = graphql(&app, Some(&token), DELETE, json!({})).await;
    let proved = graphql(&app, Some(&token), REAUTHENTICATE, json!({ "p": PASSWORD })).await;
    let deleted = graphql(&app, Some(&token), DELETE, json!({})).await;

    assert_eq!(error_code(&stale), "REAUTHENTICATION_REQUIRED", "{stale}");
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert_eq!(error_code(&still_stale), "REAUTHENTICATION_REQUIRED");
    assert_eq!(proved["data"]["reauthenticate"], true, "{proved}");
    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");
    assert_eq!(error_code(&try_login(&app, None, &email, PASSWORD).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn reauthenticate_is_a_password_operation_limited_like_login() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let twice = "mutation($p: String!) { a: reauthenticate(password: $p) b: reauthenticate(password: $p) }";

    let batched = graphql(&app, Some(&token), twice, json!({ "p": PASSWORD })).await;
    let mut codes = Vec::new();
    for _ in 0..12 {
        let body = graphql(&app, Some(&token), REAUTHENTICATE, json!({ "p": "wrong guess here" })).await;
        codes.push(error_code(&body).to_string());
    }

    assert!(batched["errors"].as_array().is_some_and(|errors| errors.len() == 1), "{batched}");
    assert_eq!(codes.last().unwrap(), "RATE_LIMITED", "{codes:?}");
}

/// The app's Redis keys that name `user` or its address, in any form.
pub async fn keys_of(app: &TestApp, user: UserId, email: &str) -> Vec<String> {
    let pattern = format!("{}*", app.state.redis.key(""));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut app.state.redis.connection())
        .await
        .unwrap();
    let mailbox = hex::encode(Sha256::digest(email.as_bytes()));
    let names = [user.to_string(), user.simple().to_string(), mailbox];
    keys.into_iter()
        .filter(|key| names.iter().any(|name| key.contains(name.as_str())))
        .collect()
}

#[tokio::test]
async fn deleting_an_account_leaves_nothing_of_it_and_frees_the_address() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    let other_device = login(&app, &email, PASSWORD).await;
    // A failed guess leaves counts on the account.
    try_login(&app, None, &email, "a wrong guess").await;
    let user = user_id(&app, &token).await;
    assert!(!keys_of(&app, user, &email).await.is_empty());

    let deleted = graphql(&app, Some(&token), DELETE, json!({})).await;
    let retried = graphql(&app, Some(&token), DELETE, json!({})).await;

    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");
    assert_eq!(retried["data"]["deleteAccount"], true, "a retry answers the same: {retried}");
    assert_eq!(app.state.storage.find_by_id(user).await.unwrap(), None);
    // What stays is the day-long marker that answers retries and stops queued mails.
    let erased = app.state.redis.key(&["user:{", &user.to_string(), "}:erased"].concat());
    assert_eq!(keys_of(&app, user, &email).await, vec![erased]);
    assert_eq!(error_code(&me(&app, &other_device).await), "UNAUTHENTICATED");
    register(&app, &email, PASSWORD).await;
    let again = login(&app, &email, PASSWORD).await;
    assert_ne!(user_id(&app, &again).await, user);
}

#[tokio::test]
async fn deleting_an_account_is_for_its_signed_in_owner() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;

    let anonymous = graphql(&app, None, DELETE, json!({})).await;
    let forged = graphql(&app, Some(&"0".repeat(96)), DELETE, json!({})).await;

    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&forged), "UNAUTHENTICATED");
    assert!(me(&app, &token).await["data"]["me"].is_object());
}

const SET_ROLE: &str = "mutation($id: ID!, $r: Role!) { setUserRole(id: $id, role: $r) { role } }";
const DISABLE: &str = "mutation($id: ID!, $why: String!) { disableUser(id: $id, reason: $why) { disabled { reason } } }";
const ENABLE: &str = "mutation($id: ID!) { enableUser(id: $id) { disabled { reason } } }";
const AUDIT: &str = "query($after: ID) { auditLog(first: 2, after: $after) { entries { actor action target detail } nextCursor } }";

/// A signed-in admin's token and id.
async fn admin(app: &TestApp) -> (String, UserId) {
    let token = login(app, &create_admin(app).await, PASSWORD).await;
    let id = user_id(app, &token).await;
    (token, id)
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled() {
    let app = spawn_app().await;
    let (token, id) = admin(&app).await;

    let demoted = graphql(&app, Some(&token), SET_ROLE, json!({ "id": id.to_string(), "r": "USER" })).await;

    assert_eq!(error_code(&demoted), "BAD_USER_INPUT", "{demoted}");
    let (second, second_id) = admin(&app).await;
    let disabled = graphql(&app, Some(&second), DISABLE, json!({ "id": id.to_string(), "why": "left" })).await;
    assert!(disabled["data"]["disableUser"]["disabled"].is_object(), "{disabled}");
    let last = graphql(&app, Some(&second), SET_ROLE, json!({ "id": second_id.to_string(), "r": "USER" })).await;
    assert_eq!(error_code(&last), "BAD_USER_INPUT", "a disabled admin does not count: {last}");
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let (first, first_id) = admin(&app).await;
    let (second, second_id) = admin(&app).await;

    let (a, b) = tokio::join!(
        graphql(&app, Some(&first), SET_ROLE, json!({ "id": second_id.to_string(), "r": "USER" })),
        graphql(&app, Some(&second), SET_ROLE, json!({ "id": first_id.to_string(), "r": "USER" })),
    );

    let succeeded = [&a, &b].iter().filter(|body| body["data"]["setUserRole"].is_object()).count();
    assert_eq!(succeeded, 1, "{a} {b}");
    assert_eq!(app.state.storage.count_admins().await.unwrap(), 1);
}

#[tokio::test]
async fn admin_changes_need_the_role_and_a_recent_password_proof() {
    let app = app_with_short_reauth_window().await;
    let (user_token, user) = {
        let (_, token) = signed_in(&app).await;
        let id = user_id(&app, &token).await;
        (token, id)
    };
    let (admin_token, _) = admin(&app).await;
    let promote = json!({ "id": user.to_string(), "r": "ADMIN" });

    let as_user = graphql(&app, Some(&user_token), SET_ROLE, promote.clone()).await;
    let_the_window_pass().await;
    let stale = graphql(&app, Some(&admin_token), SET_ROLE, promote.clone()).await;
    graphql(&app, Some(&admin_token), REAUTHENTICATE, json!({ "p": PASSWORD })).await;
    let promoted = graphql(&app, Some(&admin_token), SET_ROLE, promote).await;

    assert_eq!(error_code(&as_user), "FORBIDDEN");
    assert_eq!(error_code(&stale), "REAUTHENTICATION_REQUIRED");
    assert_eq!(promoted["data"]["setUserRole"]["role"], "ADMIN", "{promoted}");
}

#[tokio::test]
async fn a_disabled_users_sessions_stop_at_once_and_sign_in_answers_as_for_a_wrong_password() {
    let app = spawn_app().await;
    let (email, token) = signed_in(&app).await;
    let user = user_id(&app, &token).await;
    let (admin_token, _) = admin(&app).await;
    let wrong_password = try_login(&app, None, &email, "not the password").await;

    let disabled = graphql(&app, Some(&admin_token), DISABLE, json!({ "id": user.to_string(), "why": "spam" })).await;
    let after = me(&app, &token).await;
    let sign_in = try_login(&app, None, &email, PASSWORD).await;
    let enabled = graphql(&app, Some(&admin_token), ENABLE, json!({ "id": user.to_string() })).await;

    assert_eq!(disabled["data"]["disableUser"]["disabled"]["reason"], "spam", "{disabled}");
    assert_eq!(error_code(&after), "UNAUTHENTICATED");
    assert_eq!(sign_in["errors"], wrong_password["errors"]);
    assert!(enabled["data"]["enableUser"]["disabled"].is_null(), "{enabled}");
    assert!(login(&app, &email, PASSWORD).await.len() > 64);
}

#[tokio::test]
async fn every_admin_action_is_in_the_audit_log_newest_first() {
    let app = spawn_app().await;
    let (token, admin_id) = admin(&app).await;
    let (email, user_token) = signed_in(&app).await;
    let user = user_id(&app, &user_token).await.to_string();
    graphql(&app, Some(&token), DISABLE, json!({ "id": user, "why": "spam" })).await;
    graphql(&app, Some(&token), ENABLE, json!({ "id": user })).await;
    // Disabling ended the user's sessions.
    let user_token = login(&app, &email, PASSWORD).await;

    let first = graphql(&app, Some(&token), AUDIT, json!({})).await;
    let cursor = first["data"]["auditLog"]["nextCursor"].clone();
    let second = graphql(&app, Some(&token), AUDIT, json!({ "after": cursor })).await;
    let as_user = graphql(&app, Some(&user_token), AUDIT, json!({})).await;

    let entries = &first["data"]["auditLog"]["entries"];
    assert_eq!(entries[0]["action"], "ENABLE_USER", "{first}");
    assert_eq!(entries[1]["action"], "DISABLE_USER");
    assert_eq!(entries[1]["detail"], "spam");
    assert_eq!(entries[1]["actor"], admin_id.to_string());
    assert_eq!(entries[1]["target"], user.as_str());
    let older = &second["data"]["auditLog"]["entries"];
    assert_eq!(older[0]["action"], "CREATE_ADMIN", "{second}");
    assert!(older[0]["actor"].is_null());
    assert_eq!(error_code(&as_user), "FORBIDDEN");
}

#[tokio::test]
async fn admins_filter_users_by_email_prefix_and_role() {
    let app = spawn_app().await;
    let (token, _) = admin(&app).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for name in ["ada", "adam", "bob"] {
        register(&app, &format!("{name}.{tag}@example.com"), PASSWORD).await;
    }
    let query = "query($p: String, $r: Role) { users(first: 10, emailPrefix: $p, role: $r) { users { email role } } }";

    let ada = graphql(&app, Some(&token), query, json!({ "p": "ADA" })).await;
    let admins = graphql(&app, Some(&token), query, json!({ "r": "ADMIN" })).await;

    let emails: Vec<_> = ada["data"]["users"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(emails, [format!("ada.{tag}@example.com"), format!("adam.{tag}@example.com")], "{ada}");
    let roles = admins["data"]["users"]["users"].as_array().unwrap();
    assert!(!roles.is_empty() && roles.iter().all(|user| user["role"] == "ADMIN"), "{admins}");
}
