//! Container, CI and deployment files: every variant's Dockerfile, workflows, compose file
//! and Kubernetes manifests pass hadolint, actionlint, `docker-compose config`,
//! kubernetes-validate and checkov, and each linter catches the broken copies in
//! `tests/fixtures/broken/`, so a clean result means something.

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
fn every_variant_ships_lint_clean_container_ci_and_deployment_files() {
    let linters = Linters::ensure().unwrap();
    // The linters are separate processes, so variants lint side by side.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = examples::all()
            .unwrap()
            .into_iter()
            .map(|example| {
                let linters = &linters;
                scope.spawn(move || {
                    let dir = tempfile::tempdir().unwrap();
                    let project =
                        render::render(&Request::example(&example, &example.name), dir.path())
                            .unwrap_or_else(|e| panic!("{} failed to render: {e:#}", example.name));
                    linters
                        .lint_project(&project)
                        .err()
                        .map(|error| format!("{}:\n{error:#}", example.name))
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| run.join().unwrap())
            .collect()
    });
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
fn hadolint_fails_a_finding_of_style_severity() {
    let linters = Linters::ensure().unwrap();

    let error = linters.hadolint(&broken("style/Dockerfile")).unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("DL3048 style"), "{message}"); // invalid label key
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

#[test]
fn kubernetes_validate_fails_invalid_manifests() {
    let linters = Linters::ensure().unwrap();

    let error = linters
        .kubernetes_validate(&[
            broken("k8s/invalid/deployment.yaml"),
            broken("k8s/invalid/service.yaml"),
        ])
        .unwrap_err();

    let message = format!("{error:#}");
    assert!(
        message.contains("spec.replicas: 'two' is not of type 'integer'"),
        "{message}"
    );
    // Only strict validation refuses fields the schema does not know.
    assert!(message.contains("'selectr' was unexpected"), "{message}");
}

#[test]
fn checkov_fails_a_privileged_root_container() {
    let linters = Linters::ensure().unwrap();

    let error = linters.checkov(&broken("k8s/privileged")).unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("CKV_K8S_16"), "{message}"); // privileged
    assert!(message.contains("CKV_K8S_23"), "{message}"); // root
}
