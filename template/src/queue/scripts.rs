//! The queue's multi-key steps as Lua scripts: Redis runs each one atomically, so a job
//! is always in exactly one place (stream, delayed set or dead set) whatever fails.
//!
//! Each script has one typed function here whose signature is its contract: the keys it
//! touches (all of one queue, sharing its hash tag), what it takes and what it answers.
//! Stream entries carry one field, `job`: the envelope's JSON. A delivered entry stays
//! in the consumer group's pending list until the worker holding it settles it; only
//! that worker may (`owns` below), so a worker whose lease ran out cannot settle a job
//! another worker has taken over.

use std::sync::LazyLock;

use redis::{RedisResult, Script, aio::ConnectionLike};

use super::keys::{GROUP, QueueKeys};

/// `owns(id)`: whether the pending entry `id` of stream `KEYS[1]` in group `ARGV[1]` is
/// held by consumer `ARGV[2]`. Scripts using it take those two arguments first.
const OWNS: &str = r"
local function owns(id)
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    return pending[1] ~= nil and pending[1][2] == ARGV[2]
end
";

/// A script whose body may call `owns`.
fn with_owns(body: &str) -> Script {
    Script::new(&format!("{OWNS}{body}"))
}

/// A script built once: each hashes its source for EVALSHA.
macro_rules! script {
    ($name:ident, $build:ident, $body:literal) => {
        static $name: LazyLock<Script> = LazyLock::new(|| $build($body));
    };
}

fn plain(body: &str) -> Script {
    Script::new(body)
}

script!(
    ENQUEUE_ONCE,
    plain,
    r"
        local holder = redis.call('GET', KEYS[1])
        if holder then return holder end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
        return ARGV[1]
        "
);

/// Queues `payload` (job `id`) unless `once` names a job already, which the key then
/// remembers for `remember_ms`. Returns the id of the job `once` stands for.
pub async fn enqueue_once<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    once: &str,
    id: &str,
    payload: &str,
    remember_ms: u64,
) -> RedisResult<String> {
    ENQUEUE_ONCE
        .key(once)
        .key(&keys.stream)
        .arg(id)
        .arg(payload)
        .arg(remember_ms)
        .invoke_async(connection)
        .await
}

script!(
    PROMOTE_DUE,
    plain,
    r"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
        for _, job in ipairs(due) do
            redis.call('XADD', KEYS[2], '*', 'job', job)
        end
        if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
        return #due
        "
);

/// Moves up to `chunk` delayed jobs due by `now_ms` to the stream. Returns how many
/// moved: callers repeat while a full chunk moved, which keeps each call short whatever
/// the backlog.
pub async fn promote_due<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    now_ms: u64,
    chunk: usize,
) -> RedisResult<usize> {
    PROMOTE_DUE
        .key(&keys.delayed)
        .key(&keys.stream)
        .arg(now_ms)
        .arg(chunk)
        .invoke_async(connection)
        .await
}

script!(
    CLAIM_STALE,
    plain,
    r"
        local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0',
            'COUNT', ARGV[4])
        local out = {}
        for _, entry in ipairs(claimed[2]) do
            if type(entry) == 'table' and type(entry[2]) == 'table' then
                local id, fields, job = entry[1], entry[2], ''
                for i = 1, #fields, 2 do
                    if fields[i] == 'job' then job = fields[i + 1] end
                end
                local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
                table.insert(out, {id, job, pending[1][4]})
            end
        end
        return out
        "
);

/// Takes over, for `consumer`, up to `count` entries pending for `min_idle_ms` or more
/// (their worker died or stalled). Returns `(entry id, job, deliveries)` per entry;
/// XAUTOCLAIM has counted this delivery.
pub async fn claim_stale<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    min_idle_ms: u64,
    count: usize,
) -> RedisResult<Vec<(String, String, u32)>> {
    CLAIM_STALE
        .key(&keys.stream)
        .arg(GROUP)
        .arg(consumer)
        .arg(min_idle_ms)
        .arg(count)
        .invoke_async(connection)
        .await
}

