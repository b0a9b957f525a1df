//! Messages raised on any replica, delivered to the listeners of their topic on every
//! replica. One Redis pub/sub channel carries them all; each process keeps one
//! subscriber connection (opened by the first [`Fanout::listen`]) and hands every
//! message to its own listeners of the message's topic.
//!
//! Pub/sub keeps nothing: a message sent while a subscriber reconnects is lost. A
//! listener therefore hears of every possible gap ([`Notice::Missed`]: the subscriber
//! (re)connected, or the listener fell behind) and re-reads the state it depends on.
//!
//! On a Redis Cluster a plain channel has no slot: every node forwards a PUBLISH to all
//! the others, so a process subscribed at any node hears the whole cluster. Every node
//! thus carries every message, which suits rare messages such as account security
//! events; sharded pub/sub (SSUBSCRIBE) would spread them over the slots at the cost of a
//! subscriber connection per shard, followed through resharding and failovers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Once, PoisonError, Weak},
    time::Duration,
};

use futures_util::StreamExt as _;
use tokio::sync::broadcast;

use crate::redis::Redis;

/// Messages a listener may fall behind by before it is told it missed some.
const LISTENER_BACKLOG: usize = 16;
/// How often an idle subscriber connection is checked, and how long a failed one waits
/// before connecting again.
const SUBSCRIBER_PING: Duration = Duration::from_secs(10);
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// What a listener hears.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A message published to the listener's topic.
    Message(Arc<str>),
    /// Messages may have been lost: re-read what they would have told.
    Missed,
}

/// The process's end of one channel; cheap to clone.
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    channel: String,
    topics: Mutex<HashMap<String, broadcast::Sender<Notice>>>,
    subscriber: Once,
}

impl Fanout {
    /// The fan-out over the Redis channel `channel` (prefix it like any key).
    pub fn new(redis: Redis, channel: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                channel,
                topics: Mutex::new(HashMap::new()),
                subscriber: Once::new(),
            }),
        }
    }

    /// Sends `message` to the listeners of `topic` on every replica.
    ///
    /// # Errors
    /// Fails when Redis does not answer.
    pub async fn publish(&self, topic: &str, message: &str) -> redis::RedisResult<()> {
        debug_assert!(!topic.contains('\n'), "topics are single lines");
        redis::cmd("PUBLISH")
            .arg(&self.inner.channel)
            .arg([topic, "\n", message].concat())
            .query_async(&mut self.inner.redis.connection())
            .await
    }

    /// Listens to `topic` until the listener is dropped. The first call starts this
    /// process's subscriber; listeners made before it is in place hear a
    /// [`Notice::Missed`] once it is.
    ///
    /// Must be called within a Tokio runtime.
    pub fn listen(&self, topic: &str) -> Listener {
        self.inner.subscriber.call_once(|| {
            tokio::spawn(subscribe(Arc::downgrade(&self.inner)));
        });
        let receiver = lock(&self.inner.topics)
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(LISTENER_BACKLOG).0)
            .subscribe();
        Listener {
            receiver: Some(receiver),
            topic: topic.to_string(),
            inner: self.inner.clone(),
        }
    }
}

/// The notices of one topic, for one listener.
pub struct Listener {
    /// `None` only while dropping.
    receiver: Option<broadcast::Receiver<Notice>>,
    topic: String,
    inner: Arc<Inner>,
}

impl Listener {
    /// The next notice; waits as long as it takes.
    pub async fn next(&mut self) -> Notice {
        let receiver = self.receiver.as_mut().expect("a live listener");
        match receiver.recv().await {
            Ok(notice) => notice,
            // The sender lives in the map as long as this listener does; only falling
            // behind loses messages.
            Err(_) => Notice::Missed,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut topics = lock(&self.inner.topics);
        self.receiver = None;
        if topics
            .get(&self.topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            topics.remove(&self.topic);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps the process subscribed for as long as its fan-out lives, reconnecting after
/// every failure; every (re)subscription tells all listeners they may have missed some.
async fn subscribe(inner: Weak<Inner>) {
    loop {
        let Some((redis, channel)) = inner
            .upgrade()
            .map(|inner| (inner.redis.clone(), inner.channel.clone()))
        else {
            return;
        };
        match redis.pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    broadcast_missed(&inner);
                    relay(pubsub, &inner).await;
                    tracing::warn!("Lost the pub/sub connection to Redis; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "Failed to subscribe to Redis pub/sub"),
            },
            Err(error) => tracing::warn!(%error, "Failed to connect to Redis for pub/sub"),
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Hands every message to its topic's listeners until the connection fails (checked by
/// a PING when it has been quiet) or the fan-out is gone.
async fn relay(pubsub: redis::aio::PubSub, inner: &Weak<Inner>) {
    let (mut sink, mut messages) = pubsub.split();
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return };
                let Some(inner) = inner.upgrade() else { return };
                if let Ok(text) = message.get_payload::<String>() {
                    deliver(&inner, &text);
                }
            }
            () = tokio::time::sleep(SUBSCRIBER_PING) => {
                let ping = tokio::time::timeout(SUBSCRIBER_PING, sink.ping::<redis::Value>());
                if !matches!(ping.await, Ok(Ok(_))) || inner.strong_count() == 0 {
                    return;
                }
            }
        }
    }
}

fn deliver(inner: &Inner, text: &str) {
    let Some((topic, message)) = text.split_once('\n') else {
        return;
    };
    if let Some(sender) = lock(&inner.topics).get(topic) {
        // No receiver left is fine: the last listener is leaving.
        let _ = sender.send(Notice::Message(message.into()));
    }
}

fn broadcast_missed(inner: &Weak<Inner>) {
    if let Some(inner) = inner.upgrade() {
        for sender in lock(&inner.topics).values() {
            let _ = sender.send(Notice::Missed);
        }
    }
}
