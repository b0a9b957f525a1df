//! The SecantusDB the harness runs for the MongoDB pass: it speaks MongoDB to a real
//! driver, and it stops with its handle, also when the code holding it panics.

use std::{
    net::TcpStream,
    process::Command,
    time::{Duration, Instant},
};

use ci::mongodb::{MongoServer, secantusdb_python};

/// Asks the server at `uri` for `ping` with pymongo, which SecantusDB installs.
fn ping(uri: &str) -> String {
    let python = secantusdb_python().unwrap();
    let output = Command::new(python)
        .args([
            "-c",
            "import sys, pymongo; \
             c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000); \
             print(c.admin.command('ping')['ok'])",
            uri,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn port(uri: &str) -> u16 {
    uri.rsplit(':').next().unwrap().parse().unwrap()
}

/// Waits up to 10 s for `pid` to be gone; whether it went.
fn exits(pid: u32) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        if !alive {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn secantusdb_answers_a_driver_and_stops_with_its_handle() {
    let server = MongoServer::start_secantusdb().unwrap();
    let pid = server.pid().unwrap();
    let port = port(server.uri());

    let answer = ping(server.uri());
    drop(server);

    assert_eq!(answer, "1.0");
    assert!(exits(pid), "SecantusDB {pid} outlived its handle");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn secantusdb_stops_when_the_code_holding_it_panics() {
    let (sender, pid) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let server = MongoServer::start_secantusdb().unwrap();
        sender.send(server.pid().unwrap()).unwrap();
        panic!("a failing variant");
    });

    assert!(holder.join().is_err());
    let pid = pid.recv().unwrap();
    assert!(exits(pid), "SecantusDB {pid} outlived a panic");
}
