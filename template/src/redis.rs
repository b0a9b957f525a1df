//! The Redis connection: one node or a Redis Cluster, picked by the URL, behind one
//! [`Redis`] handle. Either way the connection is multiplexed, shared by the process
//! and reconnects by itself, so a Redis restart (or a cluster failover) costs failed
//! requests, never a service restart.
//!
//! On a cluster, every command goes to the node serving its key's slot, and the keys one
//! script, transaction or pipeline touches must share a slot: the modules give such keys
//! one hash tag (`{…}`: a user, an account, a queue). Needs Redis 6.2 or newer.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de::Error as _};

/// The oldest Redis the service runs on: XAUTOCLAIM-era streams, GETDEL.
const MINIMUM_VERSION: (u32, u32) = (6, 2);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://…`/`rediss://…` for one node, `redis+cluster://host:port[,host:port…]`
    /// (or `rediss+cluster://`) for a Redis Cluster.
    #[serde(deserialize_with = "redis_url")]
    pub url: RedisUrl,
    /// Prepended to every key, so several services (or test runs) can share a server.
    pub key_prefix: String,
    /// Longest wait for a connection or an answer before a request fails.
    #[serde(
        rename = "timeout_ms",
        deserialize_with = "crate::setting::positive_millis"
    )]
    pub timeout: Duration,
}

/// Where Redis is. URLs may carry credentials, so they stay secret.
#[derive(Debug, Clone)]
pub enum RedisUrl {
    Node(SecretString),
    /// A cluster's seed nodes, each as a `redis://` (or `rediss://`) URL.
    Cluster(Vec<SecretString>),
}

impl RedisUrl {
    /// # Errors
    /// Names what is wrong with `url`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let cluster = [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ]
        .into_iter()
        .find_map(|(scheme, node)| url.strip_prefix(scheme).map(|rest| (rest, node)));
        if let Some((rest, node_scheme)) = cluster {
            let rest = rest.trim_end_matches('/');
            let (credentials, hosts) = match rest.rsplit_once('@') {
                Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
                None => (String::new(), rest),
            };
            let nodes: Vec<SecretString> = hosts
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(|host| SecretString::from(format!("{node_scheme}{credentials}{host}")))
                .collect();
            if nodes.is_empty() {
                return Err(
                    "a cluster URL names its seed nodes: redis+cluster://host:port[,host:port…]"
                        .into(),
                );
            }
            return Ok(Self::Cluster(nodes));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")
        {
            return Ok(Self::Node(SecretString::from(url)));
        }
        Err("use redis://…, rediss://…, or redis+cluster://host:port[,host:port…] for a Redis Cluster".into())
    }
}

fn redis_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RedisUrl, D::Error> {
    let url = String::deserialize(deserializer)?;
    RedisUrl::parse(&url).map_err(D::Error::custom)
}

/// A connection to one node or to a cluster; cheap to clone, shared by everything.
#[derive(Clone)]
pub enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(node) => node.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(node) => node.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(node) => node.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

#[derive(Clone)]
enum Client {
    Node(redis::Client),
    Cluster(Vec<SecretString>),
}

#[derive(Clone)]
pub struct Redis {
    client: Client,
    connection: Connection,
    prefix: Arc<str>,
    timeout: Duration,
}

