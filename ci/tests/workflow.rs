//! The repository's own workflow tests every example: its variants matrix must list
//! exactly the files in `examples/`, so a new variant cannot go untested on GitHub.

use ci::{
    examples::{self, repo_root},
    hardening,
};

/// The `example: [a, b, …]` list of the workflow's matrix.
fn matrix_examples(workflow: &str) -> Vec<String> {
    let line = workflow
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("example:"))
        .expect("the workflow's matrix has an `example: [...]` line");
    let list = line
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("the matrix's examples are written as a one-line [a, b] list");
    let mut names: Vec<String> = list
        .split(',')
        .map(|name| name.trim().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_workflow_matrix_lists_every_example() {
    let path = repo_root().join(".github/workflows/ci.yml");
    let workflow = std::fs::read_to_string(&path).unwrap();
    let examples: Vec<String> = examples::all()
        .unwrap()
        .into_iter()
        .map(|example| example.name)
        .collect();

    assert_eq!(matrix_examples(&workflow), examples, "{}", path.display());
}

#[test]
fn the_matrix_is_read_from_its_one_line_list() {
    let workflow = "    matrix:\n      example: [minimal, full]\n";

    assert_eq!(matrix_examples(workflow), ["full", "minimal"]);
}

#[test]
fn the_workflow_pins_actions_by_commit_sha_and_declares_permissions() {
    let path = repo_root().join(".github/workflows/ci.yml");
    let workflow = std::fs::read_to_string(&path).unwrap();

    let findings = hardening::workflow_findings(&workflow).unwrap();

    assert!(findings.is_empty(), "{}: {findings:#?}", path.display());
}

#[test]
fn dependabot_refreshes_the_workflows_pinned_actions() {
    let path = repo_root().join(".github/dependabot.yml");
    let config = std::fs::read_to_string(&path).unwrap();

    let findings = hardening::dependabot_findings(&config, &["github-actions"]).unwrap();

    assert!(findings.is_empty(), "{}: {findings:#?}", path.display());
}
