//! Users as MongoDB holds them: the indexes start-up makes, what it says when MongoDB
//! refuses one, and the documents' shape. Ignored unless asked for:
//! `TEST_MONGODB_URI=… cargo test --test api -- --ignored mongodb_only`.

use mongodb::{
    IndexModel,
    bson::{Bson, Document, doc},
};

use {{crate_name}}::{
    domain::{Email, Role, UserId},
    storage::{
        Storage, StorageError,
        users::{User, UserRepository},
    },
};

use crate::helpers::TestDatabase;

async fn connect(database: &TestDatabase) -> Result<Storage, StorageError> {
    Storage::connect(&database.settings()).await
}

/// Each index's name and whether it is unique, sorted by name.
async fn indexes(database: &TestDatabase) -> Vec<(String, bool)> {
    let specs = database
        .handle()
        .await
        .run_command(doc! { "listIndexes": "users" })
        .await
        .unwrap();
    let batch = specs
        .get_document("cursor")
        .and_then(|cursor| cursor.get_array("firstBatch"))
        .unwrap();
    let mut found: Vec<(String, bool)> = batch
        .iter()
        .filter_map(Bson::as_document)
        .map(|spec| {
            let name = spec.get_str("name").unwrap().to_string();
            (name, spec.get_bool("unique").unwrap_or(false))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn every_start_up_ensures_the_unique_email_index_and_nothing_more() {
    let database = TestDatabase::required();

    let first = connect(&database).await.unwrap();
    let second = connect(&database).await;

    if let Err(error) = second {
        panic!("a second start-up failed: {error}");
    }
    assert_eq!(
        indexes(&database).await,
        [("_id_".to_string(), false), ("email_1".to_string(), true)]
    );
    drop(first);
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn start_up_names_the_index_mongodb_refuses_over_duplicates() {
    let database = TestDatabase::required();
    let users = database.handle().await.collection::<Document>("users");
    users
        .insert_many([
            doc! { "_id": "a", "email": "twice@example.com" },
            doc! { "_id": "b", "email": "twice@example.com" },
        ])
        .await
        .unwrap();

    let error = connect(&database)
        .await
        .err()
        .expect("started over duplicates");

    let message = error.to_string();
    assert!(
        matches!(&error, StorageError::IndexRefused { collection, index, .. }
            if collection == "users" && index == "email_1"),
        "{message}"
    );
    assert!(message.contains("remove the duplicates"), "{message}");
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn start_up_names_an_older_index_in_the_way() {
    let database = TestDatabase::required();
    let users = database.handle().await.collection::<Document>("users");
    let not_unique = IndexModel::builder().keys(doc! { "email": 1 }).build();
    users.create_index(not_unique).await.unwrap();

    let error = connect(&database)
        .await
        .err()
        .expect("started past the old index");

    let message = error.to_string();
    assert!(
        matches!(&error, StorageError::IndexRefused { index, .. } if index == "email_1"),
        "{message}"
    );
    assert!(message.contains("drop it"), "{message}");
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn a_user_is_one_document_keyed_by_its_uuid_string() {
    let database = TestDatabase::required();
    let storage = connect(&database).await.unwrap();
    let user = User::new(Email::parse(" Ada@Example.com").unwrap(), "hash".into());
    storage.insert(&user).await.unwrap();

    let stored = database
        .handle()
        .await
        .collection::<Document>("users")
        .find_one(doc! {})
        .await
        .unwrap()
        .expect("nothing stored");

    // A string, not an ObjectId or a binary UUID: ids sort as text in creation order
    // (UUIDv7), which is what pages walk.
    assert_eq!(stored.get_str("_id").unwrap(), user.id.to_string());
    assert_eq!(stored.get_str("email").unwrap(), "ada@example.com");
    assert_eq!(
        stored.get_i64("created_at_ms").unwrap(),
        user.created_at.timestamp_millis()
    );
}

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn a_user_stored_before_accounts_could_be_disabled_reads_as_enabled() {
    let database = TestDatabase::required();
    let storage = connect(&database).await.unwrap();
    let id = UserId::generate();
    database
        .handle()
        .await
        .collection::<Document>("users")
        .insert_one(doc! {
            "_id": id.to_string(),
            "email": "old@example.com",
            "password_hash": "hash",
            "role": "admin",
            "email_confirmed": true,
            "created_at_ms": 1_700_000_000_000_i64,
        })
        .await
        .unwrap();

    let found = storage.find_by_id(id).await.unwrap().expect("not found");

    assert_eq!(found.role, Role::Admin);
    assert!(found.disabled.is_none());
    assert_eq!(storage.count_admins().await.unwrap(), 1);
}
