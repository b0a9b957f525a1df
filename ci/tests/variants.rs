//! Slow tier: every variant is rendered, then must pass `cargo fmt --check`,
//! `cargo clippy --all-targets -- -D warnings` and its own `cargo test` on the embedded
//! store; the variants with a second pass run their API tests again on MongoDB. The
//! schema each prints is snapshotted per variant.
//!
//! `CI_EXAMPLES=minimal,auth` narrows the run while iterating locally;
//! `CI_MONGODB_URI` runs the second pass on an existing server instead of SecantusDB.

use std::io::Write as _;

use ci::{check, examples, mongodb::MongoServer};

#[test]
fn every_variant_passes_fmt_clippy_and_its_own_tests_on_each_store() {
    let names: Vec<String> = std::env::var("CI_EXAMPLES")
        .map(|list| list.split(',').map(str::trim).map(String::from).collect())
        .unwrap_or_default();
    let selected = examples::select(&names).unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let target_dir = check::shared_target_dir();
    let needs_mongodb = selected.iter().any(|e| e.runs_on_mongodb().unwrap());
    // Held to the end of the test: dropping it stops the server, also on a panic.
    let mongodb = needs_mongodb.then(|| MongoServer::start().unwrap());

    let reports: Vec<_> = selected
        .iter()
        .map(|example| {
            check::check_variant(example, work_dir.path(), &target_dir, mongodb.as_ref())
        })
        .collect();

    // Written past the test harness's capture so the table shows on success too.
    let on = mongodb.as_ref().map_or("", |server| server.description());
    let _ = writeln!(
        std::io::stderr(),
        "\n{}MongoDB: {on}",
        check::table(&reports)
    );
    for report in &reports {
        if let Some(sdl) = &report.sdl {
            insta::assert_snapshot!(format!("schema@{}", report.name), sdl);
        }
        if let Some(names) = &report.test_names {
            insta::assert_snapshot!(format!("tests@{}", report.name), names);
        }
    }
    let failed: Vec<_> = reports
        .iter()
        .filter(|report| report.failure.is_some())
        .map(|report| report.name.as_str())
        .collect();
    assert!(failed.is_empty(), "failed variants: {failed:?}");
    assert!(
        reports.iter().all(|report| report.tests_passed > 0),
        "a variant ran no test"
    );
    for (example, report) in selected.iter().zip(&reports) {
        assert_eq!(
            report.mongodb.is_some(),
            example.runs_on_mongodb().unwrap(),
            "{}: the MongoDB pass did not run as planned",
            example.name
        );
    }
}
