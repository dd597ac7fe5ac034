//! Telling a store that kept its records from one that lost them. Pure: what the store
//! answered and what this replica saw before in, a verdict out; no I/O, no clock.
//!
//! Redis forgets without an error: a restart without persistence, the last second of an
//! `appendfsync everysec` file cut by a host crash, a failover to a replica that lagged, an
//! eviction, a `FLUSHALL`. Each would let an assertion accepted before be accepted again
//! (SAML profiles §4.1.4.5 asks that a used assertion never be). Three signals say so:
//! - a marker per hash-tag bucket, a key without TTL checked in the same transaction as every
//!   record: missing (the bucket's records went with it), or replaced by an older one (the
//!   store went back in time);
//! - the identity of the server holding each bucket (`run_id`, replication ids), recorded in
//!   the store itself beside the marker, so that a replica started after the change sees it
//!   too: another server than the one recorded there is a restart or a failover, unless it
//!   proves it keeps every write (AOF `appendfsync always`);
//! - the servers' `evicted_keys`, which an evicting `maxmemory-policy` grows.
//!
//! A loss detected at T is declared by writing a new marker dated T into every bucket, so
//! every replica learns it from its next record; each replica then refuses assertions issued
//! before T: the quarantine. It needs no end: once T is more than the maximum age plus the
//! largest skew past, the core refuses every such assertion as too old anyway.

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
    /// Dated to the millisecond, as it is stored (the marker read back must equal the one kept),
    /// rounding up: an assertion issued in the same millisecond as the loss is refused.
    pub(super) fn new(id: String, since: DateTime<Utc>) -> Marker {
        let millis = since.timestamp_millis() + i64::from(since.timestamp_subsec_nanos() % 1_000_000 != 0);
        let since = DateTime::from_timestamp_millis(millis).unwrap_or(since);
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

/// A marker dated further ahead of this replica's clock is not believed: a replica whose clock
/// jumped would otherwise quarantine every login of the tier until it is fixed.
const MAX_MARKER_LEAD_SECONDS: i64 = 60;

/// What one record's round trip saw of its bucket.
pub(super) struct Sighting<'a> {
    pub(super) bucket: usize,
    pub(super) marker: &'a str,
    /// The record wrote the marker: the bucket had none.
    pub(super) created: bool,
    /// The server's `evicted_keys`, when the record was asked to read it.
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
    /// …and from this instant on the core refuses every one of them as too old anyway.
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
    /// How long after a loss an assertion issued before it could still pass the core: the
    /// maximum age plus the largest skew a tenant may allow.
    span: Duration,
    /// The declaration being written, and the markers it replaces: a record that read one of
    /// them before the write landed saw no new loss.
    declaring: Option<(Marker, Vec<Marker>)>,
}

impl Ledger {
    /// `span_seconds`: the maximum assertion age plus the largest tenant skew.
    pub(super) fn new(span_seconds: i64) -> Ledger {
        Ledger {
            known: Default::default(),
            evicted_keys: [None; BUCKETS],
            quarantine: None,
            last_loss: None,
            span: Duration::seconds(span_seconds),
            declaring: None,
        }
    }

    /// A server's `evicted_keys` as the probe read it for a bucket: the baseline the bucket's
    /// next record compares against.
    pub(super) fn evictions_baseline(&mut self, bucket: usize, evicted_keys: u64) {
        let slot = &mut self.evicted_keys[bucket % BUCKETS];
        *slot = Some(slot.map_or(evicted_keys, |before| before.max(evicted_keys)));
    }

