//! Tools the harness installs for itself under `target/`, pinned.
//!
//! A folder records the pins it was installed with; when a pin changes the folder is
//! installed afresh, so bumping a version in the source is all an upgrade takes.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use anyhow::{Context, Result, bail};

/// The file in a tools folder that lists the pins it holds.
const STAMP: &str = "pinned.txt";

/// Makes sure `root` holds exactly `pins`, calling `install` with a scratch folder when
/// it does not. The scratch folder replaces `root` only once `install` succeeded, and
/// installs take a lock next to `root`, so tests running at once (threads or processes)
/// install once and never remove a folder another test is already running from.
///
/// # Errors
/// Whatever `install` returns, or a file system error while swapping folders.
pub fn ensure_pinned(
    root: &Path,
    pins: &[&str],
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let stamp = pins.join("\n");
    if holds(root, &stamp) {
        return Ok(());
    }
    let parent = root.parent().context("no parent for the tools folder")?;
    fs::create_dir_all(parent)?;
    let _lock = install_lock(root)?;
    // Whoever held the lock before may have installed these very pins.
    if holds(root, &stamp) {
        return Ok(());
    }
    let scratch = tempfile::tempdir_in(parent)?;
    install(scratch.path())?;
    fs::write(scratch.path().join(STAMP), &stamp)?;
    if root.exists() {
        fs::remove_dir_all(root)
            .with_context(|| format!("failed to remove the outdated {}", root.display()))?;
    }
    fs::rename(scratch.keep(), root)
        .with_context(|| format!("failed to move the install into {}", root.display()))?;
    Ok(())
}

/// An exclusive lock on `<root>.lock`, released when the file is dropped (or its
/// process dies).
fn install_lock(root: &Path) -> Result<fs::File> {
    let path = root.with_extension("lock");
    let file =
        fs::File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
    file.lock()
        .with_context(|| format!("failed to lock {}", path.display()))?;
    Ok(file)
}

fn holds(root: &Path, stamp: &str) -> bool {
    fs::read_to_string(root.join(STAMP)).is_ok_and(|found| found == stamp)
}

/// Runs one install step; on failure the error holds the step's output.
///
/// # Errors
/// Fails when the program cannot start or exits unsuccessfully.
pub fn run(step: &str, command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("{step} could not be started"))?;
    if !output.status.success() {
        bail!(
            "{step}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_changed_pin_reinstalls_and_an_unchanged_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tools");
        let installs = Cell::new(0);
        let install = |scratch: &Path| {
            installs.set(installs.get() + 1);
            fs::write(scratch.join("tool"), format!("install {}", installs.get()))?;
            Ok(())
        };

        ensure_pinned(&root, &["tool==1"], install).unwrap();
        ensure_pinned(&root, &["tool==1"], install).unwrap();
        ensure_pinned(&root, &["tool==2"], install).unwrap();

        assert_eq!(installs.get(), 2);
        assert_eq!(fs::read_to_string(root.join("tool")).unwrap(), "install 2");
        assert_eq!(fs::read_to_string(root.join(STAMP)).unwrap(), "tool==2");
    }

    #[test]
    fn installs_running_at_once_install_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tools");
        let installs = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    ensure_pinned(&root, &["tool==1"], |scratch| {
                        installs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        fs::write(scratch.join("tool"), "installed")?;
                        Ok(())
                    })
                    .unwrap();
                    // Each caller finds a complete install the moment it returns.
                    assert!(root.join("tool").exists());
                });
            }
        });
        assert_eq!(installs.into_inner(), 1);
    }

    #[test]
    fn a_failed_install_leaves_the_previous_tools_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tools");
        ensure_pinned(&root, &["tool==1"], |_| Ok(())).unwrap();

        let failed = ensure_pinned(&root, &["tool==2"], |_| bail!("no network"));

        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(root.join(STAMP)).unwrap(), "tool==1");
    }
}
