//! Contract tests: every backend must pass them. MongoDB joins when `TEST_MONGODB_URI` is
//! set; what only MongoDB can show is in `mongodb_only`.

mod mongodb_only;

use std::time::{Duration, Instant};

use {{crate_name}}::storage::{Storage, StorageError};

use crate::helpers::{database_settings, for_each_backend};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn every_backend_answers_ping() {
    for_each_backend(async |backend| {
        backend
            .storage
            .ping(TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{} did not answer: {e}", backend.storage.backend()));
    })
    .await;
}

#[tokio::test]
async fn embedded_file_store_creates_its_directory_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/app.redb");
    let settings = database_settings(&format!("embedded://{}", path.display()), "unused");

    let first = Storage::connect(&settings)
        .await
        .expect("First open failed");
    drop(first);
    let again = Storage::connect(&settings).await.expect("Reopen failed");

    assert!(path.exists());
    again.ping(TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn embedded_file_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("embedded://{}", dir.path().join("app.redb").display());
    let settings = database_settings(&url, "unused");
    let _open = Storage::connect(&settings).await.unwrap();

    let second = Storage::connect(&settings).await;

    assert!(matches!(second, Err(StorageError::Embedded(_))));
}

#[tokio::test]
async fn unreachable_mongodb_fails_within_the_timeout() {
    // Port 1 on loopback: nothing listens there, so server selection must give up.
    let mut settings = database_settings("mongodb://127.0.0.1:1/?directConnection=true", "app");
    settings.timeout = Duration::from_secs(1);
    let started = Instant::now();

    let result = Storage::connect(&settings).await;

    assert!(result.is_err(), "connected to a closed port");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