impl Redis {
    /// # Errors
    /// Fails on a malformed URL, when Redis does not answer within the timeout, when it is
    /// older than 6.2, or when a single-node URL points at a cluster node.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let client = match &settings.url {
            RedisUrl::Node(url) => Client::Node(redis::Client::open(url.expose_secret())?),
            RedisUrl::Cluster(nodes) => Client::Cluster(nodes.clone()),
        };
        let timeout = settings.timeout;
        let connection = open(&client, timeout, Duration::ZERO).await?;
        let redis = Self {
            client,
            connection,
            prefix: settings.key_prefix.clone().into(),
            timeout,
        };
        redis.check_server().await?;
        Ok(redis)
    }

    /// Connects and registers the readiness probe `redis`: what each module that keeps
    /// its data in Redis does at start-up.
    ///
    /// # Errors
    /// As [`Redis::connect`].
    pub async fn connect_watched(
        settings: &RedisSettings,
        readiness: &mut crate::health::Readiness,
    ) -> anyhow::Result<Self> {
        let redis = Self::connect(settings)
            .await
            .context("Failed to connect to Redis")?;
        readiness.watch("redis", redis.clone(), |redis| async move {
            redis.check().await
        });
        Ok(redis)
    }

    /// `name` under this service's key prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A handle on the shared connection; cheap to clone.
    pub fn connection(&self) -> Connection {
        self.connection.clone()
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// A connection of its own, for commands that block on the server for up to
    /// `blocking` (which would hold up everyone on the shared one), or for use on
    /// another Tokio runtime.
    ///
    /// # Errors
    /// Fails when Redis does not answer within the timeout.
    pub async fn dedicated_connection(&self, blocking: Duration) -> redis::RedisResult<Connection> {
        open(&self.client, self.timeout, blocking).await
    }

    /// A connection for SUBSCRIBE, on the node of a single-node URL or on the first seed
    /// of a cluster that answers: a cluster carries every PUBLISH to all of its nodes, so
    /// one node hears the channels of the whole cluster.
    ///
    /// # Errors
    /// Fails when no node answers within the timeout.
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let nodes = match &self.client {
            Client::Node(client) => vec![client.clone()],
            Client::Cluster(seeds) => seeds
                .iter()
                .map(|seed| redis::Client::open(seed.expose_secret()))
                .collect::<redis::RedisResult<_>>()?,
        };
        let mut failure = None;
        for node in nodes {
            match tokio::time::timeout(self.timeout, node.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => return Ok(pubsub),
                Ok(Err(error)) => failure = Some(error),
                Err(_) => failure = Some(timed_out()),
            }
        }
        Err(failure.unwrap_or_else(timed_out))
    }

    /// Readiness: one node answers; a cluster serves every slot (`cluster_state:ok`) and
    /// a write and a read on this service's keys succeed.
    ///
    /// # Errors
    /// Says what failed.
    pub async fn check(&self) -> anyhow::Result<()> {
        let mut connection = self.connection();
        let Connection::Cluster(cluster) = &mut connection else {
            return Ok(redis::cmd("PING").query_async(&mut connection).await?);
        };
        let mut command = redis::cmd("CLUSTER");
        command.arg("INFO");
        let info = on_any_node(cluster, command).await?;
        let state = field(&info, "cluster_state").unwrap_or("unknown");
        anyhow::ensure!(
            state == "ok",
            "the cluster's state is {state}: a slot range has no master"
        );
        let key = self.key("readiness");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("ok")
            .arg("EX")
            .arg(10)
            .query_async(&mut connection)
            .await?;
        let read: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        anyhow::ensure!(
            read.as_deref() == Some("ok"),
            "a write to the cluster did not read back"
        );
        Ok(())
    }

    /// Refuses a server too old for the service's commands, and a cluster node reached
    /// with a single-node URL (its `MOVED` answers would fail most requests while `PING`
    /// still answers).
    async fn check_server(&self) -> anyhow::Result<()> {
        let info = match &mut self.connection() {
            Connection::Node(node) => redis::cmd("INFO").query_async::<String>(node).await?,
            Connection::Cluster(cluster) => on_any_node(cluster, redis::cmd("INFO")).await?,
        };
        let version = field(&info, "redis_version").unwrap_or("0");
        anyhow::ensure!(
            version_at_least(version, MINIMUM_VERSION),
            "Redis {version} is too old: the service needs Redis {}.{} or newer",
            MINIMUM_VERSION.0,
            MINIMUM_VERSION.1
        );
        if !self.is_cluster() && field(&info, "cluster_enabled") == Some("1") {
            anyhow::bail!(
                "redis.url names a node of a Redis Cluster: use redis+cluster://host:port[,host:port…]"
            );
        }
        Ok(())
    }
}

