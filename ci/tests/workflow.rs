//! The repository's own workflow tests every example: its variants matrix must list
//! exactly the files in `examples/`, so a new variant cannot go untested on GitHub.

use ci::{
    examples::{self, repo_root},
    hardening,
};

/// The `example` list of the workflow's matrix, sorted: the one job with a
/// `strategy.matrix.example`.
fn matrix_examples(workflow: &str) -> Vec<String> {
    let workflow: serde_norway::Value = serde_norway::from_str(workflow).unwrap();
    let lists: Vec<&Vec<serde_norway::Value>> = workflow["jobs"]
        .as_mapping()
        .expect("the workflow has jobs")
        .values()
        .filter_map(|job| job["strategy"]["matrix"]["example"].as_sequence())
        .collect();
    assert_eq!(lists.len(), 1, "one job has a matrix of examples");
    let mut names: Vec<String> = lists[0]
        .iter()
        .map(|name| name.as_str().expect("example names").to_string())
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
fn the_matrix_is_read_as_yaml_in_either_list_style() {
    let flow = "jobs:\n  v:\n    strategy:\n      matrix:\n        example: [minimal, full]\n";
    let block = "jobs:\n  a: {}\n  v:\n    strategy:\n      matrix:\n        example:\n          - minimal # the smallest\n          - full\n";

    assert_eq!(matrix_examples(flow), ["full", "minimal"]);
    assert_eq!(matrix_examples(block), ["full", "minimal"]);
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
