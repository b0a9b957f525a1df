//! One render per variant per process, shared by every check that reads it: a test
//! binary's cases (or `ci check`'s stages) ask for a variant and the first asker renders
//! it. The projects live in one temporary folder, removed when the process exits.
//!
//! Readers must not change a shared project; a check that edits one works on a copy
//! ([`crate::render::copy_tree`]). Building it is allowed: only the variant's own check
//! does that, after every read.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::{
    examples::{self, Example},
    render::{self, Request},
};

/// A variant rendered under its example's name.
#[derive(Debug)]
pub struct Rendered {
    pub example: Example,
    pub project: PathBuf,
    pub render_time: Duration,
}

/// The variant `name`, rendered on first use.
///
/// # Errors
/// Fails on an unknown example or a render error; a failed render is tried again by the
/// next caller, so each reports it.
pub fn variant(name: &str) -> Result<Arc<Rendered>> {
    static RENDERED: Mutex<BTreeMap<String, Arc<Rendered>>> = Mutex::new(BTreeMap::new());
    // Held while rendering: cargo-generate renders one project at a time anyway.
    let mut rendered = RENDERED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(variant) = rendered.get(name) {
        return Ok(Arc::clone(variant));
    }
    let example = examples::select(&[name.to_string()])?.remove(0);
    let started = Instant::now();
    let project = render::render(&Request::example(&example, &example.name), folder()?)
        .with_context(|| format!("{name} failed to render"))?;
    let variant = Arc::new(Rendered {
        example,
        project,
        render_time: started.elapsed(),
    });
    rendered.insert(name.to_string(), Arc::clone(&variant));
    Ok(variant)
}

/// The folder of this process's renders, created on first use and removed at exit:
/// statics are never dropped, so `atexit` does it.
fn folder() -> Result<&'static Path> {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    if let Some(folder) = FOLDER.get() {
        return Ok(folder);
    }
    let created = tempfile::Builder::new()
        .prefix("ci-renders-")
        .tempdir()
        .context("Failed to create a folder for the renders")?
        .keep();
    // Only this function sets it, under the caller's lock.
    let folder = FOLDER.get_or_init(|| created);
    extern "C" fn remove_renders() {
        if let Some(folder) = FOLDER.get() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
    // SAFETY: registers a plain function; it runs once, at exit, on one thread.
    unsafe {
        libc::atexit(remove_renders);
    }
    Ok(folder)
}
