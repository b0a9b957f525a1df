//! Two Lua scripts over apalis-redis's key layout, for what its 1.0 release lacks.

use std::sync::LazyLock;

use redis::Script;

/// Moves up to `ARGV[2]` due jobs from the scheduled set to the active list.
///
/// apalis-redis 1.0 stores every new job in the scheduled set and promotes *all* due
/// jobs at the next fetch with one `unpack`, which Lua caps at about 8000 values: a
/// larger backlog fails every fetch. Promoting in chunks first keeps fetches small.
pub static PROMOTE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, ARGV[2])
        if #due > 0 then
            redis.call('RPUSH', KEYS[2], unpack(due))
            redis.call('ZREM', KEYS[1], unpack(due))
        end
        return #due
        ",
    )
});

/// Drops ids from the done (`KEYS[1]`) and dead (`KEYS[2]`) sets whose record in the
/// data hash (`KEYS[3]`) is gone: the library's vacuum deletes records, not ids.
pub static FORGET_PURGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local forgotten = 0
        for i = 1, 2 do
            for _, id in ipairs(redis.call('SMEMBERS', KEYS[i])) do
                if redis.call('HEXISTS', KEYS[3], id) == 0 then
                    redis.call('SREM', KEYS[i], id)
                    forgotten = forgotten + 1
                end
            end
        end
        return forgotten
        ",
    )
});