    /// Takes in one record's view of its bucket. `fresh` is a marker this replica would declare
    /// now (dated now); the loss found, if any, and what to write back.
    pub(super) fn see(&mut self, sighting: &Sighting<'_>, fresh: Marker) -> (Option<LossReason>, Declare) {
        let bucket = sighting.bucket % BUCKETS;
        let evictions = match (self.evicted_keys[bucket], sighting.evicted_keys) {
            (Some(before), Some(now)) => now > before,
            _ => false,
        };
        if let Some(now) = sighting.evicted_keys {
            self.evictions_baseline(bucket, now);
        }
        if evictions {
            return self.lost(LossReason::Evictions, fresh);
        }
        let lead = Duration::seconds(MAX_MARKER_LEAD_SECONDS);
        let Some(marker) = Marker::parse(sighting.marker).filter(|m| m.since <= fresh.since + lead) else {
            return self.lost(LossReason::MarkerUnreadable, fresh);
        };
        if sighting.created {
            self.adopt(bucket, &marker);
            self.raise(marker.since, LossReason::MarkerMissing);
            return (Some(LossReason::MarkerMissing), Declare::WhereMissing(marker));
        }
        if self.declaring.as_ref().is_some_and(|(_, replaced)| replaced.contains(&marker)) {
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
        (reason, Declare::Nothing)
    }

    /// A loss found outside the records (a server's identity, its evictions).
    pub(super) fn lost(&mut self, reason: LossReason, fresh: Marker) -> (Option<LossReason>, Declare) {
        let mut replaced: Vec<Marker> = self.declaring.take().map(|(_, replaced)| replaced).unwrap_or_default();
        for known in &mut self.known {
            if let Some(old) = known.replace(fresh.clone()) {
                if !replaced.contains(&old) {
                    replaced.push(old);
                }
            }
        }
        self.declaring = Some((fresh.clone(), replaced));
        self.raise(fresh.since, reason);
        (Some(reason), Declare::Everywhere(fresh))
    }

    /// `marker`'s declaration is written (or given up): an old marker seen from now on is a
    /// rewind. A later declaration still being written is left alone.
    pub(super) fn declared(&mut self, marker: &Marker) {
        if self.declaring.as_ref().is_some_and(|(declaring, _)| declaring == marker) {
            self.declaring = None;
        }
    }

    fn adopt(&mut self, bucket: usize, marker: &Marker) {
        self.known[bucket] = Some(marker.clone());
    }

    /// A later loss covers every earlier one: it refuses more, for longer.
    fn raise(&mut self, since: DateTime<Utc>, reason: LossReason) {
        if self.quarantine.is_some_and(|q| q.since >= since) {
            return;
        }
        let until = since.checked_add_signed(self.span).unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.quarantine = Some(Quarantine { since, until });
        self.last_loss = Some(Loss { at: since, reason });
    }

    /// The quarantine that refuses an assertion issued at `issued_at`. Never lifted: by the
    /// time it would end, the core refuses every assertion it covers as too old.
    pub(super) fn refuses(&self, issued_at: DateTime<Utc>) -> Option<Quarantine> {
        self.quarantine.filter(|q| issued_at < q.since)
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

/// One server, as `INFO` describes it: what the probe needs to see evictions coming.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Server {
    pub(super) run_id: String,
    pub(super) master: bool,
    pub(super) eviction_policy: String,
    pub(super) evicted_keys: u64,
    /// `redis_version`'s major number (0 when not said).
    pub(super) major_version: u32,
}

impl Server {
    pub(super) fn parse(info: &str) -> Server {
        let mut server = Server::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim_end().split_once(':') else { continue };
            match key {
                "run_id" => server.run_id = value.into(),
                "role" => server.master = value == "master",
                "maxmemory_policy" => server.eviction_policy = value.into(),
                "evicted_keys" => server.evicted_keys = value.parse().unwrap_or(0),
                "redis_version" => {
                    server.major_version = value.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
                }
                _ => {}
            }
        }
        server
    }

    /// Whether this server takes `SET … NX GET` (Redis ≥ 7.0; Valkey says 7.2.4).
    pub(super) fn set_get(&self) -> bool {
        self.major_version >= 7
    }

    /// Whether this server can evict a record (anything but `noeviction`; `volatile-*`
    /// policies evict exactly the keys with a TTL, which every record has).
    pub(super) fn may_evict(&self) -> bool {
        self.eviction_policy != "noeviction"
    }
}

/// Evictions since the servers were last probed (same server, grown `evicted_keys`).
pub(super) fn evicted_since(before: &[Server], now: &[Server]) -> bool {
    now.iter()
        .any(|server| before.iter().any(|old| old.run_id == server.run_id && server.evicted_keys > old.evicted_keys))
}

/// The server holding a bucket, as the identity script read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Identity {
    pub(super) run_id: String,
    pub(super) replid: String,
    pub(super) replid2: String,
    pub(super) aof_enabled: bool,
}

