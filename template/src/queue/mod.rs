//! The job queue engine: a thin protocol over Redis Streams, generic over the type of
//! job, that knows nothing of the service's own jobs (those are in `jobs.rs`).
//!
//! A queue is one stream read by one consumer group, a sorted set of delayed jobs and
//! retries, and a capped set of dead jobs; `keys.rs` names them and `scripts.rs` moves
//! jobs between them. [`JobQueue`] enqueues and inspects; [`worker::run`] consumes.
//! Handlers run at least once (see [`worker`]), so they must be idempotent, keyed by
//! [`JobRun::id`].

mod envelope;
mod job_queue;
mod keys;
mod metrics;
mod outbox;
mod scripts;
mod settings;
pub mod worker;

pub use envelope::{JobId, JobRun};
pub use job_queue::{DeadJob, EnqueueError, JobError, JobQueue, JobStats};
pub use metrics::{JobKind, report_depth};
pub use outbox::Outbox;
pub use settings::{Backoff, QueueSettings};
