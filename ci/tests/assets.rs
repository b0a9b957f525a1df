//! Container and CI files: every variant's Dockerfile, workflows and compose file pass
//! hadolint, actionlint and `docker-compose config`, and each linter catches the broken
//! copies in `tests/fixtures/broken/`, so a clean result means something.

use std::path::{Path, PathBuf};

use ci::{
    examples,
    lint::Linters,
    render::{self, Request},
};

fn broken(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/broken")
        .join(file)
}

#[test]
fn every_variant_ships_lint_clean_container_and_ci_files() {
    let linters = Linters::ensure().unwrap();
    let mut failures = Vec::new();
    for example in examples::all().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let project = render::render(&Request::example(&example, &example.name), dir.path())
            .unwrap_or_else(|e| panic!("{} failed to render: {e:#}", example.name));
        if let Err(error) = linters.lint_project(&project) {
            failures.push(format!("{}:\n{error:#}", example.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn hadolint_fails_a_broken_dockerfile() {
    let linters = Linters::ensure().unwrap();

    let error = linters.hadolint(&broken("Dockerfile")).unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("DL3007"), "{message}"); // `latest` tag
    assert!(message.contains("DL3025"), "{message}"); // shell-form CMD
}

#[test]
fn actionlint_fails_a_broken_workflow() {
    let linters = Linters::ensure().unwrap();

    let error = linters
        .actionlint(&[broken(".github/workflows/ci.yml")])
        .unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("undefined_job"), "{message}");
    assert!(message.contains("no_such_context"), "{message}");
}

#[test]
fn docker_compose_fails_a_broken_compose_file() {
    let linters = Linters::ensure().unwrap();

    let error = linters.compose_config(&broken("")).unwrap_err();

    assert!(format!("{error:#}").contains("depends_on"), "{error:#}");
}
