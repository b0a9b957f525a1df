//! Contract of `UserRepository`: every backend must pass it, directly and through the
//! API on whichever store `spawn_app` picked. What only MongoDB can show is in
//! `mongodb_only`.

mod mongodb_only;

use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};

use {{crate_name}}::{
    auth::PasswordHasher,
    domain::{Email, Role, UserId},
    storage::{
        StorageError,
        users::{Disabled, SecondFactor, User, UserFilter, UserRepository},
    },
};

use crate::helpers::{TestApp, error_code, for_each_backend, spawn_app};

fn user(email: &str) -> User {
    User::new(Email::parse(email).unwrap(), "hash".into())
}

fn admin(email: &str) -> User {
    let mut admin = user(email);
    admin.role = Role::Admin;
    admin
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

fn ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id).collect()
}

fn with_prefix(prefix: &str) -> UserFilter {
    UserFilter {
        email_prefix: Some(prefix.into()),
        ..UserFilter::default()
    }
}

fn with_role(role: Role) -> UserFilter {
    UserFilter {
        role: Some(role),
        ..UserFilter::default()
    }
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
        assert!(by_id.disabled.is_none());
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
        assert!(matches!(
            backend.storage.set_disabled(nobody, None).await,
            Err(StorageError::NotFound)
        ));
        assert!(matches!(
            backend
                .storage
                .update_email(nobody, &email("nobody@example.com"))
                .await,
            Err(StorageError::NotFound)
        ));
        assert!(!backend.storage.delete(nobody).await.unwrap());
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

        let all = UserFilter::default();
        let first = backend.storage.list(&all, None, 2).await.unwrap();
        let second = backend.storage.list(&all, first.next, 2).await.unwrap();
        let last = backend.storage.list(&all, second.next, 2).await.unwrap();

        assert_eq!(ids(&first.users), ids(&users[0..2]));
        assert_eq!(ids(&second.users), ids(&users[2..4]));
        assert_eq!(ids(&last.users), ids(&users[4..]));
        assert!(last.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_prefix_keeps_the_addresses_that_start_with_it_in_any_case() {
    for_each_backend(async |backend| {
        let users = [
            user("ada@example.com"),
            user("bob@example.com"),
            user("adam@example.com"),
            user("grace.ada@example.com"),
        ];
        for user in &users {
            backend.storage.insert(user).await.unwrap();
        }

        let page = backend
            .storage
            .list(&with_prefix("ADA"), None, 10)
            .await
            .unwrap();

        assert_eq!(ids(&page.users), [users[0].id, users[2].id]);
        assert!(page.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_prefix_is_taken_literally_not_as_a_pattern() {
    for_each_backend(async |backend| {
        let dotted = user("a.b@example.com");
        let bracketed = user("(x)@example.com");
        for user in [
            &dotted,
            &user("axb@example.com"),
            &bracketed,
            &user("x@example.com"),
        ] {
            backend.storage.insert(user).await.unwrap();
        }

        let dot = backend.storage.list(&with_prefix("a.b"), None, 10).await;
        let open_paren = backend.storage.list(&with_prefix("(x"), None, 10).await;
        let star = backend.storage.list(&with_prefix(".*"), None, 10).await;

        assert_eq!(ids(&dot.unwrap().users), [dotted.id]);
        assert_eq!(ids(&open_paren.unwrap().users), [bracketed.id]);
        assert!(star.unwrap().users.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_role_keeps_its_users_and_combines_with_a_prefix() {
    for_each_backend(async |backend| {
        let users = [
            admin("ada@example.com"),
            user("adam@example.com"),
            admin("bob@example.com"),
        ];
        for user in &users {
            backend.storage.insert(user).await.unwrap();
        }
        let admins_named_ada = UserFilter {
            email_prefix: Some("ada".into()),
            role: Some(Role::Admin),
        };

        let admins = backend
            .storage
            .list(&with_role(Role::Admin), None, 10)
            .await;
        let members = backend.storage.list(&with_role(Role::User), None, 10).await;
        let both = backend.storage.list(&admins_named_ada, None, 10).await;

        assert_eq!(ids(&admins.unwrap().users), [users[0].id, users[2].id]);
        assert_eq!(ids(&members.unwrap().users), [users[1].id]);
        assert_eq!(ids(&both.unwrap().users), [users[0].id]);
    })
    .await;
}

#[tokio::test]
async fn a_filtered_list_pages_in_creation_order_past_the_users_it_skips() {
    for_each_backend(async |backend| {
        let mut kept = Vec::new();
        for i in 0..5 {
            backend
                .storage
                .insert(&user(&format!("skip{i}@example.com")))
                .await
                .unwrap();
            let keep = user(&format!("keep{i}@example.com"));
            backend.storage.insert(&keep).await.unwrap();
            kept.push(keep);
        }
        let filter = with_prefix("keep");

        let first = backend.storage.list(&filter, None, 2).await.unwrap();
        let second = backend.storage.list(&filter, first.next, 2).await.unwrap();
        let last = backend.storage.list(&filter, second.next, 2).await.unwrap();

        assert_eq!(ids(&first.users), ids(&kept[0..2]));
        assert_eq!(first.next, Some(kept[1].id));
        assert_eq!(ids(&second.users), ids(&kept[2..4]));
        assert_eq!(ids(&last.users), ids(&kept[4..]));
        assert!(last.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_deleted_user_is_gone_and_a_second_delete_finds_nothing() {
    for_each_backend(async |backend| {
        let doomed = user("doomed@example.com");
        let kept = user("kept@example.com");
        backend.storage.insert(&doomed).await.unwrap();
        backend.storage.insert(&kept).await.unwrap();

        let first = backend.storage.delete(doomed.id).await.unwrap();
        let second = backend.storage.delete(doomed.id).await.unwrap();

        assert!(first);
        assert!(!second);
        assert!(
            backend
                .storage
                .find_by_id(doomed.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            backend
                .storage
                .find_by_email(&doomed.email)
                .await
                .unwrap()
                .is_none()
        );
        let listed = backend.storage.list(&UserFilter::default(), None, 10).await;
        assert_eq!(ids(&listed.unwrap().users), [kept.id]);
    })
    .await;
}

#[tokio::test]
async fn a_deleted_users_address_is_free_for_a_new_account() {
    for_each_backend(async |backend| {
        let first = user("again@example.com");
        backend.storage.insert(&first).await.unwrap();
        backend.storage.delete(first.id).await.unwrap();

        let second = user("again@example.com");
        backend.storage.insert(&second).await.unwrap();

        let found = backend.storage.find_by_email(&second.email).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(second.id));
    })
    .await;
}

#[tokio::test]
async fn disabling_keeps_the_reason_and_time_until_the_account_is_enabled() {
    for_each_backend(async |backend| {
        let stored = user("mallory@example.com");
        backend.storage.insert(&stored).await.unwrap();
        let disabled = Disabled {
            reason: "sent spam".into(),
            at: Utc::now(),
        };

        backend
            .storage
            .set_disabled(stored.id, Some(&disabled))
            .await
            .unwrap();
        let while_disabled = backend.storage.find_by_id(stored.id).await.unwrap();
        backend.storage.set_disabled(stored.id, None).await.unwrap();
        let enabled = backend.storage.find_by_id(stored.id).await.unwrap();

        let kept = while_disabled.unwrap().disabled.expect("not disabled");
        assert_eq!(kept.reason, "sent spam");
        assert_eq!(kept.at.timestamp_millis(), disabled.at.timestamp_millis());
        assert!(enabled.unwrap().disabled.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_new_email_is_confirmed_and_frees_the_old_one() {
    for_each_backend(async |backend| {
        let stored = user("old@example.com");
        backend.storage.insert(&stored).await.unwrap();

        backend
            .storage
            .update_email(stored.id, &email("New@Example.com"))
            .await
            .unwrap();

        let found = backend
            .storage
            .find_by_email(&email("new@example.com"))
            .await;
        let found = found.unwrap().expect("not found by the new email");
        assert_eq!(found.id, stored.id);
        assert_eq!(found.email.as_ref(), "new@example.com");
        assert!(found.email_confirmed);
        let old = backend
            .storage
            .find_by_email(&email("old@example.com"))
            .await;
        assert!(old.unwrap().is_none());
        backend
            .storage
            .insert(&user("old@example.com"))
            .await
            .expect("the old address is still taken");
    })
    .await;
}

#[tokio::test]
async fn setting_the_current_email_again_only_confirms_it() {
    for_each_backend(async |backend| {
        let stored = user("same@example.com");
        backend.storage.insert(&stored).await.unwrap();

        backend
            .storage
            .update_email(stored.id, &stored.email)
            .await
            .unwrap();

        let found = backend.storage.find_by_email(&stored.email).await.unwrap();
        let found = found.expect("not found by its email");
        assert_eq!(found.id, stored.id);
        assert!(found.email_confirmed);
    })
    .await;
}

#[tokio::test]
async fn another_users_email_is_a_conflict_and_changes_nothing() {
    for_each_backend(async |backend| {
        let ada = user("ada@example.com");
        let grace = user("grace@example.com");
        backend.storage.insert(&ada).await.unwrap();
        backend.storage.insert(&grace).await.unwrap();

        let taken = backend
            .storage
            .update_email(ada.id, &email("GRACE@example.com"))
            .await;

        assert!(matches!(taken, Err(StorageError::Conflict)), "{taken:?}");
        let ada_now = backend.storage.find_by_id(ada.id).await.unwrap().unwrap();
        assert_eq!(ada_now.email, ada.email);
        assert!(!ada_now.email_confirmed);
        let owner = backend.storage.find_by_email(&grace.email).await.unwrap();
        assert_eq!(owner.map(|u| u.id), Some(grace.id));
    })
    .await;
}

#[tokio::test]
async fn only_enabled_admins_count_as_admins() {
    for_each_backend(async |backend| {
        assert_eq!(backend.storage.count_admins().await.unwrap(), 0);
        let first = admin("first@example.com");
        let second = admin("second@example.com");
        for user in [&first, &second, &user("member@example.com")] {
            backend.storage.insert(user).await.unwrap();
        }
        let disabled = Disabled {
            reason: "left the team".into(),
            at: Utc::now(),
        };

        let all = backend.storage.count_admins().await.unwrap();
        backend
            .storage
            .set_disabled(second.id, Some(&disabled))
            .await
            .unwrap();
        let without_the_disabled = backend.storage.count_admins().await.unwrap();
        backend.storage.set_disabled(second.id, None).await.unwrap();
        let enabled_again = backend.storage.count_admins().await.unwrap();

        assert_eq!(all, 2);
        assert_eq!(without_the_disabled, 1);
        assert_eq!(enabled_again, 2);
    })
    .await;
}

fn second_factor(codes: &[&str]) -> SecondFactor {
    SecondFactor {
        totp_secret: "v1:key:sealed".into(),
        recovery_codes: codes.iter().map(|code| (*code).to_string()).collect(),
        enabled_at: Utc::now(),
    }
}

#[tokio::test]
async fn a_second_factor_is_kept_until_it_is_turned_off() {
    for_each_backend(async |backend| {
        let stored = user("grace@example.com");
        backend.storage.insert(&stored).await.unwrap();
        let factor = second_factor(&["a", "b"]);

        backend
            .storage
            .set_second_factor(stored.id, Some(&factor))
            .await
            .unwrap();
        let while_on = backend.storage.find_by_id(stored.id).await.unwrap();
        backend.storage.set_second_factor(stored.id, None).await.unwrap();
        let off = backend.storage.find_by_id(stored.id).await.unwrap();
        let missing = backend
            .storage
            .set_second_factor(UserId::generate(), Some(&factor))
            .await;

        let kept = while_on.unwrap().second_factor.expect("no second factor");
        assert_eq!(kept.totp_secret, factor.totp_secret);
        assert_eq!(kept.recovery_codes, factor.recovery_codes);
        assert_eq!(kept.enabled_at.timestamp_millis(), factor.enabled_at.timestamp_millis());
        assert!(off.unwrap().second_factor.is_none());
        assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");
    })
    .await;
}

#[tokio::test]
async fn a_recovery_code_is_used_once_even_by_concurrent_callers() {
    for_each_backend(async |backend| {
        let stored = user("hopper@example.com");
        backend.storage.insert(&stored).await.unwrap();
        backend
            .storage
            .set_second_factor(stored.id, Some(&second_factor(&["a", "b", "c"])))
            .await
            .unwrap();

        let use_b = || backend.storage.use_recovery_code(stored.id, "b");
        let uses = tokio::join!(use_b(), use_b(), use_b(), use_b());
        let unknown = backend.storage.use_recovery_code(stored.id, "z").await.unwrap();
        let no_user = backend
            .storage
            .use_recovery_code(UserId::generate(), "a")
            .await
            .unwrap();

        let uses = [uses.0, uses.1, uses.2, uses.3];
        let used = uses.into_iter().filter(|used| *used.as_ref().unwrap()).count();
        assert_eq!(used, 1);
        assert!(!unknown && !no_user);
        let left = backend.storage.find_by_id(stored.id).await.unwrap().unwrap();
        assert_eq!(left.second_factor.unwrap().recovery_codes, vec!["a", "c"]);
    })
    .await;
}

#[tokio::test]
async fn a_user_without_a_second_factor_has_no_recovery_codes() {
    for_each_backend(async |backend| {
        let stored = user("lovelace@example.com");
        backend.storage.insert(&stored).await.unwrap();

        let used = backend.storage.use_recovery_code(stored.id, "a").await.unwrap();

        assert!(!used);
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
    let stored = app
        .state
        .storage
        .list(&UserFilter::default(), None, 10)
        .await
        .unwrap();
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
