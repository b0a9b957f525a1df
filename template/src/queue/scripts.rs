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
    ENQUEUE,
    plain,
    r"
        local window = ARGV[1]
        local ids = {}
        for n = 1, #KEYS - 2 do
            local id, payload, due = ARGV[3 * n - 1], ARGV[3 * n], ARGV[3 * n + 1]
            local holder = redis.call('GET', KEYS[n + 2])
            if holder then
                ids[n] = holder
            else
                redis.call('SET', KEYS[n + 2], id, 'PX', window)
                if due == '' then
                    redis.call('XADD', KEYS[1], '*', 'job', payload)
                else
                    redis.call('ZADD', KEYS[2], due, payload)
                end
                ids[n] = id
            end
        end
        return ids
        "
);

/// A job to queue: the idempotency key that holds its id, the id, the envelope's JSON,
/// and when it is due (Unix ms; `None`: at once).
pub struct NewJob {
    pub holder: String,
    pub id: String,
    pub payload: String,
    pub due_ms: Option<u64>,
}

/// Queues each of `jobs` whose idempotency key holds no id yet (on the stream, or in
/// the delayed set when due later) and lets its key hold its id for `window_ms`, all in
/// one step. Returns, per job, the id its key holds: its own, or an earlier job's.
pub async fn enqueue<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    window_ms: u64,
    jobs: &[NewJob],
) -> RedisResult<Vec<String>> {
    let mut invocation = ENQUEUE.key(&keys.stream);
    invocation.key(&keys.delayed).arg(window_ms);
    for job in jobs {
        let due = job.due_ms.map_or_else(String::new, |due| due.to_string());
        invocation
            .key(&job.holder)
            .arg(&job.id)
            .arg(&job.payload)
            .arg(due);
    }
    invocation.invoke_async(connection).await
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
        local found = redis.pcall('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[5], '+',
            ARGV[4])
        if type(found) == 'table' and found.err then
            if string.find(found.err, 'NOGROUP', 1, true) then return {'', {}, 0} end
            return redis.error_reply(found.err)
        end
        local out, last = {}, nil
        for _, pending in ipairs(found) do
            local id, owner, deliveries = pending[1], pending[2], pending[4]
            last = id
            local claimed
            if owner == ARGV[2] then
                -- Its own entry, renewed late: no new delivery.
                claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id,
                    'RETRYCOUNT', deliveries)
            else
                claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
                deliveries = deliveries + 1
            end
            local entry = claimed[1]
            if type(entry) == 'table' and type(entry[2]) == 'table' then
                local fields, job = entry[2], ''
                for i = 1, #fields, 2 do
                    if fields[i] == 'job' then job = fields[i + 1] end
                end
                table.insert(out, {id, job, deliveries})
            else
                -- Deleted from the stream while pending: nothing is left to run.
                redis.call('XACK', KEYS[1], ARGV[1], id)
            end
        end
        local cursor = '-'
        if #found == tonumber(ARGV[4]) then cursor = '(' .. last end
        return {cursor, out, 1}
        "
);

/// What [`claim_stale`] took over, and where its next call goes on.
pub struct Stale {
    /// `(entry id, job, deliveries)` per entry, this delivery counted unless the entry
    /// was this consumer's own.
    pub entries: Vec<(String, String, u32)>,
    /// Where the next look starts: after the last entry looked at, or from the start
    /// once the end was reached.
    pub cursor: String,
}

/// Takes over, for `consumer`, up to `count` entries pending for `min_idle_ms` or more
/// (their worker died or stalled), looking from `cursor` (`-`: the start) on. An entry
/// of `consumer`'s own (its renewals came late) is taken back without counting a
/// delivery. `None` when the queue has no consumer group yet (or lost it with its
/// data); the script says so itself, so it does not rely on how a Redis version passes
/// a command's error out of Lua.
pub async fn claim_stale<C: ConnectionLike + Send>(
    connection: &mut C,
    keys: &QueueKeys,
    consumer: &str,
    min_idle_ms: u64,
    count: usize,
    cursor: &str,
) -> RedisResult<Option<Stale>> {
    let (cursor, entries, group): (String, Vec<(String, String, u32)>, u8) = CLAIM_STALE
        .key(&keys.stream)
        .arg(GROUP)
        .arg(consumer)
        .arg(min_idle_ms)
        .arg(count)
        .arg(cursor)
        .invoke_async(connection)
        .await?;
    Ok((group == 1).then_some(Stale { entries, cursor }))
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