script!(
    RENEW,
    with_owns,
    r"
        redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
        local lost = {}
        for i = 4, #ARGV do
            if owns(ARGV[i]) then
                redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
            else
                table.insert(lost, ARGV[i])
            end
        end
        return lost
        "
);

/// Renews `consumer`'s leases on `entries` (their idle time restarts; JUSTID leaves
/// the delivery count alone) and records its heartbeat at `now_ms`. Returns the entries
/// it no longer holds.
pub async fn renew<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    now_ms: u64,
    entries: &[String],
) -> RedisResult<Vec<String>> {
    RENEW
        .key(&keys.stream)
        .key(&keys.workers)
        .arg(GROUP)
        .arg(consumer)
        .arg(now_ms)
        .arg(entries)
        .invoke_async(connection)
        .await
}

script!(
    ACK,
    with_owns,
    r"
        local held = {}
        for i = 3, #ARGV do
            if owns(ARGV[i]) then table.insert(held, ARGV[i]) end
        end
        if #held > 0 then
            redis.call('XACK', KEYS[1], ARGV[1], unpack(held))
            redis.call('XDEL', KEYS[1], unpack(held))
            redis.call('INCRBY', KEYS[2], #held)
        end
        return #held
        "
);

/// Settles finished jobs: those of `entries` that `consumer` holds leave the stream and
/// count as done. Returns how many it held.
pub async fn ack<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    entries: &[&String],
) -> RedisResult<usize> {
    ACK.key(&keys.stream)
        .key(&keys.done)
        .arg(GROUP)
        .arg(consumer)
        .arg(entries)
        .invoke_async(connection)
        .await
}

script!(
    RETRY_LATER,
    with_owns,
    r"
        if not owns(ARGV[3]) then return 0 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
        return 1
        "
);

/// Replaces `consumer`'s `entry` by `payload` in the delayed set, due at `due_ms`.
/// Returns whether `consumer` held the entry.
pub async fn retry_later<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    entry: &str,
    due_ms: u64,
    payload: &str,
) -> RedisResult<bool> {
    RETRY_LATER
        .key(&keys.stream)
        .key(&keys.delayed)
        .arg(GROUP)
        .arg(consumer)
        .arg(entry)
        .arg(due_ms)
        .arg(payload)
        .invoke_async(connection)
        .await
}

script!(
    BURY,
    with_owns,
    r"
        if not owns(ARGV[3]) then return 0 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
        redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
        local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
        if excess > 0 then
            local oldest = redis.call('ZRANGE', KEYS[3], 0, excess - 1)
            redis.call('HDEL', KEYS[2], unpack(oldest))
            redis.call('ZREM', KEYS[3], unpack(oldest))
        end
        return 1
        "
);

/// A dead record to keep: job `id`'s `record`, buried at `at_ms`, in a dead set that
/// keeps its newest `keep` records.
pub struct Burial<'a> {
    pub id: &'a str,
    pub record: &'a str,
    pub at_ms: u64,
    pub keep: u64,
}

/// Replaces `consumer`'s `entry` by `burial`'s record, then drops the oldest records
/// beyond what the dead set keeps. Returns whether `consumer` held the entry.
pub async fn bury<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    entry: &str,
    burial: &Burial<'_>,
) -> RedisResult<bool> {
    BURY.key(&keys.stream)
        .key(&keys.dead)
        .key(&keys.dead_index)
        .arg(GROUP)
        .arg(consumer)
        .arg(entry)
        .arg(burial.id)
        .arg(burial.record)
        .arg(burial.at_ms)
        .arg(burial.keep)
        .invoke_async(connection)
        .await
}

