//! A Redis for the tests: `REDIS_URL` when set, else a server already answering on
//! 127.0.0.1:6379, else a private `redis-server` on a free port. Tests keep apart by key
//! prefix, so they can share one server.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::OnceLock,
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

/// A `redis-server` of our own, stopped when this value is dropped or the test binary
/// exits: a shell keeps the server only while our end of its stdin stays open.
pub struct PrivateRedis {
    port: u16,
    shell: Child,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_on(crate::helpers::free_port())
    }

    /// A server on `port` that keeps nothing on disk.
    pub fn start_on(port: u16) -> Self {
        Self::launch(port, "--save '' --appendonly no")
    }

    /// A server on `port` started with `redis-server` `options`.
    pub fn launch(port: u16, options: &str) -> Self {
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
        let started = Instant::now();
        while !answers(([127, 0, 0, 1], port).into()) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redis-server did not start: install Redis or set REDIS_URL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, shell }
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
