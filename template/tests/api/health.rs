use serde_json::Value;

use {{crate_name}}::health::probe;

use crate::helpers::{free_port, spawn_app};
{%- if uses_redis or email %}
use crate::helpers::{TestApp, spawn_app_with};

/// A query asking for `health` under ten aliases.
const TEN_HEALTH_ALIASES: &str = "{ h0: health { ready } h1: health { ready } h2: health { ready } h3: health { ready } h4: health { ready } h5: health { ready } h6: health { ready } h7: health { ready } h8: health { ready } h9: health { ready } }";

/// Asks for ten `health` aliases and checks that each one reports ready.
async fn ask_ten_times(app: &TestApp) {
    let body: Value = app.post_graphql(TEN_HEALTH_ALIASES).await.json().await.unwrap();
    for alias in 0..10 {
        assert_eq!(body["data"][format!("h{alias}")]["ready"], true, "{body}");
    }
}
{%- endif %}

#[tokio::test]
async fn liveness_answers_200() {
    let app = spawn_app().await;

    let response = app.get("/health/live").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = spawn_app().await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["ok"], true);
}

#[tokio::test]
async fn graphql_health_field_matches_the_readiness_probe() {
    let app = spawn_app().await;

    let response = app
        .post_graphql("{ health { ready checks { name ok } } }")
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let probe = serde_json::to_value(app.state.readiness.report().await).unwrap();
    assert_eq!(body["data"]["health"], probe);
    assert_eq!(body["data"]["health"]["checks"][0]["name"], "database");
}

#[tokio::test]
async fn the_healthcheck_probe_passes_only_on_a_ready_answer() {
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let closed = free_port();

    let outcomes = tokio::task::spawn_blocking(move || {
        [
            probe(port, "/health/ready"),
            probe(port, "/no-such-path"),
            probe(closed, "/health/ready"),
        ]
    })
    .await
    .unwrap();

    let [ready, missing, nothing] = outcomes;
    assert!(ready.is_ok(), "{ready:?}");
    assert!(missing.unwrap_err().to_string().contains("404"));
    assert!(nothing.is_err());
}
{%- if uses_redis %}

/// How many PINGs the Redis at `url` has answered since it started.
async fn pings_answered(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test]
async fn health_aliases_share_one_redis_check() {
    let redis = crate::redis_server::PrivateRedis::start();
    let url = redis.url();
    let app = spawn_app_with(|s| s.redis.url = {{crate_name}}::redis::RedisUrl::parse(&url).unwrap()).await;
    let before = pings_answered(&url).await;

    ask_ten_times(&app).await;

    assert_eq!(pings_answered(&url).await - before, 1);
}

#[tokio::test]
async fn a_redis_slower_than_its_timeout_either_way_is_not_ready() {
    use crate::redis_server::{Lag, LaggingProxy, PrivateRedis};

    let server = PrivateRedis::start();
    let proxy = LaggingProxy::start(server.port(), Lag::None).await;
    let url = proxy.url();
    let app = spawn_app_with(|s| {
        s.redis.url = {{crate_name}}::redis::RedisUrl::parse(&url).unwrap();
        s.redis.timeout = std::time::Duration::from_millis(300);
    })
    .await;

    let mut readiness = Vec::new();
    for lag in [Lag::Requests(std::time::Duration::from_secs(1)), Lag::Answers(std::time::Duration::from_secs(1))] {
        proxy.set(lag);
        // Past the report's age, so each lag gets a fresh check.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        readiness.push(app.get("/health/ready").await.status().as_u16());
        proxy.set(Lag::None);
    }

    assert_eq!(readiness, [503, 503]);
}
{%- endif %}
{%- if email %}

/// An SMTP server that answers any number of connections and counts the NOOPs with
/// which the mailer's readiness check probes it.
async fn smtp_counting_probes() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let probes = Arc::new(AtomicUsize::new(0));
    let counted = probes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let probes = counted.clone();
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut lines = BufReader::new(reader).lines();
                writer.write_all(b"220 test ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let command = line.to_ascii_uppercase();
                    if command.starts_with("NOOP") {
                        probes.fetch_add(1, Ordering::SeqCst);
                    }
                    let reply: &[u8] = if command.starts_with("QUIT") {
                        b"221 bye\r\n"
                    } else {
                        b"250 ok\r\n"
                    };
                    if writer.write_all(reply).await.is_err() || command.starts_with("QUIT") {
                        break;
                    }
                }
            });
        }
    });
    (port, probes)
}

#[tokio::test]
async fn health_aliases_share_one_mail_check() {
    let (port, probes) = smtp_counting_probes().await;
    let app = spawn_app_with(|s| {
        s.mail.transport = {{crate_name}}::mail::TransportKind::Smtp;
        s.mail.smtp_url = secrecy::SecretString::from(format!("smtp://127.0.0.1:{port}"));
    })
    .await;

    ask_ten_times(&app).await;

    assert_eq!(probes.load(std::sync::atomic::Ordering::SeqCst), 1);
}
{%- endif %}
