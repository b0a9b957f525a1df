//! Finds template tags that survived rendering. An undefined placeholder renders as an
//! empty string and some render errors leave a file untouched, so a clean exit code
//! proves nothing; the output has to be read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ignore::{
    WalkBuilder,
    gitignore::{Gitignore, GitignoreBuilder},
};

const TAGS: [&str; 3] = ["{{", "{%", "{#"];

#[derive(Debug)]
pub struct Leftover {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.file.display(),
            self.line,
            self.text.trim()
        )
    }
}

/// The files cargo-generate copies without rendering them: the `[template] exclude`
/// patterns of `cargo-generate.toml`, relative to `template/`. Their tags belong to
/// another engine (askama's mail templates), so they stay.
pub struct Verbatim(Gitignore);

impl Verbatim {
    /// The template's own list, from the repository's `cargo-generate.toml`.
    ///
    /// # Errors
    /// Fails if the file cannot be read or a pattern is invalid.
    pub fn of_template() -> Result<Self> {
        let config = crate::examples::repo_root().join("cargo-generate.toml");
        let text = std::fs::read_to_string(&config)
            .with_context(|| format!("Failed to read {}", config.display()))?;
        Self::from_config(&text)
    }

    /// The list of a `cargo-generate.toml` given as text.
    ///
    /// # Errors
    /// Fails if the text is not TOML or a pattern is invalid.
    pub fn from_config(text: &str) -> Result<Self> {
        let config: toml::Table = text.parse().context("Invalid cargo-generate.toml")?;
        let patterns = config
            .get("template")
            .and_then(|template| template.get("exclude"))
            .and_then(toml::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // The matcher cargo-generate builds (`include_exclude.rs`): gitignore rules,
        // tried against the path and each of its parents.
        let mut builder = GitignoreBuilder::new("");
        for pattern in patterns {
            let pattern = pattern
                .as_str()
                .context("`[template] exclude` holds a non-string")?;
            builder.add_line(None, pattern)?;
        }
        Ok(Self(builder.build()?))
    }

    /// Whether `relative`, a path inside the project, is copied verbatim.
    pub fn contains(&self, relative: &Path) -> bool {
        self.0
            .matched_path_or_any_parents(relative, false)
            .is_ignore()
    }
}

/// Every line under `dir` holding `{{`, `{%` or `{#`, outside the `verbatim` files;
/// binary files are skipped.
///
/// # Errors
/// Fails if the tree cannot be read.
pub fn leftover_tags(dir: &Path, verbatim: &Verbatim) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    for file in files(dir)? {
        if verbatim.contains(file.strip_prefix(dir).unwrap_or(&file)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            if has_tag(line) {
                found.push(Leftover {
                    file: file.strip_prefix(dir).unwrap_or(&file).to_path_buf(),
                    line: index + 1,
                    text: line.to_string(),
                });
            }
        }
    }
    Ok(found)
}

/// Whether `text` holds a Liquid tag anywhere, GitHub expressions (`${{ … }}`) aside.
pub fn holds_tag(text: &str) -> bool {
    text.lines().any(has_tag)
}

/// Whether `line` holds a template tag. `${{ … }}` is a GitHub Actions expression that
/// the template writes inside `{% raw %}`, so it is expected in the output.
fn has_tag(line: &str) -> bool {
    TAGS.iter().any(|tag| line.replace("${{", "").contains(tag))
}

/// Every file under `dir` as a sorted list of paths, hidden ones included; a `target/`
/// folder (a rendered project's build output) is left out.
///
/// # Errors
/// Fails if the tree cannot be read.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in walk(dir)
        .filter_entry(|entry| entry.file_name() != "target")
        .build()
    {
        let entry = entry?;
        if entry.file_type().is_some_and(|kind| kind.is_file()) {
            found.push(entry.into_path());
        }
    }
    found.sort();
    Ok(found)
}

/// A walk of everything under `dir`: no ignore file or hidden-file rule applies, since
/// a template's `.gitignore` and `.github/` are part of what it ships.
pub fn walk(dir: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(dir);
    builder.standard_filters(false);
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_expressions_are_not_template_tags() {
        assert!(!has_tag("if: ${{ github.ref_type == 'tag' }}"));
        assert!(has_tag("name: {{project-name}}"));
        assert!(has_tag("${{ a }} {% if auth %}"));
    }

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn reported(dir: &Path, verbatim: &Verbatim) -> Vec<String> {
        leftover_tags(dir, verbatim)
            .unwrap()
            .iter()
            .map(|leftover| leftover.file.display().to_string())
            .collect()
    }

    #[test]
    fn tags_in_files_excluded_from_liquid_are_not_leftovers() {
        let verbatim = Verbatim::from_config(
            "[template]\nsub_templates = [\"template\"]\nexclude = [\"templates/mail\"]\n",
        )
        .unwrap();
        let dir = project(&[
            ("templates/mail/base.html", "<p>{{ signature }}</p>"),
            (
                "templates/mail/welcome.txt",
                "{% extends \"mail/base.txt\" %}",
            ),
            ("templates/other.html", "{{ forgotten }}"),
            ("src/templates/mail/x.rs", "// {% if auth %}"),
            ("src/main.rs", "fn main() {}"),
        ]);

        assert_eq!(
            reported(dir.path(), &verbatim),
            ["src/templates/mail/x.rs", "templates/other.html"]
        );
    }

    #[test]
    fn without_an_exclude_list_every_file_is_scanned() {
        let verbatim = Verbatim::from_config("[template]\n").unwrap();
        let dir = project(&[("templates/mail/base.html", "{{ signature }}")]);

        assert_eq!(
            reported(dir.path(), &verbatim),
            ["templates/mail/base.html"]
        );
    }
}
