//! A module's way onto the queue without naming the service's job list: an
//! [`Outbox<T>`] enqueues `T`s on a queue whose job type wraps them (`J: From<T>`).

use std::{pin::Pin, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};

use super::{EnqueueError, JobId, JobKind, JobQueue};

type Enqueued<'a> = Pin<Box<dyn Future<Output = Result<JobId, EnqueueError>> + Send + 'a>>;

/// Enqueues `T`s as jobs of the queue it came from (see [`JobQueue::outbox`]).
pub struct Outbox<T>(Arc<dyn Enqueue<T>>);

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static> Outbox<T> {
    /// Queues `item` under the idempotency `key` (see [`JobQueue::enqueue_keyed`]).
    ///
    /// # Errors
    /// [`EnqueueError`]: not queued, or not known to be.
    pub async fn enqueue_keyed(&self, item: T, key: &str) -> Result<JobId, EnqueueError> {
        self.0.enqueue_keyed(item, key).await
    }
}

trait Enqueue<T>: Send + Sync {
    fn enqueue_keyed<'a>(&'a self, item: T, key: &'a str) -> Enqueued<'a>;
}

impl<J, T> Enqueue<T> for JobQueue<J>
where
    J: From<T> + Serialize + DeserializeOwned + JobKind + Send + 'static,
    T: Send + 'static,
{
    fn enqueue_keyed<'a>(&'a self, item: T, key: &'a str) -> Enqueued<'a> {
        Box::pin(JobQueue::enqueue_keyed(self, J::from(item), key))
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
