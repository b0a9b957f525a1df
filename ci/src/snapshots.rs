//! What the snapshots of a variant hold, computed once for the tests (which assert them
//! with insta, so a change is reviewed with `INSTA_UPDATE`) and for `ci check` (which
//! compares them with the stored files and names any that differ).

use std::{fmt::Write as _, path::Path, path::PathBuf};

use anyhow::{Context, Result, bail};
use insta::internals::{SnapshotContents, TextSnapshotContents};

use crate::{examples::repo_root, scan};

/// One snapshot: its test binary (`render`, `variants`), its name and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The test binary that asserts it: insta prefixes the file with the binary's name.
    pub tier: &'static str,
    /// `<what>@<variant>`, such as `tree@full`.
    pub name: String,
    pub contents: String,
}

impl Snapshot {
    /// The stored file, `ci/tests/snapshots/<tier>__<name>.snap`.
    pub fn file(&self) -> PathBuf {
        repo_root()
            .join("ci/tests/snapshots")
            .join(format!("{}__{}.snap", self.tier, self.name))
    }

    /// Compares with the stored file as insta does.
    ///
    /// # Errors
    /// Fails when the file is missing or holds something else.
    pub fn compare(&self) -> Result<()> {
        let file = self.file();
        let stored = insta::Snapshot::from_file(&file)
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("snapshot {} cannot be read", file.display()))?;
        let current = SnapshotContents::from(TextSnapshotContents::new(
            self.contents.clone(),
            insta::TextSnapshotKind::File,
        ));
        if *stored.contents() != current {
            let stored = stored
                .contents()
                .as_text()
                .map(ToString::to_string)
                .unwrap_or_default();
            bail!(
                "snapshot {} differs, {}: review it with `INSTA_UPDATE=always cargo test -p ci --test {}`",
                self.name,
                first_difference(&stored, self.contents.trim_end()),
                self.tier
            );
        }
        Ok(())
    }
}

/// Where `current` first departs from `stored`, line by line.
fn first_difference(stored: &str, current: &str) -> String {
    let mut stored_lines = stored.lines();
    let mut current_lines = current.lines();
    for number in 1.. {
        match (stored_lines.next(), current_lines.next()) {
            (Some(was), Some(now)) if was == now => {}
            (None, None) => break,
            (was, now) => {
                return format!(
                    "line {number}: stored {:?}, now {:?}",
                    was.unwrap_or("(end)"),
                    now.unwrap_or("(end)")
                );
            }
        }
    }
    "in whitespace".to_string()
}

/// The rendered file tree (`tree@`) and the `[dependencies]` table (`dependencies@`) of
/// `project`, rendered from `variant`: the `render` tier's snapshots. Read before the
/// project is built, which adds `Cargo.lock`.
///
/// # Errors
/// Fails if the tree or `Cargo.toml` cannot be read.
pub fn of_render(variant: &str, project: &Path) -> Result<[Snapshot; 2]> {
    let tree: Vec<String> = scan::files(project)?
        .iter()
        .map(|file| Ok(file.strip_prefix(project)?.display().to_string()))
        .collect::<Result<_>>()?;
    let manifest: toml::Table = std::fs::read_to_string(project.join("Cargo.toml"))?
        .parse()
        .context("the rendered Cargo.toml")?;
    let dependencies = manifest
        .get("dependencies")
        .context("the rendered Cargo.toml has no [dependencies]")?;
    Ok([
        Snapshot {
            tier: "render",
            name: format!("tree@{variant}"),
            contents: tree.join("\n"),
        },
        Snapshot {
            tier: "render",
            name: format!("dependencies@{variant}"),
            contents: toml::to_string_pretty(dependencies)?,
        },
    ])
}

/// The names in `cargo test -- --list` output (`name: test` lines of every test binary,
/// ignored tests included), sorted, one a line: a test that vanishes (a `mod` line lost
/// to a wrong conditional) shows in the `tests@` snapshot.
pub fn test_names(listing: &str) -> String {
    let mut names: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .collect();
    names.sort_unstable();
    names.iter().fold(String::new(), |mut out, name| {
        let _ = writeln!(out, "{name}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_read_from_every_binarys_listing_and_sorted() {
        let listing = "jobs::b_test: test\nauth::a_test: test\n\n2 tests, 0 benchmarks\n\
                       src/lib.rs - config (line 3): test\n1 test, 0 benchmarks\n";

        assert_eq!(
            test_names(listing),
            "auth::a_test\njobs::b_test\nsrc/lib.rs - config (line 3)\n"
        );
    }

    #[test]
    fn a_snapshot_matches_its_stored_file_and_a_changed_one_does_not() {
        let stored = std::fs::read_to_string(
            repo_root().join("ci/tests/snapshots/render__tree@minimal.snap"),
        )
        .unwrap();
        let contents = stored.splitn(3, "---\n").nth(2).unwrap().to_string();
        let mut snapshot = Snapshot {
            tier: "render",
            name: "tree@minimal".to_string(),
            contents,
        };

        snapshot.compare().unwrap();
        snapshot.contents = format!("{}\nsrc/new.rs", snapshot.contents.trim_end());
        let error = snapshot.compare().unwrap_err().to_string();

        assert!(
            error.contains("tree@minimal differs, line ") && error.contains("now \"src/new.rs\""),
            "{error}"
        );
    }
}
