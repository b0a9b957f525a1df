//! The named variants in `examples/`, one values file each.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The template repository's root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the ci crate lives inside the repository")
        .to_path_buf()
}

/// The variants [`crate::variant_tests!`] writes a test for, in its order.
pub const VARIANTS: [&str; 8] = [
    "minimal",
    "auth",
    "email",
    "queue",
    "auth-email",
    "auth-queue",
    "email-queue",
    "full",
];

/// The variable that narrows the slow tiers to some variants: `CI_EXAMPLES=minimal,auth`.
pub const SELECTION_VARIABLE: &str = "CI_EXAMPLES";

/// Whether `CI_EXAMPLES` selects the variant `name`: every variant when it is unset or
/// empty.
pub fn selected(name: &str) -> bool {
    in_selection(&std::env::var(SELECTION_VARIABLE).unwrap_or_default(), name)
}

/// Whether the comma-separated `list` names `name`; an empty list names every variant.
fn in_selection(list: &str, name: &str) -> bool {
    let mut names = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty());
    list.trim().is_empty() || names.any(|selected| selected == name)
}

#[derive(Debug, Clone)]
pub struct Example {
    pub name: String,
    pub values_file: PathBuf,
}

impl Example {
    /// The `[values]` table of the example's file.
    ///
    /// # Errors
    /// Fails if the file cannot be read or parsed, or has no `[values]` table.
    pub fn values(&self) -> Result<toml::Table> {
        let text = std::fs::read_to_string(&self.values_file)
            .with_context(|| format!("Failed to read {}", self.values_file.display()))?;
        let mut document: toml::Table = text
            .parse()
            .with_context(|| format!("Failed to parse {}", self.values_file.display()))?;
        match document.remove("values") {
            Some(toml::Value::Table(values)) => Ok(values),
            _ => bail!("{} has no [values] table", self.values_file.display()),
        }
    }
}

impl Example {
    /// Whether the variant's API tests run a second time, on MongoDB: every variant
    /// with `auth` (they store accounts) and `minimal`, whose tests cover what every
    /// variant shares (connecting, readiness, the storage contract). `email`, `queue` and
    /// `email-queue` store nothing more and render the same storage code as `minimal`;
    /// a test in `tests/render.rs` keeps that true.
    ///
    /// # Errors
    /// Fails if the example's values cannot be read.
    pub fn runs_on_mongodb(&self) -> Result<bool> {
        let values = self.values()?;
        let on = |module: &str| {
            values
                .get(module)
                .and_then(toml::Value::as_bool)
                .with_context(|| format!("{}: `{module}` must be true or false", self.name))
        };
        Ok(on("auth")? || !(on("email")? || on("queue")?))
    }

    /// Whether the variant keeps data in Redis (`auth` or `queue`), so that its API
    /// tests run a second time on a Redis Cluster.
    ///
    /// # Errors
    /// Fails if the example's values cannot be read.
    pub fn runs_on_redis_cluster(&self) -> Result<bool> {
        let values = self.values()?;
        let on = |module: &str| {
            values
                .get(module)
                .and_then(toml::Value::as_bool)
                .with_context(|| format!("{}: `{module}` must be true or false", self.name))
        };
        Ok(on("auth")? || on("queue")?)
    }
}

/// Every example, sorted by name.
///
/// # Errors
/// Fails if `examples/` cannot be read.
pub fn all() -> Result<Vec<Example>> {
    let dir = repo_root().join("examples");
    let mut examples = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("Failed to read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .context("example file names must be UTF-8")?
                .to_string();
            examples.push(Example {
                name,
                values_file: path,
            });
        }
    }
    examples.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(examples)
}

/// The examples called `names`, or all of them when `names` is empty.
///
/// # Errors
/// Fails on an unknown name, listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<Example>> {
    let examples = all()?;
    if names.is_empty() {
        return Ok(examples);
    }
    names
        .iter()
        .map(|name| {
            examples
                .iter()
                .find(|example| &example.name == name)
                .cloned()
                .with_context(|| {
                    let known: Vec<_> = examples.iter().map(|e| e.name.as_str()).collect();
                    format!("No example `{name}`; known: {}", known.join(", "))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variant_tests_cover_exactly_the_examples() {
        let mut listed = VARIANTS.to_vec();
        listed.sort_unstable();
        let examples: Vec<String> = all().unwrap().into_iter().map(|e| e.name).collect();

        assert_eq!(listed, examples);
    }

    #[test]
    fn a_selection_names_its_variants_and_an_empty_one_all() {
        assert!(in_selection("minimal, auth-email", "auth-email"));
        assert!(!in_selection("minimal, auth-email", "auth"));
        assert!(in_selection(" ", "full"));
    }
}
