//! Work a request leaves behind: it answers first, then this runs on its own task.
//!
//! Counted, so that tests (and anything else) can wait until all of it is done.

use std::{future::Future, sync::Arc};

use tokio::sync::watch;
use tracing::Instrument as _;

#[derive(Clone)]
pub struct Background {
    running: Arc<watch::Sender<usize>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            running: Arc::new(watch::Sender::new(0)),
        }
    }
}

/// Counts one task while it lives, even if it panics.
struct Running(Arc<watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|running| *running -= 1);
    }
}

impl Background {
    /// Runs `work` on a task of its own, in the caller's tracing span; the caller does not
    /// wait for it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.running.send_modify(|running| *running += 1);
        let running = Running(self.running.clone());
        let work = work.instrument(tracing::Span::current());
        tokio::spawn(async move {
            let _running = running;
            work.await;
        });
    }

    /// Returns once no task is running.
    pub async fn idle(&self) {
        let mut running = self.running.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = running.wait_for(|running| *running == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_task_even_one_that_panics() {
        let background = Background::default();
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();

        background.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.send(()).unwrap();
        });
        background.spawn(async { panic!("a failing task") });
        background.idle().await;

        assert!(finished.try_recv().is_ok(), "idle returned early");
    }
}
