//! Telling a store that kept its records from one that lost them. Pure: what the store
//! answered and what this replica saw before in, a verdict out; no I/O, no clock.
//!
//! Redis forgets without an error: a restart without persistence, the last second of an
//! `appendfsync everysec` file cut by a host crash, a failover to a replica that lagged, an
//! eviction, a `FLUSHALL`. Each would let an assertion accepted before be accepted again
//! (SAML profiles §4.1.4.5 asks that a used assertion never be). Three signals say so:
//! - a marker per hash-tag bucket, a key without TTL checked in the same script as every
//!   record: missing (the bucket's records went with it), or replaced by an older one (the
//!   store went back in time);
//! - the servers' identities (`run_id`, replication ids), read on every new connection and
//!   every second: a server that is not the one that took the records, unless it proves it
//!   keeps every write (AOF `appendfsync always`, same replication history);
//! - the servers' `evicted_keys`, which an evicting `maxmemory-policy` grows.
//!
//! A loss detected at T is declared by writing a new marker dated T into every bucket, so
//! every replica learns it from its next record; each replica then refuses assertions issued
//! before T until T + `max_assertion_age_seconds` (after that the core refuses them as too
//! old anyway): the quarantine.

use chrono::{DateTime, Duration, Utc};

/// Records are spread over this many hash-tag buckets (`{0}`…`{f}`), each with its marker, so a
/// Redis Cluster spreads them over up to this many masters and a loss on one is seen there.
pub(super) const BUCKETS: usize = 16;

/// A marker's value: who declared the epoch and when, as `<id>:<unix ms>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Marker {
    pub(super) id: String,
    pub(super) since: DateTime<Utc>,
}

impl Marker {
    /// Dated to the millisecond, as it is stored: the marker read back must equal the one kept.
    pub(super) fn new(id: String, since: DateTime<Utc>) -> Marker {
        let since = DateTime::from_timestamp_millis(since.timestamp_millis()).unwrap_or(since);
        Marker { id, since }
    }

    pub(super) fn encode(&self) -> String {
        format!("{}:{}", self.id, self.since.timestamp_millis())
    }

    pub(super) fn parse(text: &str) -> Option<Marker> {
        let (id, millis) = text.rsplit_once(':')?;
        let since = DateTime::from_timestamp_millis(millis.parse().ok()?)?;
        (!id.is_empty()).then(|| Marker { id: id.to_string(), since })
    }
}

/// Why records are taken as lost; the metric label and the status endpoint's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LossReason {
    /// A bucket's marker was gone: an empty restart, a flush, or a first start (which cannot
    /// be told apart from an empty restart).
    MarkerMissing,
    /// Another replica declared a loss.
    MarkerReplaced,
    /// A marker older than the one seen before came back: a failover or a restore.
    MarkerRewound,
    /// The marker's value is not one this service writes.
    MarkerUnreadable,
    /// A server restarted without proof that it kept every write.
    Restart,
    /// A replica was promoted: the writes it had not received are gone.
    Failover,
    /// `evicted_keys` grew: a record may have been evicted.
    Evictions,
}

impl LossReason {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            LossReason::MarkerMissing => "marker_missing",
            LossReason::MarkerReplaced => "marker_replaced",
            LossReason::MarkerRewound => "marker_rewound",
            LossReason::MarkerUnreadable => "marker_unreadable",
            LossReason::Restart => "restart",
            LossReason::Failover => "failover",
            LossReason::Evictions => "evictions",
        }
    }
}

/// What one record's round trip saw of its bucket.
pub(super) struct Sighting<'a> {
    pub(super) bucket: usize,
    pub(super) marker: &'a str,
    /// The script wrote the marker: the bucket had none.
    pub(super) created: bool,
    /// The server's `evicted_keys`, when the script was asked to read it.
    pub(super) evicted_keys: Option<u64>,
}

