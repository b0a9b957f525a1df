//! {{project-name}}: an actix-web + juniper GraphQL service.

pub mod config;
pub mod error;
pub mod graphql;
pub mod health;
pub mod http;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
