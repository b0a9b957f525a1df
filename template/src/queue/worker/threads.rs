//! One OS thread per concurrency slot, each running one job at a time.
//!
//! Handlers are async, yet a handler may block its thread (a synchronous client, a
//! CPU-heavy loop). On a Tokio worker thread that would stall every task queued there,
//! and the runtime's I/O with them: other jobs would wait, or a single blocked thread
//! could hold up the whole worker. On a thread of its own, a job blocks only itself; its
//! awaits are still served by the runtime (`Handle::block_on`).

use std::{
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, mpsc},
};

use tokio::runtime::Handle;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(super) struct HandlerThreads {
    tasks: mpsc::Sender<Task>,
}

impl HandlerThreads {
    /// `count` threads running tasks on `runtime`. They end once this value is dropped
    /// and their current task is done; they are never joined, so a job that hangs past
    /// the shutdown timeout cannot keep the process alive.
    ///
    /// # Errors
    /// Fails when a thread cannot be started.
    pub fn start(count: usize, runtime: &Handle) -> std::io::Result<Self> {
        let (tasks, queue) = mpsc::channel::<Task>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count {
            let (queue, runtime) = (queue.clone(), runtime.clone());
            std::thread::Builder::new()
                .name(format!("job-{n}"))
                .spawn(move || {
                    loop {
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(task) = next else { break };
                        // Tasks catch their handler's panics; this keeps the thread
                        // alive whatever else might unwind.
                        let _ =
                            std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(task)));
                    }
                })?;
        }
        Ok(Self { tasks })
    }

    /// Runs `task` on the next free thread.
    pub fn run(&self, task: impl Future<Output = ()> + Send + 'static) {
        // The threads, which never die, hold the receiving end while this value lives.
        let _ = self.tasks.send(Box::pin(task));
    }
}