/// What the store must be told after a sighting.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Declare {
    Nothing,
    /// Write this marker where a bucket has none (`SET NX`): the loss was a missing marker,
    /// and the buckets that lost theirs too should carry the same date.
    WhereMissing(Marker),
    /// Write this marker into every bucket (`SET`): the markers survived but records did not.
    Everywhere(Marker),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Quarantine {
    /// Assertions issued before this are refused…
    pub(super) since: DateTime<Utc>,
    /// …until this instant.
    pub(super) until: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Loss {
    pub(super) at: DateTime<Utc>,
    pub(super) reason: LossReason,
}

/// This replica's memory of the store's epochs, and the quarantine in force.
pub(super) struct Ledger {
    known: [Option<Marker>; BUCKETS],
    evicted_keys: [Option<u64>; BUCKETS],
    quarantine: Option<Quarantine>,
    last_loss: Option<Loss>,
    max_age: Duration,
    /// The markers this replica's declaration is replacing, while it is being written: a
    /// record that read one of them before the write landed saw no new loss.
    replacing: Vec<Marker>,
}

impl Ledger {
    pub(super) fn new(max_age_seconds: i64) -> Ledger {
        Ledger {
            known: Default::default(),
            evicted_keys: [None; BUCKETS],
            quarantine: None,
            last_loss: None,
            max_age: Duration::seconds(max_age_seconds),
            replacing: Vec::new(),
        }
    }

    /// Takes in one record's view of its bucket. `fresh` is a marker this replica would declare
    /// now (dated now); the loss found, if any, and what to write back.
    pub(super) fn see(&mut self, sighting: &Sighting<'_>, fresh: Marker) -> (Option<LossReason>, Declare) {
        let bucket = sighting.bucket % BUCKETS;
        let evictions = match (self.evicted_keys[bucket], sighting.evicted_keys) {
            (Some(before), Some(now)) => now > before,
            _ => false,
        };
        if sighting.evicted_keys.is_some() {
            self.evicted_keys[bucket] = sighting.evicted_keys;
        }
        let Some(marker) = Marker::parse(sighting.marker) else {
            return self.lost(LossReason::MarkerUnreadable, fresh);
        };
        if sighting.created {
            self.adopt(bucket, &marker);
            self.raise(marker.since, LossReason::MarkerMissing);
            return (Some(LossReason::MarkerMissing), Declare::WhereMissing(marker));
        }
        if self.replacing.contains(&marker) {
            return (None, Declare::Nothing);
        }
        let reason = match &self.known[bucket] {
            Some(known) if *known == marker => None,
            // A newer marker: another replica declared a loss, which this one now holds too.
            Some(known) if marker.since > known.since => Some(LossReason::MarkerReplaced),
            // An older one: the server answering now missed the declaration (or everything
            // written since): the store went back in time.
            Some(_) => return self.lost(LossReason::MarkerRewound, fresh),
            // First sight by this process: a recent marker means a recent loss (or first start).
            None => None,
        };
        self.adopt(bucket, &marker);
        self.raise(marker.since, reason.unwrap_or(LossReason::MarkerMissing));
        if reason.is_some() {
            return (reason, Declare::Nothing);
        }
        if evictions {
            return self.lost(LossReason::Evictions, fresh);
        }
        (None, Declare::Nothing)
    }

    /// A loss found outside the records' script (a server's identity, its evictions).
    pub(super) fn lost(&mut self, reason: LossReason, fresh: Marker) -> (Option<LossReason>, Declare) {
        for known in &mut self.known {
            if let Some(old) = known.replace(fresh.clone()) {
                if !self.replacing.contains(&old) {
                    self.replacing.push(old);
                }
            }
        }
        self.raise(fresh.since, reason);
        (Some(reason), Declare::Everywhere(fresh))
    }

    /// The declaration is written (or given up): an old marker seen from now on is a rewind.
    pub(super) fn declared(&mut self) {
        self.replacing.clear();
    }

    fn adopt(&mut self, bucket: usize, marker: &Marker) {
        self.known[bucket] = Some(marker.clone());
    }

    /// A later loss covers every earlier one: it refuses more, for longer.
    fn raise(&mut self, since: DateTime<Utc>, reason: LossReason) {
        if self.quarantine.is_some_and(|q| q.since >= since) {
            return;
        }
        self.quarantine = Some(Quarantine { since, until: since + self.max_age });
        self.last_loss = Some(Loss { at: since, reason });
    }

    /// The quarantine that refuses an assertion issued at `issued_at`, judged at `now`.
    pub(super) fn refuses(&self, issued_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Quarantine> {
        self.quarantine.filter(|q| issued_at < q.since && now < q.until)
    }

    pub(super) fn quarantine(&self, now: DateTime<Utc>) -> Option<Quarantine> {
        self.quarantine.filter(|q| now < q.until)
    }

    pub(super) fn last_loss(&self) -> Option<Loss> {
        self.last_loss
    }

    /// The oldest epoch this replica knows of, for the status endpoint.
    pub(super) fn epoch_since(&self) -> Option<DateTime<Utc>> {
        self.known.iter().flatten().map(|m| m.since).min()
    }
}

/// One server, as `INFO` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Server {
    pub(super) run_id: String,
    pub(super) replid: String,
    pub(super) replid2: String,
    pub(super) master: bool,
    pub(super) aof_enabled: bool,
    pub(super) eviction_policy: String,
    pub(super) evicted_keys: u64,
}

impl Server {
    pub(super) fn parse(info: &str) -> Server {
        let mut server = Server::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim_end().split_once(':') else { continue };
            match key {
                "run_id" => server.run_id = value.into(),
                "master_replid" => server.replid = value.into(),
                "master_replid2" => server.replid2 = value.into(),
                "role" => server.master = value == "master",
                "aof_enabled" => server.aof_enabled = value == "1",
                "maxmemory_policy" => server.eviction_policy = value.into(),
                "evicted_keys" => server.evicted_keys = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        server
    }

    /// Whether this server can evict a record (anything but `noeviction`; `volatile-*`
    /// policies evict exactly the keys with a TTL, which every record has).
    pub(super) fn may_evict(&self) -> bool {
        self.eviction_policy != "noeviction"
    }
}

/// Compares the servers seen now with those seen before. `durable` says whether a server
/// writes every command to its AOF before answering (`appendfsync always`), as far as it
/// could be read; a server that cannot prove it is taken to have lost the last writes.
pub(super) fn compare(before: &[Server], now: &[Server], durable: impl Fn(&Server) -> bool) -> Option<LossReason> {
    if before.is_empty() {
        return None;
    }
    for server in now {
        match before.iter().find(|old| old.run_id == server.run_id) {
            Some(old) if server.evicted_keys > old.evicted_keys => return Some(LossReason::Evictions),
            Some(_) => {}
            // A promoted replica carries its old master's history as replid2: whatever it had
            // not received when promoted is gone.
            None if before.iter().any(|old| !old.replid.is_empty() && old.replid == server.replid2) => {
                return Some(LossReason::Failover)
            }
            None if !(server.aof_enabled && durable(server)) => return Some(LossReason::Restart),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
    }

    fn marker(id: &str, seconds: i64) -> Marker {
        Marker { id: id.into(), since: at(seconds) }
    }

    fn sighting(value: &str, created: bool) -> Sighting<'_> {
        Sighting { bucket: 3, marker: value, created, evicted_keys: None }
    }

    #[test]
    fn markers_round_trip_and_foreign_values_do_not_parse() {
        let m = marker("ab12", 5);
        assert_eq!(Marker::parse(&m.encode()), Some(m));
        for bad in ["", "1", ":123", "x:", "x:notanumber", "x:99999999999999999999"] {
            assert_eq!(Marker::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_marker_read_back_equals_the_one_declared_whatever_the_clock_precision() {
        let declared = Marker::new("me".into(), at(0) + Duration::nanoseconds(1_234_567));
        assert_eq!(Marker::parse(&declared.encode()), Some(declared.clone()));
        let mut ledger = Ledger::new(3_900);
        ledger.lost(LossReason::Restart, declared.clone());
        let encoded = declared.encode();
        assert_eq!(ledger.see(&sighting(&encoded, false), marker("me", 1)), (None, Declare::Nothing));
    }

    #[test]
    fn an_unchanged_old_marker_quarantines_nothing() {
        let mut ledger = Ledger::new(3_900);
        let old = marker("a", -100_000).encode();
        assert_eq!(ledger.see(&sighting(&old, false), marker("me", 0)), (None, Declare::Nothing));
        assert_eq!(ledger.see(&sighting(&old, false), marker("me", 1)), (None, Declare::Nothing));
        assert_eq!(ledger.refuses(at(-50_000), at(0)), None);
    }

    #[test]
    fn a_missing_marker_refuses_what_was_issued_before_it_until_the_maximum_age() {
        let mut ledger = Ledger::new(3_900);
        ledger.see(&sighting(&marker("a", -100_000).encode(), false), marker("me", 0));
        let created = marker("me", 10);
        let (loss, declare) = ledger.see(&sighting(&created.encode(), true), created.clone());
        assert_eq!(loss, Some(LossReason::MarkerMissing));
        assert_eq!(declare, Declare::WhereMissing(created));
        assert!(ledger.refuses(at(9), at(11)).is_some(), "issued before the loss");
        assert!(ledger.refuses(at(10), at(11)).is_none(), "issued at the loss");
        assert!(ledger.refuses(at(9), at(10 + 3_900)).is_none(), "the quarantine ended");
    }

    #[test]
    fn a_newer_marker_is_adopted_and_an_older_one_is_a_loss_declared_everywhere() {
        let mut ledger = Ledger::new(3_900);
        ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 0));
        let (loss, declare) = ledger.see(&sighting(&marker("b", 50).encode(), false), marker("me", 60));
        assert_eq!((loss, declare), (Some(LossReason::MarkerReplaced), Declare::Nothing));
        assert!(ledger.refuses(at(49), at(61)).is_some());
        let (loss, declare) = ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 70));
        assert_eq!((loss, declare), (Some(LossReason::MarkerRewound), Declare::Everywhere(marker("me", 70))));
        // Records in flight while the declaration is written still read the marker it replaces.
        assert_eq!(ledger.see(&sighting(&marker("b", 50).encode(), false), marker("me", 71)), (None, Declare::Nothing));
        ledger.declared();
        assert!(ledger.refuses(at(69), at(71)).is_some(), "quarantine moved to the rewind");
        assert_eq!(ledger.last_loss().map(|l| l.reason), Some(LossReason::MarkerRewound));
    }

    #[test]
    fn a_first_sighting_of_a_recent_marker_holds_its_quarantine() {
        let mut ledger = Ledger::new(3_900);
        let (loss, _) = ledger.see(&sighting(&marker("a", 100).encode(), false), marker("me", 200));
        assert_eq!(loss, None);
        assert!(ledger.refuses(at(99), at(200)).is_some(), "a replica started after the loss refuses too");
    }

    #[test]
    fn evictions_seen_by_the_script_are_a_loss() {
        let mut ledger = Ledger::new(3_900);
        let old = marker("a", -100_000).encode();
        let mut s = sighting(&old, false);
        s.evicted_keys = Some(5);
        assert_eq!(ledger.see(&s, marker("me", 0)).0, None, "the first count is a baseline");
        assert_eq!(ledger.see(&s, marker("me", 1)).0, None);
        s.evicted_keys = Some(6);
        assert_eq!(
            ledger.see(&s, marker("me", 2)),
            (Some(LossReason::Evictions), Declare::Everywhere(marker("me", 2)))
        );
    }

    #[test]
    fn unreadable_markers_are_a_loss() {
        let mut ledger = Ledger::new(3_900);
        assert_eq!(ledger.see(&sighting("1", false), marker("me", 0)).0, Some(LossReason::MarkerUnreadable));
    }

    const INFO: &str = "# Server\r\nrun_id:aaa\r\n# Replication\r\nrole:master\r\nmaster_replid:r1\r\nmaster_replid2:0000\r\n# Persistence\r\naof_enabled:0\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n# Stats\r\nevicted_keys:0\r\n";

    #[test]
    fn servers_are_read_from_info_and_compared() {
        let before = Server::parse(INFO);
        assert_eq!((before.run_id.as_str(), before.replid.as_str(), before.master), ("aaa", "r1", true));
        assert!(!before.may_evict());
        let same = [before.clone()];
        assert_eq!(compare(&[], &same, |_| false), None, "the first sight is a baseline");
        assert_eq!(compare(&same, &same, |_| false), None);
        let evicted = Server { evicted_keys: 1, ..before.clone() };
        assert_eq!(compare(&same, &[evicted], |_| false), Some(LossReason::Evictions));
        let restarted = Server { run_id: "bbb".into(), replid: "r2".into(), ..before.clone() };
        assert_eq!(compare(&same, std::slice::from_ref(&restarted), |_| false), Some(LossReason::Restart));
        let durable = Server { aof_enabled: true, ..restarted };
        assert_eq!(compare(&same, std::slice::from_ref(&durable), |_| true), None, "AOF always kept every write");
        assert_eq!(compare(&same, &[durable], |_| false), Some(LossReason::Restart), "fsync unknown");
        let promoted =
            Server { run_id: "ccc".into(), replid: "r3".into(), replid2: "r1".into(), aof_enabled: true, ..before };
        assert_eq!(compare(&same, &[promoted], |_| true), Some(LossReason::Failover));
    }
}
