//! Slow tier: every variant is rendered, then must pass `cargo fmt --check`,
//! `cargo clippy --all-targets -- -D warnings` and its own `cargo test`; the schema it
//! prints is snapshotted per variant.
//!
//! `CI_EXAMPLES=minimal,auth` narrows the run while iterating locally.

use std::io::Write as _;

use ci::{check, examples};

#[test]
fn every_variant_passes_fmt_clippy_and_its_own_tests() {
    let names: Vec<String> = std::env::var("CI_EXAMPLES")
        .map(|list| list.split(',').map(str::trim).map(String::from).collect())
        .unwrap_or_default();
    let selected = examples::select(&names).unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let target_dir = check::shared_target_dir();

    let reports: Vec<_> = selected
        .iter()
        .map(|example| check::check_variant(example, work_dir.path(), &target_dir))
        .collect();

    // Written past the test harness's capture so the table shows on success too.
    let _ = writeln!(std::io::stderr(), "\n{}", check::table(&reports));
    for report in &reports {
        if let Some(sdl) = &report.sdl {
            insta::assert_snapshot!(format!("schema@{}", report.name), sdl);
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
}