/// Opens a connection whose answers may take `blocking` longer than `timeout`.
async fn open(
    client: &Client,
    timeout: Duration,
    blocking: Duration,
) -> redis::RedisResult<Connection> {
    match client {
        Client::Node(client) => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout + blocking))
                // Fail the request quickly while Redis is down; the manager keeps
                // reconnecting.
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map(Connection::Node)
        }
        Client::Cluster(nodes) => {
            let nodes: Vec<&str> = nodes.iter().map(ExposeSecret::expose_secret).collect();
            cluster_client(&nodes, timeout, blocking)?
                .get_async_connection()
                .await
                .map(Connection::Cluster)
        }
    }
}

fn cluster_client(
    nodes: &[&str],
    timeout: Duration,
    blocking: Duration,
) -> redis::RedisResult<ClusterClient> {
    ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout + blocking)
        // Follows MOVED and ASK, and rides out a failover, within the request's time.
        .retries(3)
        .overall_response_timeout(Some(timeout * 2 + blocking))
        .build()
}

/// The answer of one node of the cluster, any, to `command`.
async fn on_any_node(cluster: &mut ClusterConnection, command: Cmd) -> redis::RedisResult<String> {
    let answer = cluster
        .route_command(
            command,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?;
    Ok(redis::from_redis_value(answer)?)
}

/// The value of `name` in an `INFO` or `CLUSTER INFO` answer.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// A Redis failure as the API reports it: 503, details in the log only.
pub fn unavailable(error: redis::RedisError) -> crate::error::AppError {
    crate::error::AppError::Unavailable(anyhow::Error::new(error).context("Redis is unavailable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(url: &str) -> Vec<String> {
        match RedisUrl::parse(url).unwrap() {
            RedisUrl::Cluster(nodes) => nodes
                .iter()
                .map(|n| n.expose_secret().to_string())
                .collect(),
            RedisUrl::Node(_) => panic!("{url} is no cluster URL"),
        }
    }

    #[test]
    fn a_cluster_url_lists_its_seed_nodes_with_their_credentials() {
        assert_eq!(
            nodes("redis+cluster://127.0.0.1:7001,127.0.0.1:7002/"),
            ["redis://127.0.0.1:7001", "redis://127.0.0.1:7002"]
        );
        assert_eq!(
            nodes("rediss+cluster://user:secret@a.example:6379,b.example:6379"),
            [
                "rediss://user:secret@a.example:6379",
                "rediss://user:secret@b.example:6379"
            ]
        );
    }

    #[test]
    fn single_node_urls_stay_as_they_are_and_anything_else_is_refused() {
        assert!(matches!(
            RedisUrl::parse("redis://127.0.0.1:6379/2"),
            Ok(RedisUrl::Node(_))
        ));
        assert!(RedisUrl::parse("redis+cluster://").is_err());
        assert!(RedisUrl::parse("http://127.0.0.1:6379").is_err());
    }

    #[test]
    fn versions_below_6_2_are_too_old() {
        assert!(version_at_least("7.0.15", MINIMUM_VERSION));
        assert!(version_at_least("6.2.0", MINIMUM_VERSION));
        assert!(!version_at_least("6.0.16", MINIMUM_VERSION));
        assert!(!version_at_least("5.0.7", MINIMUM_VERSION));
    }

    #[test]
    fn info_fields_are_read_by_name() {
        let info = "# Server\r\nredis_version:7.0.15\r\n# Cluster\r\ncluster_enabled:1\r\n";
        assert_eq!(field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(field(info, "cluster_enabled"), Some("1"));
        assert_eq!(field(info, "cluster"), None);
    }
}
