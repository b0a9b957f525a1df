//! Integration tests: one binary, one file per feature area.

mod graphql;
mod graphql_over_http;
mod health;
mod helpers;
mod metrics;
mod proxies;
mod schema_contract;
mod shutdown;
mod storage;
mod traces;
{%- if auth %}

mod accounts;
mod admin;
mod audit_storage;
mod auth;
mod second_factor;
mod subscriptions;
mod users_storage;
{%- endif %}
{%- if auth and email %}
mod email_change;
mod email_flows;
mod login_code;
{%- endif %}
{%- if email %}
mod mail;
{%- endif %}
{%- if queue %}
mod jobs_worker;
mod queue;
mod queue_faults;
{%- endif %}
{%- if uses_redis %}
mod redis_cluster;
mod redis_server;
{%- endif %}
