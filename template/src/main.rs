use {{crate_name}}::cli::{self, Module};

/// The modules that add commands; each lists its own in its `cli.rs`.
fn modules() -> Vec<Module> {
    vec![
{%- if auth %}
        Module::of::<{{crate_name}}::auth::cli::Command>(),
{%- endif %}
{%- if email %}
        Module::of::<{{crate_name}}::mail::cli::Command>(),
{%- endif %}
{%- if queue %}
        Module::of::<{{crate_name}}::jobs::cli::Command>(),
{%- endif %}
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(&modules()).await
}
