//! A Redis for the tests: `REDIS_URL` when set, else a server already answering on
//! 127.0.0.1:6379, else a private `redis-server` on a free port. Tests keep apart by key
//! prefix, so they can share one server.
//!
//! With `TEST_REDIS=cluster` the tests share a Redis Cluster instead: the one
//! `TEST_REDIS_CLUSTER` names (`redis+cluster://host:port,…`), else a private cluster of
//! three masters started from the same binaries. Tests of the cluster itself (a master
//! killed, a failover) start clusters of their own.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::{LazyLock, OnceLock},
    time::{Duration, Instant},
};

static SHARED: OnceLock<String> = OnceLock::new();

/// A key prefix of its own, which keeps a test's Redis keys apart from every other's.
pub fn unique_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// The Redis URL the tests share.
pub fn url() -> &'static str {
    SHARED.get_or_init(|| {
        if std::env::var("TEST_REDIS").is_ok_and(|kind| kind == "cluster") {
            return cluster_url();
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            return url;
        }
        let local: SocketAddr = ([127, 0, 0, 1], 6379).into();
        if answers(local) {
            return "redis://127.0.0.1:6379".into();
        }
        let server = PrivateRedis::start();
        let url = server.url();
        // Lives as long as the test binary: see PrivateRedis.
        std::mem::forget(server);
        url
    })
}

fn cluster_url() -> String {
    if let Ok(url) = std::env::var("TEST_REDIS_CLUSTER") {
        return url;
    }
    let cluster = PrivateCluster::start(3, 0);
    let url = cluster.url();
    // Lives as long as the test binary, as the private server above.
    std::mem::forget(cluster);
    url
}

/// A Redis Cluster of our own on loopback: `masters` masters, each with `replicas`
/// replicas, which take over within about two seconds of their master's death.
pub struct PrivateCluster {
    pub nodes: Vec<PrivateRedis>,
    _dir: tempfile::TempDir,
}

