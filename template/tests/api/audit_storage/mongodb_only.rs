//! The audit log as MongoDB holds it. Ignored unless asked for:
//! `TEST_MONGODB_URI=… cargo test --test api -- --ignored mongodb_only`.

use mongodb::bson::{Bson, Document, doc};

use {{crate_name}}::{
    domain::UserId,
    storage::{
        Storage,
        audit::{AuditAction, AuditEntry, AuditRepository},
    },
};

use crate::helpers::TestDatabase;

#[tokio::test]
#[ignore = "needs MongoDB: set TEST_MONGODB_URI, run with --ignored mongodb_only"]
async fn an_entry_is_one_document_keyed_by_its_uuid_string() {
    let database = TestDatabase::required();
    let storage = Storage::connect(&database.settings()).await.unwrap();
    let target = UserId::generate();
    let entry = AuditEntry::new(None, AuditAction::DisableUser, Some(target), "sent spam");
    storage.record(&entry).await.unwrap();

    let stored = database
        .handle()
        .await
        .collection::<Document>("audit_log")
        .find_one(doc! {})
        .await
        .unwrap()
        .expect("nothing stored");

    // A string `_id` in UUIDv7 order is what lists walk, newest first, on the `_id`
    // index; an ObjectId or a binary UUID would not sort the same.
    assert_eq!(stored.get_str("_id").unwrap(), entry.id.to_string());
    assert_eq!(stored.get("actor"), Some(&Bson::Null));
    assert_eq!(stored.get_str("action").unwrap(), "disable_user");
    assert_eq!(stored.get_str("target").unwrap(), target.to_string());
    assert_eq!(stored.get_str("detail").unwrap(), "sent spam");
    assert_eq!(
        stored.get_i64("at_ms").unwrap(),
        entry.at.timestamp_millis()
    );
}
