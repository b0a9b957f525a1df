//! A module's way onto the queue without naming the service's job list: an
//! [`Outbox<T>`] enqueues `T`s on a queue whose job type wraps them (`J: From<T>`).

use std::{pin::Pin, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};

use super::{JobError, JobId, JobKind, JobQueue};

type Enqueued<'a> = Pin<Box<dyn Future<Output = Result<JobId, JobError>> + Send + 'a>>;

/// Enqueues `T`s as jobs of the queue it came from (see [`JobQueue::outbox`]).
pub struct Outbox<T>(Arc<dyn Enqueue<T>>);

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static> Outbox<T> {
    /// Queues `item` for the next free worker.
    ///
    /// # Errors
    /// Fails when Redis is unavailable; the job is then not queued.
    pub async fn enqueue(&self, item: T) -> Result<JobId, JobError> {
        self.0.enqueue(item).await
    }
}

trait Enqueue<T>: Send + Sync {
    fn enqueue(&self, item: T) -> Enqueued<'_>;
}

impl<J, T> Enqueue<T> for JobQueue<J>
where
    J: From<T> + Serialize + DeserializeOwned + JobKind + Send + 'static,
    T: Send + 'static,
{
    fn enqueue(&self, item: T) -> Enqueued<'_> {
        Box::pin(JobQueue::enqueue(self, J::from(item)))
    }
}

impl<J> JobQueue<J>
where
    J: Serialize + DeserializeOwned + JobKind + Send + 'static,
{
    /// An outbox for `T`s, which this queue holds as `J`s.
    pub fn outbox<T>(&self) -> Outbox<T>
    where
        J: From<T>,
        T: Send + 'static,
    {
        Outbox(Arc::new(self.clone()))
    }
}