impl PrivateCluster {
    pub fn start(masters: usize, replicas: usize) -> Self {
        let dir = tempfile::tempdir().expect("Failed to create the cluster's folder");
        let nodes: Vec<PrivateRedis> = (0..masters * (1 + replicas))
            .map(|_| {
                PrivateRedis::launch_on_a_free_port(cluster_port, |port| {
                    format!(
                        "--save '' --appendonly no --cluster-enabled yes --cluster-node-timeout 1000 \
                         --cluster-config-file nodes-{port}.conf --dir {}",
                        dir.path().display()
                    )
                })
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("Failed to run redis-cli: install Redis or set TEST_REDIS_CLUSTER");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_until_ok(Duration::from_secs(15));
        cluster
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// `redis-cli -p <port> <args>`'s output.
    pub fn cli(port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("Failed to run redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A node that answers, to ask about the cluster.
    fn any_port(&self) -> u16 {
        self.nodes
            .iter()
            .map(PrivateRedis::port)
            .find(|port| answers(([127, 0, 0, 1], *port).into()))
            .expect("a node that answers")
    }

    /// Stops the node on `port`, as a crash would.
    pub fn stop_node(&mut self, port: u16) {
        let at = self
            .nodes
            .iter()
            .position(|node| node.port() == port)
            .expect("a node on that port");
        self.nodes.remove(at).stop();
    }

    /// Waits until the replicas of the master on `port` have every write it took.
    pub fn wait_for_replicas(&self, port: u16) {
        let started = Instant::now();
        loop {
            let info = Self::cli(port, &["info", "replication"]);
            let offset = info
                .lines()
                .find_map(|line| line.trim().strip_prefix("master_repl_offset:"))
                .and_then(|offset| offset.parse::<u64>().ok())
                .expect("a master's replication offset");
            let replicas: Vec<u64> = info
                .lines()
                .filter(|line| line.starts_with("slave"))
                .filter_map(|line| {
                    line.split(',')
                        .find_map(|part| part.strip_prefix("offset="))
                })
                .filter_map(|offset| offset.trim().parse().ok())
                .collect();
            if !replicas.is_empty() && replicas.iter().all(|replica| *replica >= offset) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "replicas lag behind: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether every node that answers says every slot is served.
    pub fn is_ok(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| answers(([127, 0, 0, 1], node.port()).into()))
            .all(|node| Self::cli(node.port(), &["cluster", "info"]).contains("cluster_state:ok"))
    }

    /// Waits until [`PrivateCluster::is_ok`], failing after `limit`.
    pub fn wait_until_ok(&self, limit: Duration) {
        let started = Instant::now();
        while !self.is_ok() {
            assert!(
                started.elapsed() < limit,
                "the cluster did not come up in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
{%- if auth %}

    /// Waits until a master other than `old` serves `key`'s slot (a replica took over),
    /// failing after `limit`. Right after a master dies the cluster still says it is ok:
    /// the nodes take a node timeout to notice, then an election.
    pub fn wait_for_failover(&self, key: &str, old: u16, limit: Duration) {
        let started = Instant::now();
        while self.serving_master(key).is_none_or(|master| master == old) || !self.is_ok() {
            assert!(
                started.elapsed() < limit,
                "no replica took over from {old} in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
{%- endif %}

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        self.serving_master(key)
            .expect("a master serves every slot")
    }

    /// The port of the master serving `key`'s slot, if a live one does.
    fn serving_master(&self, key: &str) -> Option<u16> {
        let any = self.any_port();
        let slot = Self::cli(any, &["cluster", "keyslot", key]);
        let slot: u16 = slot.trim().parse().expect("a slot number");
        // `cluster nodes` lists `<id> <ip:port@bus> <flags> … <from>-<to> …` per node.
        Self::cli(any, &["cluster", "nodes"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .find(|line| {
                line.split_whitespace().skip(8).any(|range| {
                    let (from, to) = range.split_once('-').unwrap_or((range, range));
                    let (from, to) = (from.parse::<u16>(), to.parse::<u16>());
                    matches!((from, to), (Ok(from), Ok(to)) if (from..=to).contains(&slot))
                })
            })
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|address| address.split(['@', ':']).nth(1))
            .and_then(|port| port.parse().ok())
    }
}

/// A free port whose cluster bus port (10000 above) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = crate::helpers::free_port();
        if port <= 55535 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
        // The OS picked from high up: try a low range of our own.
        let candidate = 20000 + (uuid::Uuid::new_v4().as_u128() % 20000) as u16;
        let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(candidate) && free(candidate + 10000) {
            return candidate;
        }
    }
}

/// Whether `redis-server` runs on this machine.
static INSTALLED: LazyLock<bool> = LazyLock::new(|| {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
});

/// Options of a server that keeps nothing on disk.
const NO_DISK: &str = "--save '' --appendonly no";

/// A `redis-server` of our own, stopped when this value is dropped or the test binary
/// exits: a shell keeps the server only while our end of its stdin stays open.
pub struct PrivateRedis {
    port: u16,
    shell: Child,
}

impl PrivateRedis {
    /// A server on a free port that keeps nothing on disk.
    pub fn start() -> Self {
        Self::launch_on_a_free_port(crate::helpers::free_port, |_| NO_DISK.into())
    }

    /// A server on `port` that keeps nothing on disk.
    pub fn start_on(port: u16) -> Self {
        Self::launch(port, NO_DISK)
    }

    /// A server on `port` started with `redis-server` `options`.
    pub fn launch(port: u16, options: &str) -> Self {
        Self::try_launch(port, options).unwrap_or_else(|| {
            panic!("redis-server did not start on port {port}: install Redis or set REDIS_URL")
        })
    }

    /// A server on a port from `pick`, started with the `options` for that port. A port
    /// found free may be taken before the server binds it (by an outgoing connection of
    /// a test running beside this one): then it tries another.
    pub fn launch_on_a_free_port(pick: impl Fn() -> u16, options: impl Fn(u16) -> String) -> Self {
        (0..5)
            .find_map(|_| {
                let port = pick();
                Self::try_launch(port, &options(port))
            })
            .expect("redis-server did not start on any of five free ports: install Redis or set REDIS_URL")
    }

    /// The server, once it answers on `port`; `None` if it does not within 15 s.
    fn try_launch(port: u16, options: &str) -> Option<Self> {
        // Without the binary every attempt would wait out its 15 s: say so at once.
        assert!(*INSTALLED, "redis-server is not installed: install Redis or set REDIS_URL");
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 {options} & \
             server=$!; read _; kill $server"
        );
        let shell = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Failed to start sh");
        let server = Self { port, shell };
        let started = Instant::now();
        while !answers(([127, 0, 0, 1], port).into()) {
            if started.elapsed() > Duration::from_secs(15) {
                // Dropping the server stops the shell and whatever it started.
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server and waits until its port is closed.
    pub fn stop(mut self) {
        drop(self.shell.stdin.take());
        let _ = self.shell.wait();
        let started = Instant::now();
        while answers(([127, 0, 0, 1], self.port).into())
            && started.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        drop(self.shell.stdin.take());
    }
}

fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// Where a [`LaggingProxy`] holds the bytes it passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    None,
    /// Every chunk a client sends waits this long: each round trip takes that longer.
    Requests(Duration),
    /// Every chunk the server answers waits this long: commands run, answers come late.
    Answers(Duration),
}

/// A TCP proxy in front of one Redis server that can hold requests or answers back.
pub struct LaggingProxy {
    pub port: u16,
    lag: std::sync::Arc<std::sync::Mutex<Lag>>,
}

impl LaggingProxy {
    pub async fn start(target: u16, lag: Lag) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = std::sync::Arc::new(std::sync::Mutex::new(lag));
        let lag = shared.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let lag = lag.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (from_client, to_client) = client.into_split();
                    let (from_server, to_server) = server.into_split();
                    // Copies `from` to `to`, each chunk held back as `hold` says.
                    let pass =
                        async |mut from: tokio::net::tcp::OwnedReadHalf,
                               mut to: tokio::net::tcp::OwnedWriteHalf,
                               hold: fn(Lag) -> Option<Duration>| {
                            let mut chunk = vec![0; 64 * 1024];
                            while let Ok(read @ 1..) = from.read(&mut chunk).await {
                                let delay = hold(*lag.lock().unwrap());
                                if let Some(delay) = delay {
                                    tokio::time::sleep(delay).await;
                                }
                                if to.write_all(&chunk[..read]).await.is_err() {
                                    break;
                                }
                            }
                        };
                    let requests = pass(from_client, to_server, |lag| match lag {
                        Lag::Requests(delay) => Some(delay),
                        _ => None,
                    });
                    let answers = pass(from_server, to_client, |lag| match lag {
                        Lag::Answers(delay) => Some(delay),
                        _ => None,
                    });
                    tokio::select! {
                        () = requests => {}
                        () = answers => {}
                    }
                });
            }
        });
        Self { port, lag: shared }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, lag: Lag) {
        *self.lag.lock().unwrap() = lag;
    }
}
