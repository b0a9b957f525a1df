//! Integration tests: one binary, one file per feature area.

{% if auth %}mod auth;
{% endif %}{% if auth and email %}mod email_flows;
{% endif %}mod graphql;
mod health;
mod helpers;
{% if email %}mod mail;
{% endif %}{% if queue %}mod jobs;
mod jobs_faults;
mod jobs_worker;
{% endif %}{% if uses_redis %}mod redis_server;
{% endif %}mod shutdown;
mod storage;
{%- if auth %}
mod users_storage;
{%- endif %}
