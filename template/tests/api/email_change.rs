//! Changing the sign-in address, and the security notices an account's owner gets by
//! mail: a new device, a session ended elsewhere, an address change, the goodbye.

use serde_json::{Value, json};

use {{crate_name}}::{
    auth::{About, AccountMail},
    domain::{Email, UserId},
};

use crate::{
    auth::{PASSWORD, graphql, login, login_with_agent, me, register, signed_in, unique_email},
    email_flows::{ADDRESS_TAKEN, last_mail_to, token_in},
    helpers::{TestApp, error_code, spawn_app},
};

const CHANGE: &str = "mutation($e: String!) { changeEmail(newEmail: $e) }";
const CONFIRM_CHANGE: &str = "mutation($t: String!) { confirmEmailChange(token: $t) }";
const CONFIRM_CHANGE_SUBJECT: &str = "Confirm your new email address";
const EMAIL_CHANGED: &str = "Your email address was changed";
const NEW_SIGN_IN: &str = "New sign-in to your account";
const SESSION_REVOKED: &str = "A session of yours was signed out";
const ACCOUNT_DELETED: &str = "Your account was deleted";

async fn change_email(app: &TestApp, token: &str, new_email: &str) -> Value {
    graphql(app, Some(token), CHANGE, json!({ "e": new_email })).await
}

async fn confirm_change(app: &TestApp, token: &str, link_token: &str) -> Value {
    graphql(app, Some(token), CONFIRM_CHANGE, json!({ "t": link_token })).await
}

#[tokio::test]
async fn an_email_change_completes_only_from_the_new_mailbox_and_tells_the_old_one() {
    let app = spawn_app().await;
    let (old, token) = signed_in(&app).await;
    let other_device = login(&app, &old, PASSWORD).await;
    let new = unique_email();

    let asked = change_email(&app, &token, &new).await;
    assert!(asked["data"]["changeEmail"].is_string(), "{asked}");
    assert_eq!(me(&app, &token).await["data"]["me"]["email"], old.as_str(), "nothing changes yet");
    let link = token_in(&last_mail_to(&app, &new, CONFIRM_CHANGE_SUBJECT).await);
    let confirmed = confirm_change(&app, &token, &link).await;
    let again = confirm_change(&app, &token, &link).await;

    assert_eq!(confirmed["data"]["confirmEmailChange"], true, "{confirmed}");
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "the link is single-use");
    assert_eq!(me(&app, &token).await["data"]["me"]["email"], new.as_str());
    assert_eq!(error_code(&me(&app, &other_device).await), "UNAUTHENTICATED");
    let notice = last_mail_to(&app, &old, EMAIL_CHANGED).await;
    assert!(!notice.raw.contains(&new), "the old address must not learn the new one");
    assert!(login(&app, &new, PASSWORD).await.len() > 64);
}

#[tokio::test]
async fn an_email_change_cannot_be_completed_with_another_accounts_token() {
    let app = spawn_app().await;
    let (_, victim) = signed_in(&app).await;
    let (_, attacker) = signed_in(&app).await;
    let new = unique_email();
    change_email(&app, &victim, &new).await;
    let link = token_in(&last_mail_to(&app, &new, CONFIRM_CHANGE_SUBJECT).await);

    let stolen = confirm_change(&app, &attacker, &link).await;
    let anonymous = graphql(&app, None, CONFIRM_CHANGE, json!({ "t": link })).await;
    let owner = confirm_change(&app, &victim, &link).await;

    assert_eq!(error_code(&stolen), "BAD_USER_INPUT");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(owner["data"]["confirmEmailChange"], true, "the link survived: {owner}");
}

#[tokio::test]
async fn changing_to_a_taken_address_answers_the_same_and_mails_its_owner() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app).await;
    let taken = unique_email();
    register(&app, &taken, PASSWORD).await;
    let free = unique_email();

    let to_taken = change_email(&app, &token, &taken).await;
    let to_free = change_email(&app, &token, &free).await;

    assert_eq!(to_taken, to_free);
    let notice = last_mail_to(&app, &taken, ADDRESS_TAKEN).await;
    assert!(!notice.raw.contains("token="), "a taken address got a link");
    assert!(
        app.mails_to(&taken).await.iter().all(|mail| mail.subject() != CONFIRM_CHANGE_SUBJECT),
    );
    let malformed = change_email(&app, &token, "not an address").await;
    assert_eq!(error_code(&malformed), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_reported_once() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    login(&app, &email, PASSWORD).await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

    login_with_agent(&app, &email, firefox).await;
    login_with_agent(&app, &email, firefox).await;

    let notices: Vec<_> = app
        .mails_to(&email)
        .await
        .into_iter()
        .filter(|mail| mail.subject() == NEW_SIGN_IN)
        .collect();
    assert_eq!(notices.len(), 1, "the first sign-in is no news, a known device neither");
    assert!(notices[0].raw.contains("Firefox on Linux"));
}

#[tokio::test]
async fn a_session_ended_from_another_device_is_reported() {
    let app = spawn_app().await;
    let (email, laptop) = signed_in(&app).await;
    let phone = login(&app, &email, PASSWORD).await;
    let sessions = graphql(&app, Some(&laptop), "{ sessions { id current } }", json!({})).await;
    let phone_id = sessions["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == false)
        .unwrap()["id"]
        .clone();

    graphql(&app, Some(&laptop), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": phone_id })).await;

    assert_eq!(error_code(&me(&app, &phone).await), "UNAUTHENTICATED");
    last_mail_to(&app, &email, SESSION_REVOKED).await;
}

#[tokio::test]
async fn a_deleted_account_gets_a_goodbye_and_no_mail_still_on_its_way_about_it() {
    let app = spawn_app().await;
    let email = unique_email();
    register(&app, &email, PASSWORD).await;
    let token = login(&app, &email, PASSWORD).await;
    let me = graphql(&app, Some(&token), "{ me { id } }", json!({})).await;
    let user = UserId::parse(me["data"]["me"]["id"].as_str().unwrap()).unwrap();
    let before = app.mails_to(&email).await.len();

    let deleted = graphql(&app, Some(&token), "mutation { deleteAccount }", json!({})).await;
    // A link asked for before the deletion{% if queue %}, still in the queue{% endif %}.
    let late = AccountMail {
        to: Email::parse(&email).unwrap(),
        about: About::ConfirmEmail { user },
    };
    app.state.account_mails.deliver(late).await.unwrap();

    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted}");
    let after = app.mails_to(&email).await;
    assert_eq!(after.len(), before + 1, "only the goodbye");
    assert_eq!(after.last().unwrap().subject(), ACCOUNT_DELETED);
}
