//! Container, CI and deployment files: every variant's Dockerfile, workflows, compose file
//! and Kubernetes manifests pass hadolint, actionlint, `docker-compose config`,
//! kubernetes-validate and checkov (one test case per variant, on one render each), and
//! each linter catches the broken copies in `tests/fixtures/broken/`, so a clean result
//! means something.

use std::path::{Path, PathBuf};

use ci::{lint::Linters, rendered, variant_tests};

variant_tests!(ships_lint_clean_container_ci_and_deployment_files);

fn broken(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/broken")
        .join(file)
}

fn ships_lint_clean_container_ci_and_deployment_files(name: &str) {
    let linters = Linters::ensure().unwrap();
    let variant = rendered::variant(name).unwrap_or_else(|error| panic!("{error:#}"));

    if let Err(error) = linters.lint_project(&variant.project) {
        panic!("{error:#}");
    }
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