impl Identity {
    /// How it is recorded in the store: `<run_id> <replid>`.
    pub(super) fn record(&self) -> String {
        format!("{} {}", self.run_id, self.replid)
    }
}

/// Whether the bucket's server is another than the one recorded in the store (`recorded`, as
/// [`Identity::record`] wrote it, by any replica): a promoted replica (its `master_replid2` is
/// the recorded server's id) has lost whatever it had not received; a restarted server lost
/// the writes its persistence had not kept, unless `durable` (AOF with `appendfsync always`).
/// Nothing recorded yet is a baseline; so is a server that does not say who it is (a proxy),
/// whose restarts only the markers can reveal.
pub(super) fn judge(recorded: &str, now: &Identity, durable: bool) -> Option<LossReason> {
    let (run_id, replid) = recorded.split_once(' ').unwrap_or((recorded, ""));
    if run_id.is_empty() || now.run_id.is_empty() || run_id == now.run_id {
        return None;
    }
    if !replid.is_empty() && replid == now.replid2 {
        return Some(LossReason::Failover);
    }
    if now.aof_enabled && durable {
        return None;
    }
    Some(LossReason::Restart)
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
        assert_eq!(ledger.refuses(at(-50_000)), None);
    }

    #[test]
    fn a_missing_marker_refuses_what_was_issued_before_it_until_the_maximum_age() {
        let mut ledger = Ledger::new(3_900);
        ledger.see(&sighting(&marker("a", -100_000).encode(), false), marker("me", 0));
        let created = marker("me", 10);
        let (loss, declare) = ledger.see(&sighting(&created.encode(), true), created.clone());
        assert_eq!(loss, Some(LossReason::MarkerMissing));
        assert_eq!(declare, Declare::WhereMissing(created));
        assert!(ledger.refuses(at(9)).is_some(), "issued before the loss");
        assert!(ledger.refuses(at(10)).is_none(), "issued at the loss");
        assert_eq!(ledger.quarantine(at(11)).map(|q| q.until), Some(at(10 + 3_900)));
    }

    #[test]
    fn a_newer_marker_is_adopted_and_an_older_one_is_a_loss_declared_everywhere() {
        let mut ledger = Ledger::new(3_900);
        ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 0));
        let (loss, declare) = ledger.see(&sighting(&marker("b", 50).encode(), false), marker("me", 60));
        assert_eq!((loss, declare), (Some(LossReason::MarkerReplaced), Declare::Nothing));
        assert!(ledger.refuses(at(49)).is_some());
        let (loss, declare) = ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 70));
        assert_eq!((loss, declare), (Some(LossReason::MarkerRewound), Declare::Everywhere(marker("me", 70))));
        // Records in flight while the declaration is written still read the marker it replaces.
        assert_eq!(ledger.see(&sighting(&marker("b", 50).encode(), false), marker("me", 71)), (None, Declare::Nothing));
        ledger.declared(&marker("me", 70));
        assert!(ledger.refuses(at(69)).is_some(), "quarantine moved to the rewind");
        assert_eq!(ledger.last_loss().map(|l| l.reason), Some(LossReason::MarkerRewound));
    }

    #[test]
    fn a_first_sighting_of_a_recent_marker_holds_its_quarantine() {
        let mut ledger = Ledger::new(3_900);
        let (loss, _) = ledger.see(&sighting(&marker("a", 100).encode(), false), marker("me", 200));
        assert_eq!(loss, None);
        assert!(ledger.refuses(at(99)).is_some(), "a replica started after the loss refuses too");
    }

    #[test]
    fn evictions_seen_by_a_record_are_a_loss() {
        let mut ledger = Ledger::new(3_900);
        let old = marker("a", -100_000).encode();
        let mut s = sighting(&old, false);
        ledger.evictions_baseline(3, 5);
        s.evicted_keys = Some(5);
        assert_eq!(ledger.see(&s, marker("me", 0)).0, None, "the probe's count is the baseline");
        assert_eq!(ledger.see(&s, marker("me", 1)).0, None);
        s.evicted_keys = Some(6);
        assert_eq!(
            ledger.see(&s, marker("me", 2)),
            (Some(LossReason::Evictions), Declare::Everywhere(marker("me", 2)))
        );
    }

    #[test]
    fn unreadable_and_far_future_markers_are_a_loss() {
        let mut ledger = Ledger::new(3_900);
        assert_eq!(ledger.see(&sighting("1", false), marker("me", 0)).0, Some(LossReason::MarkerUnreadable));
        let ahead = marker("jumped", 7_200).encode();
        assert_eq!(ledger.see(&sighting(&ahead, false), marker("me", 1)).0, Some(LossReason::MarkerUnreadable));
        assert!(ledger.refuses(at(0)).is_some() && ledger.refuses(at(2)).is_none(), "dated by this replica");
        let near_max = format!("x:{}", DateTime::<Utc>::MAX_UTC.timestamp_millis());
        assert_eq!(ledger.see(&sighting(&near_max, false), marker("me", 2)).0, Some(LossReason::MarkerUnreadable));
    }

    #[test]
    fn a_declaration_in_flight_is_not_cleared_by_another() {
        let mut ledger = Ledger::new(3_900);
        ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 0));
        ledger.lost(LossReason::Restart, marker("me", 10));
        ledger.declared(&marker("other", 5));
        let (loss, _) = ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 11));
        assert_eq!(loss, None, "still being written: the old marker is expected");
        ledger.declared(&marker("me", 10));
        let (loss, _) = ledger.see(&sighting(&marker("a", 0).encode(), false), marker("me", 12));
        assert_eq!(loss, Some(LossReason::MarkerRewound), "written: the old marker is a rewind");
    }

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nrun_id:aaa\r\n# Replication\r\nrole:master\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n# Stats\r\nevicted_keys:0\r\n";

    #[test]
    fn servers_are_read_from_info_and_evictions_seen() {
        let before = Server::parse(INFO);
        assert_eq!((before.run_id.as_str(), before.master), ("aaa", true));
        assert!(!before.may_evict());
        assert!(before.set_get());
        assert!(!Server::parse("redis_version:6.2.14\r\n").set_get(), "SET NX GET needs 7.0");
        assert!(!Server::parse("").set_get(), "a server that does not say");
        let same = [before.clone()];
        assert!(!evicted_since(&same, &same));
        assert!(evicted_since(&same, &[Server { evicted_keys: 1, ..before.clone() }]));
        assert!(!evicted_since(&same, &[Server { run_id: "bbb".into(), evicted_keys: 1, ..before }]), "another server");
    }

    #[test]
    fn identities_recorded_in_the_store_tell_restarts_and_failovers() {
        let server = Identity { run_id: "aaa".into(), replid: "r1".into(), replid2: "0000".into(), aof_enabled: false };
        assert_eq!(judge("", &server, false), None, "nothing recorded yet");
        assert_eq!(judge(&server.record(), &server, false), None);
        let restarted = Identity { run_id: "bbb".into(), replid: "r2".into(), ..server.clone() };
        assert_eq!(judge(&server.record(), &restarted, false), Some(LossReason::Restart));
        let durable = Identity { aof_enabled: true, ..restarted.clone() };
        assert_eq!(judge(&server.record(), &durable, true), None, "AOF always kept every write");
        assert_eq!(judge(&server.record(), &durable, false), Some(LossReason::Restart), "fsync unknown");
        let promoted = Identity { run_id: "ccc".into(), replid: "r3".into(), replid2: "r1".into(), aof_enabled: true };
        assert_eq!(judge(&server.record(), &promoted, true), Some(LossReason::Failover));
        let proxy = Identity::default();
        assert_eq!(judge(&server.record(), &proxy, false), None, "a server that does not say who it is");
    }
}
