//! The Redis keys of one queue. They share a hash tag, so on Redis Cluster the whole
//! queue lives in one slot and each Lua script may touch several of its keys.

/// The consumer group every worker of a queue reads in.
pub(super) const GROUP: &str = "workers";

#[derive(Debug, Clone)]
pub(super) struct QueueKeys {
    /// Jobs ready to run, and delivered ones until they are settled.
    pub stream: String,
    /// Delayed jobs and retries, scored by due time (Unix ms).
    pub delayed: String,
    /// Dead jobs' records by job id.
    pub dead: String,
    /// Dead job ids scored by failure time: order, cap and retention.
    pub dead_index: String,
    /// Count of finished jobs.
    pub done: String,
    /// Workers scored by their last heartbeat (Unix ms).
    pub workers: String,
    tag: String,
}

impl QueueKeys {
    /// The keys of the queue named `base` (the service's key prefix included).
    pub fn new(base: &str) -> Self {
        let tag = ["{", base, "}"].concat();
        let key = |name: &str| format!("{tag}:{name}");
        Self {
            stream: key("stream"),
            delayed: key("delayed"),
            dead: key("dead"),
            dead_index: key("dead-index"),
            done: key("done"),
            workers: key("workers"),
            tag,
        }
    }

    /// Remembers the id of the job queued under idempotency key `key`.
    pub fn idempotency(&self, key: &str) -> String {
        format!("{}:key:{key}", self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_queue_as_hash_tag() {
        let keys = QueueKeys::new("shop:jobs");
        for key in [
            &keys.stream,
            &keys.delayed,
            &keys.dead,
            &keys.dead_index,
            &keys.done,
        ] {
            assert!(key.starts_with("{shop:jobs}:"), "{key}");
        }
        assert_eq!(keys.idempotency("nightly:7"), "{shop:jobs}:key:nightly:7");
    }
}
