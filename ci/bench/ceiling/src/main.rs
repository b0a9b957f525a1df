//! What actix-web serves on this machine with nothing in the way: `/plaintext` answers
//! a constant, `/redis` does the single Redis GET that is the least an authenticated
//! request of the template costs. The benchmark compares the template against both.
//!
//! Usage: `ceiling <port>`; Redis from `REDIS_URL` (default 127.0.0.1:6379).

use actix_web::{App, HttpResponse, HttpServer, web};
use redis::aio::ConnectionManager;

const KEY: &str = "bench:ceiling:session";

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .expect("usage: ceiling <port>");
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).map_err(std::io::Error::other)?;
    let mut redis = client
        .get_connection_manager()
        .await
        .map_err(std::io::Error::other)?;
    redis::cmd("SET")
        .arg(KEY)
        .arg("{\"user\":\"0190c8a2-0000-7000-8000-000000000000\"}")
        .query_async::<()>(&mut redis)
        .await
        .map_err(std::io::Error::other)?;
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(redis.clone()))
            .route("/plaintext", web::get().to(plaintext))
            .route("/redis", web::get().to(one_get))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

async fn one_get(redis: web::Data<ConnectionManager>) -> HttpResponse {
    let value: redis::RedisResult<Option<String>> = redis::cmd("GET")
        .arg(KEY)
        .query_async(&mut redis.get_ref().clone())
        .await;
    match value {
        Ok(Some(value)) => HttpResponse::Ok().body(value),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}
