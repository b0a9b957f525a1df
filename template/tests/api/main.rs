//! Integration tests: one binary, one file per feature area.

mod graphql;
mod health;
mod helpers;
mod storage;
