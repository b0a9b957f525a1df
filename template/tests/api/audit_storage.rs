//! Contract of `AuditRepository`: every backend must pass it. What only MongoDB can show
//! is in `mongodb_only`.

mod mongodb_only;

use {{crate_name}}::{
    domain::UserId,
    storage::{
        StorageError,
        audit::{AuditAction, AuditEntry, AuditId, AuditRepository},
    },
};

use crate::helpers::{TestBackend, for_each_backend};

fn entry(detail: &str) -> AuditEntry {
    AuditEntry::new(
        Some(UserId::generate()),
        AuditAction::SetRole,
        Some(UserId::generate()),
        detail,
    )
}

fn ids(entries: &[AuditEntry]) -> Vec<AuditId> {
    entries.iter().map(|e| e.id).collect()
}

/// Records `count` entries, oldest first, and returns them in that order.
async fn record(backend: &TestBackend, count: usize) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    for i in 0..count {
        let entry = entry(&format!("entry {i}"));
        backend.storage.record(&entry).await.unwrap();
        entries.push(entry);
    }
    entries
}

#[tokio::test]
async fn an_empty_log_is_one_empty_page() {
    for_each_backend(async |backend| {
        let page = backend.storage.list(None, 10).await.unwrap();

        assert!(page.entries.is_empty());
        assert!(page.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn an_entry_reads_back_as_recorded() {
    for_each_backend(async |backend| {
        let by_an_admin = entry("role: admin");
        let from_the_command_line = AuditEntry::new(
            None,
            AuditAction::CreateAdmin,
            Some(UserId::generate()),
            "admin@example.com",
        );
        backend.storage.record(&by_an_admin).await.unwrap();
        backend
            .storage
            .record(&from_the_command_line)
            .await
            .unwrap();

        let page = backend.storage.list(None, 10).await.unwrap();

        let [newest, oldest] = page.entries.as_slice() else {
            panic!("expected two entries: {:?}", page.entries);
        };
        for (read, recorded) in [(newest, &from_the_command_line), (oldest, &by_an_admin)] {
            assert_eq!(read.id, recorded.id);
            assert_eq!(read.actor, recorded.actor);
            assert_eq!(read.action, recorded.action);
            assert_eq!(read.target, recorded.target);
            assert_eq!(read.detail, recorded.detail);
            assert_eq!(read.at.timestamp_millis(), recorded.at.timestamp_millis());
        }
    })
    .await;
}

#[tokio::test]
async fn an_entry_is_recorded_once() {
    for_each_backend(async |backend| {
        let first = entry("first");
        backend.storage.record(&first).await.unwrap();
        let mut rewritten = first.clone();
        rewritten.detail = "rewritten".into();

        let again = backend.storage.record(&rewritten).await;

        assert!(matches!(again, Err(StorageError::Conflict)), "{again:?}");
        let page = backend.storage.list(None, 10).await.unwrap();
        assert_eq!(ids(&page.entries), [first.id]);
        assert_eq!(page.entries[0].detail, "first");
    })
    .await;
}

#[tokio::test]
async fn entries_are_listed_newest_first_in_pages() {
    for_each_backend(async |backend| {
        let entries = record(backend, 5).await;

        let first = backend.storage.list(None, 2).await.unwrap();
        let second = backend.storage.list(first.next, 2).await.unwrap();
        let last = backend.storage.list(second.next, 2).await.unwrap();

        assert_eq!(ids(&first.entries), [entries[4].id, entries[3].id]);
        assert_eq!(first.next, Some(entries[3].id));
        assert_eq!(ids(&second.entries), [entries[2].id, entries[1].id]);
        assert_eq!(ids(&last.entries), [entries[0].id]);
        assert!(last.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_page_that_ends_the_log_has_no_cursor() {
    for_each_backend(async |backend| {
        let entries = record(backend, 4).await;

        let first = backend.storage.list(None, 2).await.unwrap();
        let last = backend.storage.list(first.next, 2).await.unwrap();

        assert_eq!(ids(&last.entries), [entries[1].id, entries[0].id]);
        assert!(last.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn before_lists_only_strictly_older_entries() {
    for_each_backend(async |backend| {
        let entries = record(backend, 3).await;

        let before_the_newest = backend.storage.list(Some(entries[2].id), 10).await;
        let before_the_oldest = backend.storage.list(Some(entries[0].id), 10).await;

        assert_eq!(
            ids(&before_the_newest.unwrap().entries),
            [entries[1].id, entries[0].id]
        );
        assert!(before_the_oldest.unwrap().entries.is_empty());
    })
    .await;
}
