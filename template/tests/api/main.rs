//! Integration tests: one binary, one file per feature area.

{% if auth %}mod auth;
{% endif %}mod graphql;
mod health;
mod helpers;
{% if auth %}mod redis_server;
{% endif %}mod storage;
{%- if auth %}
mod users_storage;
{%- endif %}