script!(
    HAND_BACK,
    with_owns,
    r"
        if not owns(ARGV[3]) then return 0 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        redis.call('XADD', KEYS[1], '*', 'job', ARGV[4])
        return 1
        "
);

/// Gives `consumer`'s `entry`, which never started, back as a new entry holding
/// `payload`, ready for any worker. Returns whether `consumer` held the entry.
pub async fn hand_back<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    entry: &str,
    payload: &str,
) -> RedisResult<bool> {
    HAND_BACK
        .key(&keys.stream)
        .arg(GROUP)
        .arg(consumer)
        .arg(entry)
        .arg(payload)
        .invoke_async(connection)
        .await
}

script!(
    REVIVE,
    plain,
    r"
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('XADD', KEYS[3], '*', 'job', ARGV[2])
        return 1
        "
);

/// Moves dead job `id` back to the stream as `payload`. Returns whether a dead job had
/// this id.
pub async fn revive<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    id: &str,
    payload: &str,
) -> RedisResult<bool> {
    REVIVE
        .key(&keys.dead)
        .key(&keys.dead_index)
        .key(&keys.stream)
        .arg(id)
        .arg(payload)
        .invoke_async(connection)
        .await
}

script!(
    PURGE_DEAD,
    plain,
    r"
        local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
        if #old > 0 then
            redis.call('HDEL', KEYS[1], unpack(old))
            redis.call('ZREM', KEYS[2], unpack(old))
        end
        return #old
        "
);

/// Deletes up to `chunk` dead records buried before `cutoff_ms`. Returns how many.
pub async fn purge_dead<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    cutoff_ms: u64,
    chunk: usize,
) -> RedisResult<usize> {
    PURGE_DEAD
        .key(&keys.dead)
        .key(&keys.dead_index)
        .arg(cutoff_ms)
        .arg(chunk)
        .invoke_async(connection)
        .await
}

script!(
    FORGET_DEPARTED,
    plain,
    r"
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
        local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
        if consumers.err then return 0 end
        local forgotten = 0
        for _, fields in ipairs(consumers) do
            local info = {}
            for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
            if info['pending'] == 0 and info['idle'] > tonumber(ARGV[2]) then
                redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
                forgotten = forgotten + 1
            end
        end
        return forgotten
        "
);

/// Forgets consumers idle for over `idle_ms` that hold nothing (a consumer deleted
/// with pending entries would strand them), and heartbeats older than `cutoff_ms`.
/// Returns how many consumers went.
pub async fn forget_departed<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    idle_ms: u64,
    cutoff_ms: u64,
) -> RedisResult<u64> {
    FORGET_DEPARTED
        .key(&keys.stream)
        .key(&keys.workers)
        .arg(GROUP)
        .arg(idle_ms)
        .arg(cutoff_ms)
        .invoke_async(connection)
        .await
}

script!(
    STATS,
    plain,
    r"
        local pending = 0
        local summary = redis.pcall('XPENDING', KEYS[1], ARGV[1])
        if not summary.err then pending = summary[1] end
        return {
            redis.call('XLEN', KEYS[1]) - pending,
            pending,
            redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[2]),
            redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf'),
            tonumber(redis.call('GET', KEYS[3]) or '0'),
            redis.call('ZCARD', KEYS[4]),
            redis.call('ZCOUNT', KEYS[5], ARGV[3], '+inf'),
        }
        "
);

/// Counts per state at `now_ms`, workers seen since `live_since_ms` counting as live:
/// `[ready, pending, due, later, done, dead, workers]`.
pub async fn stats<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    now_ms: u64,
    live_since_ms: u64,
) -> RedisResult<[u64; 7]> {
    STATS
        .key(&keys.stream)
        .key(&keys.delayed)
        .key(&keys.done)
        .key(&keys.dead_index)
        .key(&keys.workers)
        .arg(GROUP)
        .arg(now_ms)
        .arg(live_since_ms)
        .invoke_async(connection)
        .await
}
