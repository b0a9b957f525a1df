//! Finds template tags that survived rendering. An undefined placeholder renders as an
//! empty string and some render errors leave a file untouched, so a clean exit code
//! proves nothing; the output has to be read.

use std::path::{Path, PathBuf};

use anyhow::Result;

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

/// Every line under `dir` holding `{{`, `{%` or `{#`; binary files are skipped.
///
/// # Errors
/// Fails if the tree cannot be read.
pub fn leftover_tags(dir: &Path) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    for file in files(dir)? {
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

/// Whether `line` holds a template tag. `${{ … }}` is a GitHub Actions expression that
/// the template writes inside `{% raw %}`, so it is expected in the output.
fn has_tag(line: &str) -> bool {
    TAGS.iter().any(|tag| line.replace("${{", "").contains(tag))
}

/// Every file under `dir` as a sorted list of paths (`target/` excluded).
///
/// # Errors
/// Fails if the tree cannot be read.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut pending = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if entry.file_name() != "target" {
                    pending.push(path);
                }
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::has_tag;

    #[test]
    fn github_expressions_are_not_template_tags() {
        assert!(!has_tag("if: ${{ github.ref_type == 'tag' }}"));
        assert!(has_tag("name: {{project-name}}"));
        assert!(has_tag("${{ a }} {% if auth %}"));
    }
}
