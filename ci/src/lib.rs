//! The variant harness: renders the template's examples with the cargo-generate library
//! and proves each rendered project is clean and green.

pub mod check;
pub mod examples;
pub mod hardening;
pub mod install;
pub mod lint;
pub mod mongodb;
pub mod render;
pub mod scan;
