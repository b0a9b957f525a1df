//! The schema contract from the command line, as CI runs it: `schema diff` lists each
//! change from a committed schema to this build's, and fails on a breaking one.

use std::process::Command;

const COMMITTED: &str = include_str!("../../schema.graphql");

/// `schema diff <old>` against this build's schema: whether it passed, and what it listed.
fn schema_diff(old: &str) -> (bool, String) {
    let folder = tempfile::tempdir().expect("Failed to create a folder");
    let path = folder.path().join("old.graphql");
    std::fs::write(&path, old).expect("Failed to write the old schema");
    let output = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"))
        .args(["schema", "diff"])
        .arg(&path)
        .output()
        .expect("Failed to run the binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_committed_schema_is_this_builds_without_a_change() {
    assert_eq!(schema_diff(COMMITTED), (true, String::new()));
}

#[test]
fn a_field_clients_could_use_that_is_gone_fails_the_diff() {
    let old = COMMITTED.replacen("type Query {", "type Query {\n  retired: String", 1);

    assert_eq!(
        schema_diff(&old),
        (false, "breaking: Query.retired: field removed\n".to_owned())
    );
}

#[test]
fn a_field_added_since_passes_the_diff_and_is_listed() {
    let field = "  \"Version of this API (the crate version).\"\n  apiVersion: String!\n";
    assert!(COMMITTED.contains(field));
    let old = COMMITTED.replacen(field, "", 1);

    assert_eq!(
        schema_diff(&old),
        (true, "safe: Query.apiVersion: field added\n".to_owned())
    );
}
