//! The variant harness: renders the template's examples with the cargo-generate library
//! and proves each rendered project is clean and green.

pub mod audit;
pub mod check;
pub mod examples;
pub mod hardening;
pub mod install;
pub mod lint;
pub mod mongodb;
pub mod render;
pub mod rendered;
pub mod scan;
pub mod snapshots;

/// One `#[test]` per example variant for each check named, so each variant passes or
/// fails on its own line: `variant_tests!(file_tree)` gives the tests `file_tree::minimal`,
/// `file_tree::auth_email`, … each calling `file_tree("auth-email")`. The names are
/// [`examples::VARIANTS`]; a test keeps them equal to the files in `examples/`.
/// `cargo test -p ci -- ::full` runs every check of one variant.
#[macro_export]
macro_rules! variant_tests {
    ($($check:ident),+ $(,)?) => {$(
        mod $check {
            #[test]
            fn minimal() {
                super::$check("minimal");
            }
            #[test]
            fn auth() {
                super::$check("auth");
            }
            #[test]
            fn email() {
                super::$check("email");
            }
            #[test]
            fn queue() {
                super::$check("queue");
            }
            #[test]
            fn auth_email() {
                super::$check("auth-email");
            }
            #[test]
            fn auth_queue() {
                super::$check("auth-queue");
            }
            #[test]
            fn email_queue() {
                super::$check("email-queue");
            }
            #[test]
            fn full() {
                super::$check("full");
            }
        }
    )+};
}
