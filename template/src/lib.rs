//! {{project-name}}: an actix-web + juniper GraphQL service.
{%- if auth %}

pub mod auth;
pub mod domain;
pub mod fanout;
{%- endif %}
{%- if queue %}
pub mod jobs;
pub mod queue;
pub mod worker;
{%- endif %}
{%- if email %}
pub mod mail;
{%- endif %}
{%- if uses_redis %}
pub mod redis;
{%- endif %}

pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod command;
pub mod config;
pub mod error;
pub mod graphql;
pub mod health;
pub mod http;
pub mod monitoring;
pub mod setting;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
