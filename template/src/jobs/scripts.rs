//! The queue's multi-key steps as Lua scripts: Redis runs each one atomically, so a job
//! is always in exactly one place (stream, delayed set or dead set) whatever fails.
//!
//! Stream entries carry one field, `job`: the envelope's JSON. A delivered entry stays
//! in the consumer group's pending list until the worker holding it settles it; only
//! that worker may (`owns` below), so a worker whose lease ran out cannot settle a job
//! another worker has taken over.

use std::sync::LazyLock;

use redis::Script;

/// `owns(id)`: whether the pending entry `id` of stream `KEYS[1]` in group `ARGV[1]` is
/// held by consumer `ARGV[2]`.
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

/// Queues `ARGV[2]` on stream `KEYS[2]` unless once-key `KEYS[1]` names a job already;
/// the key then remembers job id `ARGV[1]` for `ARGV[3]` ms. Returns the job id the key
/// holds.
pub static ENQUEUE_ONCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local holder = redis.call('GET', KEYS[1])
        if holder then return holder end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
        return ARGV[1]
        ",
    )
});

/// Moves up to `ARGV[2]` jobs due by `ARGV[1]` from delayed set `KEYS[1]` to stream
/// `KEYS[2]`. Returns how many moved: callers repeat while a full chunk moved, which
/// keeps each call short whatever the backlog.
pub static PROMOTE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
        for _, job in ipairs(due) do
            redis.call('XADD', KEYS[2], '*', 'job', job)
        end
        if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
        return #due
        ",
    )
});

/// Takes over up to `ARGV[4]` entries of stream `KEYS[1]` that have been pending for
/// `ARGV[3]` ms or more (their worker died or stalled), for consumer `ARGV[2]`. Returns
/// `{entry id, job, deliveries}` per entry; XAUTOCLAIM has counted this delivery.
pub static CLAIM_STALE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
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
        ",
    )
});

/// Renews the leases of consumer `ARGV[2]` on the entries `ARGV[4..]` of stream
/// `KEYS[1]` (their idle time restarts; JUSTID leaves the delivery count alone) and
/// records its heartbeat at `ARGV[3]` in `KEYS[2]`. Returns the entries it no longer
/// holds.
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    with_owns(
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
        ",
    )
});

/// Settles finished jobs: the entries `ARGV[3..]` of stream `KEYS[1]` held by consumer
/// `ARGV[2]` leave the stream and count in `KEYS[2]`. Returns how many it held.
pub static ACK: LazyLock<Script> = LazyLock::new(|| {
    with_owns(
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
        ",
    )
});

/// Replaces held entry `ARGV[3]` of stream `KEYS[1]` by job `ARGV[5]` in delayed set
/// `KEYS[2]`, due at `ARGV[4]`. Returns 1, or 0 when the entry is not held.
pub static RETRY_LATER: LazyLock<Script> = LazyLock::new(|| {
    with_owns(
        r"
        if not owns(ARGV[3]) then return 0 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
        return 1
        ",
    )
});

/// Replaces held entry `ARGV[3]` of stream `KEYS[1]` by dead record `ARGV[5]` of job
/// `ARGV[4]` (hash `KEYS[2]`, indexed by failure time `ARGV[6]` in `KEYS[3]`), then
/// drops the oldest records beyond `ARGV[7]`. Returns 1, or 0 when not held.
pub static BURY: LazyLock<Script> = LazyLock::new(|| {
    with_owns(
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
        ",
    )
});

/// Gives held entry `ARGV[3]` of stream `KEYS[1]`, which never started, back as a new
/// entry with job `ARGV[4]`, ready for any worker. Returns 1, or 0 when not held.
pub static HAND_BACK: LazyLock<Script> = LazyLock::new(|| {
    with_owns(
        r"
        if not owns(ARGV[3]) then return 0 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
        redis.call('XDEL', KEYS[1], ARGV[3])
        redis.call('XADD', KEYS[1], '*', 'job', ARGV[4])
        return 1
        ",
    )
});

/// Moves dead job `ARGV[1]` (hash `KEYS[1]`, index `KEYS[2]`) back to stream `KEYS[3]`
/// as job `ARGV[2]`. Returns 1, or 0 when no dead job has this id.
pub static REVIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('XADD', KEYS[3], '*', 'job', ARGV[2])
        return 1
        ",
    )
});

/// Deletes up to `ARGV[2]` dead records (hash `KEYS[1]`, index `KEYS[2]`) that failed
/// before `ARGV[1]`. Returns how many.
pub static PURGE_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
        if #old > 0 then
            redis.call('HDEL', KEYS[1], unpack(old))
            redis.call('ZREM', KEYS[2], unpack(old))
        end
        return #old
        ",
    )
});

/// Forgets consumers of group `ARGV[1]` on stream `KEYS[1]` idle for over `ARGV[2]` ms
/// that hold nothing (a consumer deleted with pending entries would strand them), and
/// heartbeats in `KEYS[2]` older than `ARGV[3]`. Returns how many consumers went.
pub static FORGET_DEPARTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
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
        ",
    )
});

/// Counts per state of stream `KEYS[1]` (group `ARGV[1]`), delayed set `KEYS[2]`,
/// done counter `KEYS[3]`, dead index `KEYS[4]` and heartbeats `KEYS[5]`, at time
/// `ARGV[2]` with live workers seen since `ARGV[3]`: `{ready, pending, due, later,
/// done, dead, workers}`.
pub static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
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
        ",
    )
});
