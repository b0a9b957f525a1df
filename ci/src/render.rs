//! Rendering through the cargo-generate library, exactly as `cargo generate` would.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use anyhow::{Context, Result};
use cargo_generate::{GenerateArgs, TemplatePath, Vcs};

use crate::examples::{Example, repo_root};

/// cargo-generate keeps process-wide UI state; one render at a time.
static RENDER: Mutex<()> = Mutex::new(());

/// What to render: an example's values file plus `key=value` overrides.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub project_name: String,
    pub values_file: Option<PathBuf>,
    pub defines: Vec<String>,
}

impl Request {
    pub fn example(example: &Example, project_name: &str) -> Self {
        Self {
            project_name: project_name.to_string(),
            values_file: Some(example.values_file.clone()),
            defines: Vec::new(),
        }
    }
}

/// Renders into `<destination>/<project name>` and returns that directory.
///
/// # Errors
/// Fails with cargo-generate's message when a placeholder or hook refuses the input.
pub fn render(request: &Request, destination: &Path) -> Result<PathBuf> {
    let _guard = RENDER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let staging = stage_template()?;
    std::fs::create_dir_all(destination)
        .with_context(|| format!("Failed to create {}", destination.display()))?;
    let args = GenerateArgs {
        template_path: TemplatePath {
            path: Some(staging.path().display().to_string()),
            ..TemplatePath::default()
        },
        name: Some(request.project_name.clone()),
        destination: Some(destination.to_path_buf()),
        template_values_file: request
            .values_file
            .as_ref()
            .map(|path| path.display().to_string()),
        define: request.defines.clone(),
        silent: true,
        quiet: true,
        vcs: Some(Vcs::None),
        no_workspace: true,
        bin: true,
        lib: false,
        ..GenerateArgs::default()
    };
    cargo_generate::generate(args)
}

/// Copies only what `cargo generate` reads from a clone: the root config, the hooks and
/// the template. Build output and rendered projects in the repository stay behind.
fn stage_template() -> Result<tempfile::TempDir> {
    let root = repo_root();
    let staging = tempfile::tempdir().context("Failed to create a staging directory")?;
    std::fs::copy(
        root.join("cargo-generate.toml"),
        staging.path().join("cargo-generate.toml"),
    )?;
    for dir in ["hooks", "template"] {
        copy_tree(&root.join(dir), &staging.path().join(dir))?;
    }
    Ok(staging)
}

/// Copies the tree under `from` to `to`, hidden files included.
///
/// # Errors
/// Fails if a file cannot be read or written.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in crate::scan::walk(from).build() {
        let entry = entry?;
        let target = to.join(entry.path().strip_prefix(from)?);
        if entry.file_type().is_some_and(|kind| kind.is_dir()) {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("Failed to create {}", target.display()))?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("Failed to copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
