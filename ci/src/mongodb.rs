//! The MongoDB server the variants' second test pass runs on.
//!
//! `CI_MONGODB_URI` names a server to use as it is: this repository's GitHub workflow
//! points it at a real `mongo:7` service. Without it the harness runs SecantusDB, a
//! MongoDB wire-protocol server from PyPI (single node, WiredTiger, in memory here), so
//! `cargo test -p ci` needs no Docker. It is installed on first use into
//! `target/mongodb-server/`, pinned, and stopped when the [`MongoServer`] is dropped,
//! also when a test panics.

use std::{
    fs,
    io::{Read as _, Seek as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{examples::repo_root, install};

/// The variable naming an existing server.
pub const URI_VARIABLE: &str = "CI_MONGODB_URI";
/// A beta release, hence `--pre` at install time.
const SECANTUSDB: &str = "SecantusDB==0.7.0b3";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A MongoDB server for tests: one named by `CI_MONGODB_URI`, or a SecantusDB this
/// handle started and stops.
pub struct MongoServer {
    uri: String,
    description: String,
    process: Option<ServerProcess>,
}

struct ServerProcess {
    child: Child,
    log: fs::File,
}

impl MongoServer {
    /// The server `CI_MONGODB_URI` names, or else a fresh SecantusDB on a free port.
    ///
    /// # Errors
    /// Fails if SecantusDB cannot be installed (python3 with venv and pip) or does not
    /// start listening in time; the error holds its log.
    pub fn start() -> Result<Self> {
        if let Some(uri) = std::env::var(URI_VARIABLE)
            .ok()
            .filter(|uri| !uri.trim().is_empty())
        {
            return Ok(Self {
                uri,
                description: format!("the server {URI_VARIABLE} names"),
                process: None,
            });
        }
        Self::start_secantusdb()
    }

    /// A fresh SecantusDB on a free port, whatever `CI_MONGODB_URI` says.
    ///
    /// # Errors
    /// As [`MongoServer::start`].
    pub fn start_secantusdb() -> Result<Self> {
        let python = secantusdb_python().context("failed to install SecantusDB")?;
        Self::spawn(&python)
    }

    /// One server for the whole process, started on first use (see [`MongoServer::start`]).
    /// It runs on a thread of its own that lives as long as the process, since the server
    /// stops when the thread that started it ends: a test's thread ends with its test. At
    /// exit the kernel stops it (statics are never dropped).
    ///
    /// # Errors
    /// As [`MongoServer::start`]; every caller gets the first one's error.
    pub fn shared() -> Result<&'static Self> {
        static SHARED: OnceLock<Result<&'static MongoServer, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            let (sender, started) = std::sync::mpsc::channel();
            let keeper = std::thread::Builder::new()
                .name("mongodb-server".to_string())
                .spawn(move || {
                    let server = Self::start().map(|server| &*Box::leak(Box::new(server)));
                    let running = server.is_ok();
                    let _ = sender.send(server.map_err(|error| format!("{error:#}")));
                    if running {
                        // Parked for good: the server lives until the process exits.
                        loop {
                            std::thread::park();
                        }
                    }
                });
            match keeper {
                Ok(_) => started
                    .recv()
                    .unwrap_or_else(|_| Err("the MongoDB server's thread died".to_string())),
                Err(error) => Err(format!("no thread for the MongoDB server: {error}")),
            }
        });
        shared
            .as_ref()
            .copied()
            .map_err(|error| anyhow::anyhow!("{error}"))
    }

    /// What the tests ran on, for the report.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The server's process id, when this handle started it.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|process| process.child.id())
    }

    fn spawn(python: &Path) -> Result<Self> {
        let port = free_port()?;
        let log = tempfile::tempfile()?;
        let mut command = Command::new(python);
        command
            .args(["-m", "secantus", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--storage-path", ":memory:", "--log-level", "WARNING"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        stop_with_this_thread(&mut command);
        let child = command.spawn().context("failed to start SecantusDB")?;
        let mut server = Self {
            uri: format!("mongodb://127.0.0.1:{port}"),
            description: format!("{} (local, in memory)", SECANTUSDB.replace("==", " ")),
            process: Some(ServerProcess { child, log }),
        };
        server.wait_until_listening(port)?;
        Ok(server)
    }

    fn wait_until_listening(&mut self, port: u16) -> Result<()> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let process = self.process.as_mut().expect("a spawned server");
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!("SecantusDB exited ({status}):\n{}", process.log_text());
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "SecantusDB did not listen on {address} within {START_TIMEOUT:?}:\n{}",
                    process.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl ServerProcess {
    fn log_text(&mut self) -> String {
        let mut text = String::new();
        let _ = self.log.rewind();
        let _ = self.log.read_to_string(&mut text);
        text
    }

    /// SIGTERM first, so the server removes its in-memory store's scratch folder.
    fn stop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let asked = Instant::now();
        while asked.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            process.stop();
        }
    }
}

/// The Python of SecantusDB's virtualenv under `target/mongodb-server/`, installed if
/// missing or pinned to another version. It runs the server as a module: the installed
/// script's shebang would name the scratch folder it was built in. pymongo comes with it.
///
/// # Errors
/// Fails if python3 (with venv and pip) cannot install it.
pub fn secantusdb_python() -> Result<PathBuf> {
    let root = repo_root().join("target").join("mongodb-server");
    install::ensure_pinned(&root, &[SECANTUSDB], |scratch| {
        let venv = scratch.join("venv");
        install::run(
            "python3 -m venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
        install::run(
            "pip install SecantusDB",
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--pre", SECANTUSDB]),
        )?;
        Ok(())
    })?;
    Ok(root.join("venv").join("bin").join("python"))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// Has the kernel stop the server if the thread that started it dies without running
/// `Drop` (the harness killed outright). The thread, not the process: the variants test
/// holds the server on the thread that started it for as long as it runs.
fn stop_with_this_thread(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
