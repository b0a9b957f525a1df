//! Contract of `UserRepository`: every backend must pass it, directly and through the
//! API on whichever store `spawn_app` picked. What only MongoDB can show is in
//! `mongodb_only`.

mod mongodb_only;

use secrecy::SecretString;
use serde_json::{Value, json};

use {{crate_name}}::{
    auth::PasswordHasher,
    domain::{Email, Role, UserId},
    storage::{
        StorageError,
        users::{User, UserRepository},
    },
};

use crate::helpers::{TestApp, error_code, for_each_backend, spawn_app};

fn user(email: &str) -> User {
    User::new(Email::parse(email).unwrap(), "hash".into())
}

#[tokio::test]
async fn a_stored_user_is_found_by_id_and_by_email() {
    for_each_backend(async |backend| {
        let stored = user("ada@example.com");
        backend.storage.insert(&stored).await.unwrap();

        let by_id = backend.storage.find_by_id(stored.id).await.unwrap();
        let by_email = backend
            .storage
            .find_by_email(&Email::parse("ADA@example.com").unwrap())
            .await
            .unwrap();

        let by_id = by_id.expect("not found by id");
        assert_eq!(by_id.email, stored.email);
        assert_eq!(by_id.role, Role::User);
        assert!(!by_id.email_confirmed);
        assert_eq!(
            by_id.created_at.timestamp_millis(),
            stored.created_at.timestamp_millis()
        );
        assert_eq!(by_email.map(|u| u.id), Some(stored.id));
    })
    .await;
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_in_any_case() {
    for_each_backend(async |backend| {
        backend
            .storage
            .insert(&user("grace@example.com"))
            .await
            .unwrap();

        let again = backend.storage.insert(&user(" Grace@Example.com")).await;

        assert!(matches!(again, Err(StorageError::Conflict)), "{again:?}");
    })
    .await;
}

#[tokio::test]
async fn missing_users_are_none_and_updates_to_them_fail() {
    for_each_backend(async |backend| {
        let nobody = UserId::generate();

        assert!(backend.storage.find_by_id(nobody).await.unwrap().is_none());
        assert!(matches!(
            backend.storage.set_role(nobody, Role::Admin).await,
            Err(StorageError::NotFound)
        ));
        assert!(matches!(
            backend.storage.update_password_hash(nobody, "x").await,
            Err(StorageError::NotFound)
        ));
    })
    .await;
}

#[tokio::test]
async fn role_and_password_hash_updates_persist() {
    for_each_backend(async |backend| {
        let stored = user("linus@example.com");
        backend.storage.insert(&stored).await.unwrap();

        backend
            .storage
            .set_role(stored.id, Role::Admin)
            .await
            .unwrap();
        backend
            .storage
            .update_password_hash(stored.id, "new-hash")
            .await
            .unwrap();
        backend.storage.confirm_email(stored.id).await.unwrap();

        let reloaded = backend
            .storage
            .find_by_id(stored.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.role, Role::Admin);
        assert_eq!(reloaded.password_hash, "new-hash");
        assert!(reloaded.email_confirmed);
    })
    .await;
}

#[tokio::test]
async fn users_are_listed_oldest_first_in_pages() {
    for_each_backend(async |backend| {
        let users: Vec<User> = (0..5)
            .map(|i| user(&format!("user{i}@example.com")))
            .collect();
        for user in &users {
            backend.storage.insert(user).await.unwrap();
        }

        let first = backend.storage.list(None, 2).await.unwrap();
        let second = backend.storage.list(first.next, 2).await.unwrap();
        let last = backend.storage.list(second.next, 2).await.unwrap();

        let ids = |page: &[User]| page.iter().map(|u| u.id).collect::<Vec<_>>();
        assert_eq!(ids(&first.users), ids(&users[0..2]));
        assert_eq!(ids(&second.users), ids(&users[2..4]));
        assert_eq!(ids(&last.users), ids(&users[4..]));
        assert!(last.next.is_none());
    })
    .await;
}

const PASSWORD: &str = "correct horse battery";

async fn graphql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn register(app: &TestApp, email: &str, password: &str) -> Value {
    let mutation =
        "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }";
    graphql(app, None, mutation, json!({ "e": email, "p": password })).await
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    let mutation = "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken user { id } } }";
    graphql(app, None, mutation, json!({ "e": email, "p": password })).await
}

/// An admin stored directly (the API makes none), signed in through the API.
async fn admin_token(app: &TestApp) -> String {
    let email = Email::parse("admin@example.com").unwrap();
    let hash = PasswordHasher::new(4)
        .hash_new(SecretString::from(PASSWORD), &email)
        .await
        .unwrap();
    let mut admin = User::new(email, hash);
    admin.role = Role::Admin;
    app.state.storage.insert(&admin).await.unwrap();
    let body = login(app, "admin@example.com", PASSWORD).await;
    body["data"]["login"]["sessionToken"]
        .as_str()
        .unwrap_or_else(|| panic!("admin login failed: {body}"))
        .to_string()
}

#[tokio::test]
async fn registering_a_taken_address_in_another_case_keeps_the_first_account() {
    let app = spawn_app().await;

    let first = register(&app, "Ada@Example.com", PASSWORD).await;
    let again = register(&app, " ada@example.COM", "another long password").await;

    // The store's Conflict must reach the resolver as such: it answers exactly as for a
    // new address, and the first account is the only one.
    assert_eq!(again, first);
    assert!(first["errors"].is_null(), "{first}");
    let signed_in = login(&app, "ada@example.com", PASSWORD).await;
    let impostor = login(&app, "ada@example.com", "another long password").await;
    assert!(
        signed_in["data"]["login"]["sessionToken"].is_string(),
        "{signed_in}"
    );
    assert_eq!(error_code(&impostor), "UNAUTHENTICATED");
    let stored = app.state.storage.list(None, 10).await.unwrap();
    assert_eq!(stored.users.len(), 1);
}

#[tokio::test]
async fn admins_page_through_users_in_registration_order_by_id() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let emails: Vec<String> = (0..4).map(|i| format!("user{i}@example.com")).collect();
    for email in &emails {
        register(&app, email, PASSWORD).await;
    }
    let query =
        "query($after: ID) { users(first: 2, after: $after) { users { id email } nextCursor } }";

    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = graphql(&app, Some(&token), query, json!({ "after": after })).await;
        let page = body["data"]["users"].clone();
        assert!(page.is_object(), "{body}");
        after = page["nextCursor"].clone();
        pages.push(page);
        if after.is_null() {
            break;
        }
    }

    let listed: Vec<&Value> = pages
        .iter()
        .flat_map(|page| page["users"].as_array().unwrap())
        .collect();
    let listed_emails: Vec<&str> = listed
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(listed_emails[0], "admin@example.com");
    assert_eq!(&listed_emails[1..], emails.as_slice());
    assert_eq!(pages.len(), 3, "five users in pages of two");
    // Each cursor is the last id of its page, and every id is a UUID the API accepts back.
    assert_eq!(pages[0]["nextCursor"], pages[0]["users"][1]["id"]);
    for user in listed {
        let id = UserId::parse(user["id"].as_str().unwrap()).unwrap();
        let found = app.state.storage.find_by_id(id).await.unwrap();
        assert_eq!(
            found.map(|u| u.email.to_string()).as_deref(),
            user["email"].as_str()
        );
    }
}
