//! One record's round trip: a `MULTI`/`EXEC` transaction of plain commands that reads (or
//! writes, where missing) its bucket's epoch marker, writes `SET key 1 NX PX ttl`, and asks
//! whether the server was judged; pure, so its shape and the reading of its answer are tested
//! without a server.
//!
//! A transaction and not a script: Lua costs Redis a script lookup, a VM call and a
//! `redis.call` per command (24–25 µs of its CPU per record against 9 µs for a plain `SET NX
//! PX`, BENCHMARKS.md), on cores the service may share. `EXEC` runs the queued commands with
//! nothing in between, so the marker read and the record are still one atomic step on the
//! server that holds both (one hash tag, so one Cluster slot); a record written after a flush
//! always finds the marker gone in the same step, which is what makes a `FLUSHALL` racing a
//! record safe.

use redis::Value;

/// What the transaction saw of its bucket.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Seen {
    /// The record was written: this is the assertion's first use on this server.
    pub(super) stored: bool,
    /// The bucket's marker, as it stands after the transaction.
    pub(super) marker: String,
    /// The transaction wrote the marker: the bucket had none.
    pub(super) created: bool,
    /// The server holds the script a probe loads only after judging it ([`super::JUDGED`]).
    pub(super) judged: bool,
    /// The server's `evicted_keys`, when asked.
    pub(super) evicted_keys: Option<u64>,
}

/// The record's transaction. `set_get`: the server takes `SET … NX GET` (Redis ≥ 7.0), which
/// reads and writes the marker in one command; older servers get `SET … NX` then `GET`, the
/// same step inside the transaction, one command more. `evictions`: read `evicted_keys` too
/// (only where a server's policy can evict: `INFO` is the costliest command here).
pub(super) fn transaction(
    marker_key: &str,
    candidate: &str,
    record_key: &str,
    ttl_ms: i64,
    judged_sha: &str,
    set_get: bool,
    evictions: bool,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    if set_get {
        pipe.cmd("SET").arg(marker_key).arg(candidate).arg("NX").arg("GET");
    } else {
        pipe.cmd("SET").arg(marker_key).arg(candidate).arg("NX");
        pipe.cmd("GET").arg(marker_key);
    }
    pipe.cmd("SET").arg(record_key).arg("1").arg("NX").arg("PX").arg(ttl_ms);
    pipe.cmd("SCRIPT").arg("EXISTS").arg(judged_sha);
    if evictions {
        pipe.cmd("INFO").arg("stats");
    }
    pipe
}

/// Reads `EXEC`'s answer to [`transaction`] built with the same `set_get` and `evictions`.
/// Anything else (a proxy that answered otherwise) is a type error: the record fails closed.
pub(super) fn read(replies: &[Value], candidate: &str, set_get: bool, evictions: bool) -> redis::RedisResult<Seen> {
    let expected = if set_get { 3 } else { 4 } + usize::from(evictions);
    if replies.len() != expected {
        return Err(unexpected("the record's transaction answered a different number of replies"));
    }
    let (created, marker, rest) = if set_get {
        match &replies[0] {
            Value::Nil => (true, candidate.to_string(), &replies[1..]),
            value => (false, text(value)?, &replies[1..]),
        }
    } else {
        (written(&replies[0])?, text(&replies[1])?, &replies[2..])
    };
    let stored = written(&rest[0])?;
    let judged = match &rest[1] {
        Value::Array(exists) => matches!(exists.as_slice(), [Value::Int(1)]),
        _ => return Err(unexpected("SCRIPT EXISTS answered something else than an array")),
    };
    let evicted_keys = if evictions { Some(evicted_keys(&text(&rest[2])?)?) } else { None };
    Ok(Seen { stored, marker, created, judged, evicted_keys })
}

/// `SET … NX`: `OK` when it wrote, nil when the key was there.
fn written(value: &Value) -> redis::RedisResult<bool> {
    match value {
        Value::Okay => Ok(true),
        Value::SimpleString(s) if s == "OK" => Ok(true),
        Value::Nil => Ok(false),
        _ => Err(unexpected("SET NX answered something else than OK or nil")),
    }
}

fn text(value: &Value) -> redis::RedisResult<String> {
    match value {
        Value::BulkString(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Ok(s.clone()),
        _ => Err(unexpected("expected a string")),
    }
}

fn evicted_keys(info: &str) -> redis::RedisResult<u64> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix("evicted_keys:"))
        .and_then(|count| count.parse().ok())
        .ok_or_else(|| unexpected("INFO stats has no evicted_keys"))
}

fn unexpected(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::TypeError, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn judged(yes: bool) -> Value {
        Value::Array(vec![Value::Int(i64::from(yes))])
    }

    #[test]
    fn a_missing_marker_is_written_and_seen_as_created_in_either_form() {
        let with_get = [Value::Nil, Value::Okay, judged(true)];
        let without = [Value::Okay, bulk("me:5"), Value::Okay, judged(true)];
        for (replies, set_get) in [(&with_get[..], true), (&without[..], false)] {
            let seen = read(replies, "me:5", set_get, false).unwrap();
            assert_eq!(
                seen,
                Seen { stored: true, marker: "me:5".into(), created: true, judged: true, evicted_keys: None }
            );
        }
    }

    #[test]
    fn a_replay_on_an_unjudged_server_reads_the_marker_it_found() {
        let with_get = [bulk("old:1"), Value::Nil, judged(false)];
        let without = [Value::Nil, bulk("old:1"), Value::Nil, judged(false)];
        for (replies, set_get) in [(&with_get[..], true), (&without[..], false)] {
            let seen = read(replies, "me:5", set_get, false).unwrap();
            assert_eq!(
                seen,
                Seen { stored: false, marker: "old:1".into(), created: false, judged: false, evicted_keys: None }
            );
        }
    }

    #[test]
    fn evictions_are_read_from_info_stats() {
        let info = bulk("# Stats\r\nexpired_keys:3\r\nevicted_keys:42\r\nevicted_clients:0\r\n");
        let seen = read(&[bulk("old:1"), Value::Okay, judged(true), info], "me:5", true, true).unwrap();
        assert_eq!(seen.evicted_keys, Some(42));
    }

    #[test]
    fn any_other_answer_fails_closed() {
        for replies in [
            vec![Value::Nil, Value::Okay],
            vec![Value::Nil, Value::Int(1), judged(true)],
            vec![Value::Nil, Value::Okay, Value::Int(1)],
            vec![Value::Int(0), Value::Okay, judged(true)],
        ] {
            assert!(read(&replies, "me:5", true, false).is_err(), "{replies:?}");
        }
        assert!(read(&[bulk("old:1"), Value::Okay, judged(true), bulk("# Stats\r\n")], "me:5", true, true).is_err());
    }

    #[test]
    fn the_transaction_asks_for_what_it_reads() {
        let pipe = transaction("p{3}:epoch", "me:5", "p{3}:ab", 60_000, "sha", true, false);
        let commands: Vec<Vec<u8>> = pipe.cmd_iter().map(|c| c.get_packed_command()).collect();
        assert_eq!(commands.len(), 3);
        let first = String::from_utf8_lossy(&commands[0]);
        assert!(first.contains("NX") && first.contains("GET"), "{first}");
        let pipe = transaction("p{3}:epoch", "me:5", "p{3}:ab", 60_000, "sha", false, true);
        assert_eq!(pipe.cmd_iter().count(), 5);
    }
}
