//! Contract of `UserRepository`: every backend must pass it.

use {{crate_name}}::{
    domain::{Email, Role, UserId},
    storage::{
        StorageError,
        users::{User, UserRepository},
    },
};

use crate::helpers::for_each_backend;

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
