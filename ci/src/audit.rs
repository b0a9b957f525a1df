//! The GraphQL-over-HTTP server audit of `graphql-http`, the spec's reference
//! implementation, run against each variant's own binary. Its audits are named by
//! requirement (`MUST …`, `SHOULD …`, `MAY …`); a variant passes when it passes every
//! MUST and every SHOULD. The MAYs it misses are choices (no execution over GET, for
//! one) and are only counted.

use std::{
    fmt,
    io::Read as _,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    examples::repo_root,
    install::{ensure_pinned, run},
};

const GRAPHQL_HTTP: &str = "graphql-http@1.23.1";
/// graphql-http's peer dependency.
const GRAPHQL: &str = "graphql@16.9.0";
/// How long a variant's server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The audit, installed under `target/graphql-http-audit/`.
pub struct Auditor {
    package: PathBuf,
}

impl Auditor {
    /// # Errors
    /// Fails if npm cannot install the audit.
    pub fn ensure() -> Result<Self> {
        let root = repo_root().join("target").join("graphql-http-audit");
        ensure_pinned(&root, &[GRAPHQL_HTTP, GRAPHQL], |scratch| {
            let mut npm = Command::new("npm");
            npm.args(["install", "--silent", "--no-save", "--prefix"])
                .arg(scratch)
                .args([GRAPHQL_HTTP, GRAPHQL]);
            run("npm install graphql-http", &mut npm).map(drop)
        })
        .context("failed to install the graphql-http audit")?;
        Ok(Self {
            package: root.join("node_modules").join("graphql-http"),
        })
    }

    /// Serves `binary` from `project` (its development settings, the embedded store,
    /// and with `redis` the Redis of `REDIS_URL` or its default) on a free port, audits
    /// its `/graphql` and stops it.
    ///
    /// # Errors
    /// Fails if the server does not start or the audit cannot run; a low score is no
    /// error here (see [`Score::complete`]).
    pub fn audit(&self, binary: &Path, project: &Path, redis: bool) -> Result<Score> {
        let server = Server::start(binary, project, redis)?;
        let script = repo_root()
            .join("ci")
            .join("audit")
            .join("graphql-http.mjs");
        let output = run(
            "the graphql-http audit",
            Command::new("node")
                .arg(script)
                .arg(&self.package)
                .arg(format!("http://127.0.0.1:{}/graphql", server.port)),
        )?;
        Score::parse(&String::from_utf8_lossy(&output.stdout))
    }
}

/// A variant's server, stopped when dropped (with the Redis started for it, if any).
struct Server {
    child: Child,
    port: u16,
    _redis: Option<PrivateRedis>,
}

impl Server {
    fn start(binary: &Path, project: &Path, redis: bool) -> Result<Self> {
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .current_dir(project)
            .env("APP_HTTP__HOST", "127.0.0.1")
            .env("APP_HTTP__PORT", port.to_string())
            .env("APP_DATABASE__URL", "embedded://memory")
            .env("APP_METRICS__ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut private_redis = None;
        if redis {
            // Apart from anything else on a shared Redis.
            command.env(
                "APP_REDIS__KEY_PREFIX",
                format!("graphql-http-audit-{port}:"),
            );
            if let Some(url) = std::env::var_os("REDIS_URL") {
                command.env("APP_REDIS__URL", url);
            } else if !listening(DEFAULT_REDIS_PORT) {
                let started = private_redis.insert(PrivateRedis::start()?);
                command.env(
                    "APP_REDIS__URL",
                    format!("redis://127.0.0.1:{}", started.port),
                );
            }
        }
        let mut server = Self {
            child: command
                .spawn()
                .with_context(|| format!("failed to start {}", binary.display()))?,
            port,
            _redis: private_redis,
        };
        wait_until_listening("the server", &mut server.child, port)?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port a variant's default settings name for Redis.
const DEFAULT_REDIS_PORT: u16 = 6379;

/// A `redis-server` of the audit's own, for machines with no Redis running, as the
/// variants' own tests start one.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start() -> Result<Self> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .context("no Redis is running and redis-server could not be started")?;
        let mut redis = Self { child, port };
        wait_until_listening("redis-server", &mut redis.child, port)?;
        Ok(redis)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to listen on `port`; fails with its stderr if it exits first, or
/// after [`START_TIMEOUT`].
fn wait_until_listening(what: &str, child: &mut Child, port: u16) -> Result<()> {
    let started = Instant::now();
    while !listening(port) {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            bail!("{what} exited with {status} before listening:\n{stderr}");
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("{what} did not listen on port {port} within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("no free port")?
        .port())
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Audits passed of each requirement level, and the MUSTs and SHOULDs that failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Score {
    pub must: Tally,
    pub should: Tally,
    pub may: Tally,
    pub failures: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub total: usize,
}

impl Tally {
    fn add(&mut self, passed: bool) {
        self.total += 1;
        self.passed += usize::from(passed);
    }
}

impl Score {
    /// Every MUST and every SHOULD passed.
    pub fn complete(&self) -> bool {
        self.must.passed == self.must.total && self.should.passed == self.should.total
    }

    /// Reads the script's lines: `status`, `id`, `name`, `reason`, tab-separated.
    fn parse(output: &str) -> Result<Self> {
        let mut score = Self::default();
        for line in output.lines().filter(|line| !line.trim().is_empty()) {
            let mut fields = line.split('\t');
            let (Some(status), Some(id), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                bail!("an audit line without status, id and name: {line}");
            };
            let passed = status == "ok";
            let tally = match name.split_whitespace().next() {
                Some("MUST") => &mut score.must,
                Some("SHOULD") => &mut score.should,
                Some("MAY") => &mut score.may,
                _ => bail!("an audit named by no requirement level: {line}"),
            };
            tally.add(passed);
            if !passed && !name.starts_with("MAY") {
                let reason = fields.next().unwrap_or_default();
                score.failures.push(format!("{id} {name}: {reason}"));
            }
        }
        if score.must.total == 0 {
            bail!("the audit reported no MUST:\n{output}");
        }
        Ok(score)
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            must, should, may, ..
        } = self;
        write!(
            f,
            "MUST {}/{}, SHOULD {}/{}, MAY {}/{}",
            must.passed, must.total, should.passed, should.total, may.passed, may.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_counts_each_level_and_lists_the_musts_and_shoulds_missed() {
        let output = "ok\t4655\tMUST accept application/json and match the content-type\t\n\
                      warn\t22EB\tSHOULD accept application/graphql-response+json\tContent-Type is application/json\n\
                      ok\t80D8\tSHOULD assume application/json content-type when accept is missing\t\n\
                      notice\t5A70\tMAY accept application/x-www-form-urlencoded formatted GET requests\t405\n";

        let score = Score::parse(output).unwrap();

        assert_eq!(
            score.must,
            Tally {
                passed: 1,
                total: 1
            }
        );
        assert_eq!(
            score.should,
            Tally {
                passed: 1,
                total: 2
            }
        );
        assert_eq!(
            score.may,
            Tally {
                passed: 0,
                total: 1
            }
        );
        assert!(!score.complete());
        assert_eq!(
            score.failures,
            [
                "22EB SHOULD accept application/graphql-response+json: Content-Type is application/json"
            ]
        );
        assert_eq!(score.to_string(), "MUST 1/1, SHOULD 1/2, MAY 0/1");
    }

    #[test]
    fn an_output_without_audits_is_an_error() {
        assert!(Score::parse("").is_err());
        assert!(Score::parse("ok\tX\tRECOMMENDED something\t\n").is_err());
    }
}
