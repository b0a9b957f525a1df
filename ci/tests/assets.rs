//! Container, CI and deployment files: every variant's Dockerfile, workflows, compose file
//! and Kubernetes manifests pass hadolint, actionlint, `docker-compose config`,
//! kubernetes-validate and checkov (one test case per variant, on one render each), and
//! each linter catches the broken copies in `tests/fixtures/broken/`, so a clean result
//! means something. The vendored GraphiQL build is the one its checksums name.

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

/// `ci/graphiql/fetch.sh` wrote these files and their `SHA256SUMS`; an edit by hand, or a
/// pin bumped without running it, fails here.
#[test]
fn the_vendored_graphiql_build_matches_its_checksums() {
    let folder = ci::examples::repo_root().join("template/static/graphiql");

    let check = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&folder)
        .output()
        .expect("sha256sum could not be started");

    let listed = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(listed.matches(": OK").count(), 6, "{listed}");
    let pins = std::fs::read_to_string(folder.join("SHA256SUMS")).unwrap();
    let script =
        std::fs::read_to_string(ci::examples::repo_root().join("ci/graphiql/fetch.sh")).unwrap();
    for pin in pins
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|word| word.contains('@'))
    {
        assert!(
            script.contains(pin),
            "SHA256SUMS names {pin}, which fetch.sh does not pin"
        );
    }
}
