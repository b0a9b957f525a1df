#[tokio::main]
async fn main() -> anyhow::Result<()> {
    {{crate_name}}::cli::run().await
}
