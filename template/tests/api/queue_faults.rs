//! No job is lost when Redis misbehaves under load: two workers work off 2000 jobs on a
//! private Redis, or a private Redis Cluster, while it stalls for longer than the lease,
//! or drops every connection.
//! A stall makes every lease run out at once, so jobs in flight are taken over and may
//! run twice; the property is that each one runs, and is counted done once.

use std::time::Duration;

use {{crate_name}}::queue::QueueSettings;

use crate::{
    queue::{TestJob, TestQueue, eventually, fast_settings_with},
    redis_server::{PrivateCluster, PrivateRedis, unique_prefix},
};

const JOBS: u32 = 2000;

/// What a round does to the queue's Redis once a few hundred jobs have run.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `CLIENT PAUSE … ALL`: every command of every client waits this long.
    Stall(Duration),
    /// `CLIENT KILL TYPE normal`, this many times, 300 ms apart.
    KillConnections(u32),
}

fn settings() -> QueueSettings {
    // Redis failures are not the jobs' fault: they must not use up attempts.
    fast_settings_with("concurrency = 8\nfetch_batch = 16\nmax_attempts = 10\nmax_deliveries = 10")
}

/// 2000 jobs, two workers on the Redis at `url`, one fault on each of its `nodes`; then
/// every job must have run and be counted once.
async fn survive(url: &str, nodes: &[&PrivateRedis], fault: Fault) {
    let test = TestQueue::on(url, &unique_prefix(), settings()).await;
    let jobs = (0..JOBS).map(|id| TestJob {
        sleep_ms: 5,
        quiet: true,
        ..TestJob::new(id)
    });
    test.queue.enqueue_all(jobs.collect()).await.unwrap();
    let (stop_a, a) = test.start_worker();
    let (stop_b, b) = test.start_worker();
    eventually("jobs to be in flight", Duration::from_secs(20), || async {
        test.effects().await >= 300
    })
    .await;

    inflict(nodes, fault).await;

    eventually(
        &format!("every job to run after {fault:?}"),
        Duration::from_secs(90),
        || async { test.effects().await == u64::from(JOBS) },
    )
    .await;
    test.wait_until_idle(Duration::from_secs(30)).await;
    let stats = test.stats().await;
    assert_eq!(
        (stats.done, stats.dead),
        (u64::from(JOBS), 0),
        "after {fault:?}: {stats:?}"
    );
    for (stop, worker) in [(stop_a, a), (stop_b, b)] {
        stop.send(true).unwrap();
        worker.await.unwrap().unwrap();
    }
}

/// `fault`, on every one of `nodes` at once.
async fn inflict(nodes: &[&PrivateRedis], fault: Fault) {
    let mut admins = Vec::new();
    for node in nodes {
        let client = redis::Client::open(node.url()).unwrap();
        admins.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    match fault {
        Fault::Stall(duration) => {
            for admin in &mut admins {
                let _: () = redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(duration.as_millis() as u64)
                    .arg("ALL")
                    .query_async(admin)
                    .await
                    .unwrap();
            }
        }
        Fault::KillConnections(times) => {
            for _ in 0..times {
                let mut killed = 0;
                for admin in &mut admins {
                    let on_node: u64 = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("TYPE")
                        .arg("normal")
                        .query_async(admin)
                        .await
                        .unwrap();
                    killed += on_node;
                }
                assert!(killed > 0, "no connection to kill");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

#[tokio::test]
async fn no_job_is_lost_when_redis_stalls_longer_than_the_lease() {
    // The loss this guards against was intermittent: several rounds.
    let server = PrivateRedis::start();
    for _ in 0..3 {
        survive(&server.url(), &[&server], Fault::Stall(Duration::from_secs(6))).await;
    }
}

#[tokio::test]
async fn no_job_is_lost_when_redis_stalls_for_three_seconds() {
    let server = PrivateRedis::start();
    survive(&server.url(), &[&server], Fault::Stall(Duration::from_secs(3))).await;
}

#[tokio::test]
async fn no_job_is_lost_when_every_connection_is_killed_three_times() {
    let server = PrivateRedis::start();
    survive(&server.url(), &[&server], Fault::KillConnections(3)).await;
}

#[tokio::test]
async fn no_job_is_lost_when_every_node_of_a_cluster_stalls_longer_than_the_lease() {
    let cluster = PrivateCluster::start(3, 0);
    let nodes: Vec<&PrivateRedis> = cluster.nodes.iter().collect();
    survive(&cluster.url(), &nodes, Fault::Stall(Duration::from_secs(3))).await;
}

#[tokio::test]
async fn no_job_is_lost_when_every_connection_to_a_cluster_is_killed_three_times() {
    let cluster = PrivateCluster::start(3, 0);
    let nodes: Vec<&PrivateRedis> = cluster.nodes.iter().collect();
    survive(&cluster.url(), &nodes, Fault::KillConnections(3)).await;
}

#[tokio::test]
async fn a_workers_own_job_it_finds_stale_is_not_counted_as_another_delivery() {
    // Arrange: one long job running on a private Redis.
    let server = PrivateRedis::start();
    let test = TestQueue::on(&server.url(), &unique_prefix(), fast_settings_with("")).await;
    test.queue
        .enqueue(TestJob {
            sleep_ms: 6000,
            ..TestJob::new(1)
        })
        .await
        .unwrap();
    let (_stop, _worker) = test.start_worker();
    eventually("the job to start", Duration::from_secs(10), || async {
        test.count("starts", 1).await == 1
    })
    .await;
    let stream = ["{", &test.prefix, "jobs}:stream"].concat();
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let pending = async |raw: &mut redis::aio::MultiplexedConnection| -> Vec<(String, String, u64, u32)> {
        redis::cmd("XPENDING")
            .arg(&stream)
            .arg("workers")
            .arg("-")
            .arg("+")
            .arg(10)
            .query_async(raw)
            .await
            .unwrap()
    };
    let (entry, worker, _, _) = pending(&mut raw).await.remove(0);

    // Act: the entry looks as if its renewals had stopped ten seconds ago, as after a
    // stall, so the worker's next polls find its own job stale.
    for _ in 0..5 {
        let _: () = redis::cmd("XCLAIM")
            .arg(&stream)
            .arg("workers")
            .arg(&worker)
            .arg(0)
            .arg(&entry)
            .arg("IDLE")
            .arg(10_000)
            .arg("JUSTID")
            .query_async(&mut raw)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Assert: still its first delivery, still with its worker, run once.
    let now = pending(&mut raw).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!((&now[0].1, now[0].3), (&worker, 1), "{now:?}");
    assert_eq!(test.count("starts", 1).await, 1);
}
