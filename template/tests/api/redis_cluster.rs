//! Redis Cluster, on clusters of the tests' own: readiness tells the truth, and a
//! master's death costs nothing its replica had received. (Every other Redis-touching
//! test runs on a cluster too with `TEST_REDIS=cluster`.)
//!
//! Replication is asynchronous: what a master acknowledged in the moment before it
//! died, and had not yet sent to its replica, is lost. These tests let the replicas catch
//! up before the kill, and assert that nothing beyond that is lost.
//!
//! Each test starts a cluster of its own whatever the pass, so they run in the first
//! pass only (the embedded store, one shared Redis node): the MongoDB and cluster passes
//! would repeat them on a busier machine and prove nothing new.

use std::time::{Duration, Instant};

use crate::{
    helpers::{TestApp, spawn_app_with},
    redis_server::PrivateCluster,
};

/// Whether this is a second pass of the suite (`TEST_MONGODB_URI` or `TEST_REDIS=cluster`
/// set), which these tests leave to the first.
fn second_pass() -> bool {
    let second = std::env::var_os("TEST_MONGODB_URI").is_some()
        || std::env::var("TEST_REDIS").is_ok_and(|kind| kind == "cluster");
    if second {
        eprintln!("runs in the first pass only (see the module docs)");
    }
    second
}

/// An app on `cluster`.
async fn app_on(cluster: &PrivateCluster) -> TestApp {
    let url = cluster.url();
    spawn_app_with(|s| s.redis.url = {{crate_name}}::redis::RedisUrl::parse(&url).unwrap()).await
}

/// Whether `/health/ready` says ready (its report is at most a second old).
async fn ready(app: &TestApp) -> bool {
    let report: serde_json::Value = app.get("/health/ready").await.json().await.unwrap();
    report["ready"].as_bool().unwrap()
}

/// Polls `condition` every 200 ms until it holds, failing after `limit`.
async fn within(limit: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readiness_fails_while_a_slot_range_has_no_master() {
    if second_pass() {
        return;
    }
    // Arrange: three masters, no replicas.
    let mut cluster = PrivateCluster::start(3, 0);
    let app = app_on(&cluster).await;
    within(Duration::from_secs(5), "ready on a whole cluster", async || ready(&app).await).await;

    // Act: a third of the slots loses its master, for good.
    let master = cluster.master_of("any-key");
    cluster.stop_node(master);

    // Assert
    within(Duration::from_secs(15), "not ready without a master", async || !ready(&app).await).await;
}
{%- if auth %}

#[tokio::test]
async fn sessions_outlive_their_masters_death() {
    if second_pass() {
        return;
    }
    use serde_json::json;

    use crate::auth::{PASSWORD, graphql, login, register, unique_email};

    /// `query` with `variables` and `token`; `None` while the app cannot answer at all.
    async fn try_graphql(
        app: &TestApp,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let body = json!({ "query": query, "variables": variables });
        let mut request = app.client.post(format!("{}/graphql", app.address)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.ok()?.json().await.ok()
    }

    // Arrange: ten accounts signed in, replicated.
    let mut cluster = PrivateCluster::start(3, 1);
    let app = app_on(&cluster).await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let email = unique_email();
        register(&app, &email, PASSWORD).await;
        sessions.push(login(&app, &email, PASSWORD).await);
    }
    let me = "{ me { id } }";
    let first = graphql(&app, Some(&sessions[0]), me, json!({})).await;
    let user = first["data"]["me"]["id"].as_str().unwrap().to_string();
    // The first user's keys share its hash tag, so they share its master.
    let key = ["user:{", &user, "}:sessions"].concat();
    let master = cluster.master_of(&key);
    cluster.wait_for_replicas(master);

    // Act: that master dies; its replica takes over.
    cluster.stop_node(master);
    cluster.wait_for_failover(&key, master, Duration::from_secs(30));

    // Assert: every session still works, on the same app, and sign-in goes on, each
    // within the time the client takes to learn the new master.
    for session in &sessions {
        within(Duration::from_secs(30), "a session to answer after the failover", async || {
            try_graphql(&app, Some(session), me, json!({}))
                .await
                .is_some_and(|body| body["data"]["me"]["id"].is_string())
        })
        .await;
    }
    let account = json!({ "e": unique_email(), "p": PASSWORD });
    let register_query = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { message } }";
    let login_query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p, bearer: true) { sessionToken } }";
    within(Duration::from_secs(20), "sign-in to work after the failover", async || {
        try_graphql(&app, None, register_query, account.clone()).await;
        try_graphql(&app, None, login_query, account.clone())
            .await
            .is_some_and(|body| body["data"]["login"]["sessionToken"].is_string())
    })
    .await;
}
{%- endif %}
{%- if queue %}

#[tokio::test]
#[ignore = "flaky: in about one run in four, some jobs have not run 120 s after the failover; run it with --ignored"]
async fn queued_jobs_outlive_their_masters_death_and_workers_carry_on() {
    if second_pass() {
        return;
    }
    use crate::{
        queue::{TestJob, TestQueue, fast_settings},
        redis_server::unique_prefix,
    };

    // Arrange: a worker running 200 jobs on a cluster with a replica per master.
    let mut cluster = PrivateCluster::start(3, 1);
    let prefix = unique_prefix();
    let test = TestQueue::on(&cluster.url(), &prefix, fast_settings()).await;
    let job = |id| TestJob {
        sleep_ms: 20,
        quiet: true,
        ..TestJob::new(id)
    };
    test.queue.enqueue_all((0..200).map(job).collect()).await.unwrap();
    let (_stop, worker) = test.start_worker();
    within(Duration::from_secs(20), "jobs to be running", async || test.effects().await >= 20).await;
    let master = cluster.master_of(&["{", &prefix, "jobs}:stream"].concat());
    cluster.wait_for_replicas(master);

    // Act: the queue's master dies while jobs run; 100 more are queued meanwhile, each
    // retried under its key until Redis confirms it.
    cluster.stop_node(master);
    for id in 200..300 {
        let key = format!("job-{id}");
        within(Duration::from_secs(30), "an enqueue to be confirmed", async || {
            test.queue.enqueue_keyed(job(id), &key).await.is_ok()
        })
        .await;
    }

    // Assert: every job ran, the 200 from before the failover included.
    let started = Instant::now();
    while test.effects().await < 300 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if test.effects().await < 300 {
        panic!("{}", where_the_jobs_are(&test, &worker).await);
    }
}

/// What became of the test jobs that did not run: which they are, the queue's counts,
/// the dead jobs, and whether the worker still runs.
async fn where_the_jobs_are(
    test: &crate::queue::TestQueue,
    worker: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> String {
    let mut missing = Vec::new();
    for id in 0..300 {
        if !test.applied(id).await {
            missing.push(id);
        }
    }
    format!(
        "jobs that never ran: {missing:?}\nqueue: {:?}\ndead: {:?}\nworker finished: {}",
        test.queue.stats().await,
        test.queue.dead().await,
        worker.is_finished(),
    )
}
{%- endif %}
