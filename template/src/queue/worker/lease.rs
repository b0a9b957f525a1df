//! Lease renewal on a thread of its own.
//!
//! A delivered job stays with its worker while the worker renews it; an entry left
//! alone for a whole lease is taken over by any worker. Renewal runs on its own OS
//! thread, runtime and connection, so that no handler, however it blocks its thread or
//! hogs the runtime, can delay it and have its job started a second time.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use redis::AsyncCommands as _;
use tokio::sync::watch;

use crate::{
    clock::unix_ms,
    queue::{JobError, keys::QueueKeys, scripts},
    redis::Connection,
    redis::Redis,
};

/// The stream entries this worker holds: claimed, running, or awaiting settlement.
#[derive(Clone, Default)]
pub(super) struct Held(Arc<Mutex<HashSet<String>>>);

impl Held {
    pub fn add(&self, entries: impl IntoIterator<Item = String>) {
        self.lock().extend(entries);
    }

    pub fn remove<'a>(&self, entries: impl IntoIterator<Item = &'a String>) {
        let mut held = self.lock();
        for entry in entries {
            held.remove(entry);
        }
    }

    pub fn contains(&self, entry: &str) -> bool {
        self.lock().contains(entry)
    }

    fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The renewal thread; stops (and retires the worker's heartbeat) when dropped.
pub(super) struct Leases {
    held: Held,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Leases {
    /// Renews `consumer`'s held entries every third of `lease`.
    ///
    /// # Errors
    /// Fails when the thread cannot be started.
    pub fn start(
        redis: Redis,
        keys: QueueKeys,
        consumer: Arc<str>,
        lease: Duration,
    ) -> std::io::Result<Self> {
        let held = Held::default();
        let (stop, stopped) = watch::channel(false);
        let renewer = Renewer {
            redis,
            keys,
            consumer,
            held: held.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("job-leases".into())
            .spawn(move || renewer.run(lease / 3, stopped))?;
        Ok(Self {
            held,
            stop,
            thread: Some(thread),
        })
    }

    pub fn held(&self) -> Held {
        self.held.clone()
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Renewer {
    redis: Redis,
    keys: QueueKeys,
    consumer: Arc<str>,
    held: Held,
}

impl Renewer {
    fn run(self, every: Duration, mut stopped: watch::Receiver<bool>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(error = %error, "Failed to start lease renewal: jobs may run twice");
                return;
            }
        };
        runtime.block_on(async move {
            let mut connection = None;
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => break,
                }
                if let Err(error) = self.renew(&mut connection).await {
                    connection = None;
                    tracing::warn!(error = %error, "Failed to renew job leases");
                }
            }
            if let Some(mut connection) = connection {
                let retired: redis::RedisResult<()> =
                    connection.zrem(&self.keys.workers, &*self.consumer).await;
                if let Err(error) = retired {
                    tracing::warn!(error = %error, "Failed to retire the worker's heartbeat");
                }
            }
        });
    }

    async fn renew(&self, connection: &mut Option<Connection>) -> Result<(), JobError> {
        let connection = match connection {
            Some(connection) => connection,
            empty => empty.insert(self.redis.dedicated_connection(Duration::ZERO).await?),
        };
        let lost = scripts::renew(
            connection,
            &self.keys,
            &self.consumer,
            unix_ms(),
            &self.held.snapshot(),
        )
        .await?;
        // Entries settled since the snapshot are not held by anyone any more either.
        let lost = lost
            .iter()
            .filter(|entry| self.held.contains(entry))
            .count();
        if lost > 0 {
            tracing::warn!(
                jobs = lost,
                "Leases ran out while Redis was unreachable: other workers may run these jobs too"
            );
        }
        Ok(())
    }
}
