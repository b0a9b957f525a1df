//! Slow tier: every variant is rendered, then must pass `cargo fmt --check`,
//! `cargo clippy --all-targets -- -D warnings` and its own `cargo test` on the embedded
//! store; the variants with a second pass run their API tests again on MongoDB, and
//! those that keep data in Redis again on a Redis Cluster of their own. The
//! schema each prints and the list of its tests are snapshotted. One test case per
//! variant.
//!
//! `CI_EXAMPLES=minimal,auth` narrows the run while iterating locally (the other cases
//! pass at once, saying so); `CI_MONGODB_URI` runs the second pass on an existing server
//! instead of SecantusDB.

use std::{
    io::Write as _,
    sync::{Mutex, PoisonError},
};

use ci::{check, examples, mongodb::MongoServer, rendered, snapshots::Snapshot, variant_tests};

variant_tests!(passes_fmt_clippy_and_its_own_tests_on_each_store);

/// insta names the file after this binary: the snapshot must belong to this tier.
fn assert_snapshot(snapshot: &Snapshot) {
    assert_eq!(snapshot.tier, module_path!());
    insta::assert_snapshot!(snapshot.name.as_str(), &snapshot.contents);
}

fn passes_fmt_clippy_and_its_own_tests_on_each_store(name: &str) {
    if !examples::selected(name) {
        let _ = writeln!(std::io::stderr(), "{name}: not in CI_EXAMPLES, skipped");
        return;
    }
    // One variant builds at a time, as the shared target directory would have it anyway,
    // and its tests run on an otherwise quiet machine.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let variant = rendered::variant(name).unwrap_or_else(|error| panic!("{error:#}"));
    let runs_on_mongodb = variant.example.runs_on_mongodb().unwrap();
    let mongodb = runs_on_mongodb.then(|| MongoServer::shared().unwrap());

    let report = check::build_and_test(&variant, &check::shared_target_dir(), mongodb);

    // Written past the test harness's capture so the table shows on success too.
    let on = mongodb.map_or("", |server| server.description());
    let _ = writeln!(
        std::io::stderr(),
        "\n{}MongoDB: {on}",
        check::table(std::slice::from_ref(&report))
    );
    for snapshot in report.snapshots() {
        assert_snapshot(&snapshot);
    }
    assert!(report.failure.is_none(), "{name} failed");
    assert!(report.tests_passed > 0, "{name} ran no test");
    assert_eq!(
        report.mongodb.is_some(),
        runs_on_mongodb,
        "{name}: the MongoDB pass did not run as planned"
    );
    assert_eq!(
        report.cluster.is_some(),
        variant.example.runs_on_redis_cluster().unwrap(),
        "{name}: the Redis Cluster pass did not run as planned"
    );
}
