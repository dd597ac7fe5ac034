//! Issue 28: a store that forgets must never let an assertion accepted before through again.
//! Each test is one way a real `redis-server` loses records (an empty restart, a flush, a host
//! crash that cut the AOF, a failover to a replica that lagged, an eviction) or refuses us (a
//! password changed, replicas that do not acknowledge): every replay of an assertion accepted
//! before the fault is counted (it must be 0), and fresh logins must pass again within 5 s of
//! the store's return, without restarting the service.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::replay_store::{
    await_epoch, fresh, over_grpc, records, replay_section, start_shared, store_status, verdict, within,
};
use crate::support::redis::{RedisServer, Sentinel};
use crate::support::*;
use saml_validator::testing::idp::TestIdp;

/// Logs in with `count` fresh responses (seeds from `first`); each must be accepted.
fn accept(addr: SocketAddr, idp: &TestIdp, first: u64, count: u64) -> Vec<serde_json::Value> {
    (first..first + count)
        .map(|seed| {
            let body = fresh(idp, seed);
            assert_eq!(verdict(addr, &body), (200, "valid".into()), "seed {seed}");
            body
        })
        .collect()
}

/// Replays every body; the answers that accepted one (there must be none).
fn replays_accepted(addr: SocketAddr, bodies: &[serde_json::Value]) -> Vec<(u16, String)> {
    let answers: Vec<(u16, String)> = bodies.iter().map(|body| verdict(addr, body)).collect();
    for answer in &answers {
        let allowed = ["replayed", "replay_state_lost", "replay_store_unavailable"];
        assert!(allowed.contains(&answer.1.as_str()), "a replay answered {answer:?}");
    }
    answers.into_iter().filter(|a| a.0 == 200).collect()
}

/// How long until a fresh login is accepted (at most 5 s).
fn until_fresh_accepted(addr: SocketAddr, idp: &TestIdp, seeds: u64) -> Duration {
    let started = Instant::now();
    let mut seed = seeds;
    assert!(
        within(Duration::from_secs(5), || {
            seed += 1;
            verdict(addr, &fresh(idp, seed)).0 == 200
        }),
        "no fresh login accepted within 5 s: {}",
        store_status(addr)
    );
    started.elapsed()
}

fn redis_config(url: &str, more: &str) -> String {
    format!("store = \"redis\"\nurl = \"{url}\"\ntimeout_ms = 500\n{more}")
}

#[test]
fn an_empty_restart_refuses_every_earlier_assertion_on_every_replica_and_fresh_logins_heal() {
    let mut redis = RedisServer::start("empty-restart", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &redis_config(&redis.url(), ""));
    let (one, two) = (start_shared(&text), start_shared(&text));
    let earlier = accept(one, &idp, 1_000, 12);

    redis.stop();
    redis.restart();
    // Most replays go to the replica that did not accept them, as a load balancer sends them.
    assert_eq!(replays_accepted(two, &earlier), vec![]);
    assert_eq!(replays_accepted(one, &earlier[..4]), vec![]);
    let status = store_status(two);
    assert!(!status["quarantine_until"].is_null(), "{status}");
    assert!(
        ["restart", "marker_missing", "marker_replaced"].contains(&status["last_loss_reason"].as_str().unwrap_or("")),
        "{status}"
    );
    let healed = until_fresh_accepted(two, &idp, 1_100);
    eprintln!("empty restart: fresh logins accepted again after {healed:?}");
    let metrics = request(two, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_losses_total{reason="), "{metrics}");
    assert!(metrics.contains("replay_state_lost"), "{metrics}");
}

#[test]
fn a_flushall_is_seen_in_the_record_round_trip_on_http_and_grpc() {
    let redis = RedisServer::start("flushall", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &redis_config(&redis.url(), ""));
    let (http, grpc) = start_both(&text, false);
    await_epoch(http);
    let earlier = accept(http, &idp, 2_000, 8);

    assert_eq!(redis.cli(&["flushall"]), "OK");
    // The very next record sees its bucket's marker gone: no probe has to run first.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for body in &earlier[..4] {
        assert_eq!(over_grpc(&runtime, grpc, body), ("ok".into(), "replay_state_lost".into()));
    }
    assert_eq!(replays_accepted(http, &earlier[4..]), vec![]);

    // Again, with every replay racing the flush's discovery at once.
    let more = accept(http, &idp, 2_050, 8);
    assert_eq!(redis.cli(&["flushall"]), "OK");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(more.len() * 2));
    let racers: Vec<_> = more
        .iter()
        .chain(more.iter())
        .map(|body| {
            let (body, barrier) = (body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                verdict(http, &body)
            })
        })
        .collect();
    for racer in racers {
        let answer = racer.join().unwrap();
        assert!(answer == (422, "replay_state_lost".into()) || answer == (422, "replayed".into()), "{answer:?}");
    }
    until_fresh_accepted(http, &idp, 2_100);
}

/// Makes the server look like a replica promoted behind a connection that stayed up (a Redis
/// Cluster follows a failover by itself, without a new connection or a probe): the records it
/// "missed" gone, the buckets' markers kept (a replica holds them), another server recorded as
/// the buckets' holder. Scripts are not replicated: the script cache is flushed next.
const PROMOTE: &str = "for _, k in ipairs(redis.call('KEYS', 'saml-validator:*')) do \
  if string.sub(k, -7) == ':server' then redis.call('SET', k, 'another-run-id another-replid') \
  elseif string.sub(k, -6) ~= ':epoch' then redis.call('DEL', k) end \
end return 'OK'";

/// `saml_replay_store_judgements_total{by}`.
fn judgements(addr: SocketAddr, by: &str) -> u64 {
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    let series = format!("saml_replay_store_judgements_total{{by=\"{by}\"}} ");
    let line = metrics.lines().find_map(|line| line.strip_prefix(series.as_str()));
    line.and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("no {series} in {metrics}"))
}

#[test]
fn a_server_no_probe_has_judged_is_judged_before_a_record_on_it_counts() {
    let redis = RedisServer::start("unjudged", &[]);
    let idp = TestIdp::generate().unwrap();
    let addr = start_shared(&replay_section(&idp, &redis_config(&redis.url(), "")));
    let earlier = accept(addr, &idp, 3_000, 8);
    let loss_before = store_status(addr)["last_loss_at"].clone();

    // A script cache flushed alone is no loss: the bucket is judged again, nothing declared.
    assert_eq!(redis.cli(&["script", "flush"]), "OK");
    assert_eq!(verdict(addr, &earlier[0]), (422, "replayed".into()));
    accept(addr, &idp, 3_050, 2);
    assert_eq!(store_status(addr)["last_loss_at"], loss_before, "{}", store_status(addr));

    // The markers did not change, so only the judgement sees it; the very next records must
    // not wait for the once-a-second probe. A probe that runs inside this window judges the
    // server first, and the records then find it judged: the attempt is made again, so that
    // the test passes only on the records' own judgement.
    for attempt in 1.. {
        assert!(attempt <= 5, "a probe judged the server first in five attempts running");
        let (by_probe, by_record) = (judgements(addr, "probe"), judgements(addr, "record"));
        assert_eq!(redis.cli(&["eval", PROMOTE, "0"]), "OK");
        assert_eq!(redis.cli(&["script", "flush"]), "OK");
        for body in &earlier {
            assert_eq!(verdict(addr, body), (422, "replay_state_lost".into()));
        }
        if judgements(addr, "record") > by_record {
            break;
        }
        assert!(
            within(Duration::from_secs(5), || judgements(addr, "probe") > by_probe),
            "neither a record nor a probe judged the promoted server"
        );
    }
    assert_eq!(store_status(addr)["last_loss_reason"], "restart", "{}", store_status(addr));
    until_fresh_accepted(addr, &idp, 3_100);
}

#[test]
fn a_host_crash_that_cut_the_last_second_of_the_aof_refuses_what_it_lost() {
    let mut redis = RedisServer::start("aof", &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &redis_config(&redis.url(), ""));
    let (one, two) = (start_shared(&text), start_shared(&text));
    let kept = accept(one, &idp, 3_000, 5);
    // Redis writes the AOF before it answers: what the file holds now is everything so far.
    let incr = incremental_aof(&redis);
    let before_the_last_second = std::fs::read(&incr).unwrap();
    let lost = accept(one, &idp, 3_100, 6);

    // The host dies; the last second of the file never reached the disk.
    redis.crash();
    std::fs::write(&incr, &before_the_last_second).unwrap();
    redis.restart();
    assert_eq!(records(&redis).len(), 5, "the restarted store should hold the first five records only");
    assert_eq!(replays_accepted(two, &lost), vec![], "an assertion of the lost second was accepted again");
    assert_eq!(replays_accepted(one, &kept), vec![]);
    until_fresh_accepted(two, &idp, 3_200);
    // Whichever replica probed the new server first declared it; the other learnt it.
    let reason = store_status(two)["last_loss_reason"].clone();
    assert!(reason == "restart" || reason == "marker_replaced", "{reason}");
}

#[test]
fn a_replica_started_after_the_store_lost_records_still_refuses_them() {
    let mut redis = RedisServer::start("whole-host", &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &redis_config(&redis.url(), ""));
    let (child, addr, _) = spawn_serve("whole-host-1", &text, std::process::Stdio::null());
    let mut first = KillOnDrop(child);
    await_epoch(addr);
    accept(addr, &idp, 3_500, 3);
    let incr = incremental_aof(&redis);
    let before_the_last_second = std::fs::read(&incr).unwrap();
    let lost = accept(addr, &idp, 3_600, 4);

    // The whole host goes down, the service with Redis: no process remembers anything.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    redis.crash();
    std::fs::write(&incr, &before_the_last_second).unwrap();
    redis.restart();
    let (child, addr, _) = spawn_serve("whole-host-2", &text, std::process::Stdio::null());
    let _second = KillOnDrop(child);
    await_epoch(addr);
    // The server identity recorded in the store (kept in the AOF) names the old process.
    assert_eq!(replays_accepted(addr, &lost), vec![], "a replica started after the loss accepted a lost record");
    assert_eq!(store_status(addr)["last_loss_reason"], "restart", "{}", store_status(addr));
    until_fresh_accepted(addr, &idp, 3_700);
}

fn incremental_aof(redis: &RedisServer) -> std::path::PathBuf {
    let aof_dir = redis.dir.join("appendonlydir");
    std::fs::read_dir(&aof_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .unwrap_or_else(|| panic!("no incremental AOF in {}", aof_dir.display()))
}

#[test]
fn a_restart_that_kept_every_write_costs_no_second_sign_in() {
    let mut redis = RedisServer::start("aof-always", &["--appendonly", "yes", "--appendfsync", "always"]);
    let idp = TestIdp::generate().unwrap();
    let addr = start_shared(&replay_section(&idp, &redis_config(&redis.url(), "")));
    let earlier = accept(addr, &idp, 4_000, 4);
    let issued_before_restart = fresh(&idp, 4_050);
    // The first start dated the epoch (it cannot be told from an empty store); no later loss.
    let first = store_status(addr);
    redis.stop();
    redis.restart();
    // Every record survived: replays are `replayed`, and a login issued before the restart passes.
    assert!(within(Duration::from_secs(5), || verdict(addr, &earlier[0]) == (422, "replayed".into())));
    assert_eq!(replays_accepted(addr, &earlier), vec![]);
    assert_eq!(verdict(addr, &issued_before_restart), (200, "valid".into()), "{}", store_status(addr));
    let after = store_status(addr);
    assert_eq!(
        (&after["last_loss_at"], &after["last_loss_reason"]),
        (&first["last_loss_at"], &first["last_loss_reason"])
    );
}

#[test]
fn evictions_under_volatile_lru_are_loud_and_never_let_a_replay_through() {
    let redis = RedisServer::start("evict", &["--maxmemory", "3mb", "--maxmemory-policy", "volatile-lru"]);
    let idp = TestIdp::generate().unwrap();
    let addr = start_shared(&replay_section(&idp, &redis_config(&redis.url(), "")));
    assert!(within(Duration::from_secs(5), || store_status(addr)["eviction_policy_safe"] == false));
    assert_eq!(store_status(addr)["eviction_policy"], "volatile-lru");
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_eviction_policy_safe 0"), "{metrics}");
    let earlier = accept(addr, &idp, 5_000, 10);

    // Filler keys with a TTL, newer than the records, until Redis evicts.
    let script =
        "for i = 1, 200 do redis.call('SET', 'filler:' .. ARGV[1] .. ':' .. i, string.rep('x', 1000), 'EX', 3600) end";
    // LRU is sampled: fill until at least one record went (markers have no TTL and stay).
    let mut round = 0;
    while records(&redis).len() == 10 {
        round += 1;
        assert!(round < 400, "Redis never evicted a record");
        redis.cli(&["eval", script, "0", &round.to_string()]);
    }
    assert_eq!(replays_accepted(addr, &earlier), vec![]);
    assert_eq!(store_status(addr)["last_loss_reason"], "evictions", "{}", store_status(addr));
    // Pressure relieved: fresh logins pass again.
    assert_eq!(redis.cli(&["config", "set", "maxmemory", "0"]), "OK");
    until_fresh_accepted(addr, &idp, 5_100);
}

#[test]
fn a_changed_password_fails_closed_and_heals_within_two_seconds_of_its_return() {
    let redis = RedisServer::start("password", &["--requirepass", "first-pass"]);
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("password");
    std::fs::write(dir.join("pw"), "first-pass\n").unwrap();
    let more = format!("password_file = \"{}\"", dir.join("pw").display());
    let addr = start_shared(&replay_section(&idp, &redis_config(&redis.url(), &more)));
    accept(addr, &idp, 6_000, 2);

    assert_eq!(redis.cli_with(&["-a", "first-pass"], &["config", "set", "requirepass", "other-pass"]), "OK");
    redis.cli_with(&["-a", "other-pass"], &["client", "kill", "type", "normal"]);
    // Typed refusals while the password is wrong: never a login, never a hang.
    for seed in 6_010..6_014 {
        assert_eq!(verdict(addr, &fresh(&idp, seed)), (503, "replay_store_unavailable".into()));
    }
    assert_eq!(redis.cli_with(&["-a", "other-pass"], &["config", "set", "requirepass", "first-pass"]), "OK");
    let started = Instant::now();
    let mut seed = 6_100;
    assert!(
        within(Duration::from_secs(2), || {
            seed += 1;
            verdict(addr, &fresh(&idp, seed)).0 == 200
        }),
        "not healed within 2 s of the password's return: {}",
        store_status(addr)
    );
    eprintln!("password restored: logins accepted again after {:?}", started.elapsed());
}

#[test]
fn min_replicas_acked_fails_closed_while_the_replica_is_stopped() {
    let master = RedisServer::start("wait-master", &["--repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start("wait-replica", &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    // Linked is not yet acknowledging: after a diskless sync the master sends the replica
    // nothing until its first ACK. Wait until a write is acknowledged, as the service will ask.
    assert!(within(Duration::from_secs(10), || acknowledged(&master)), "the replica never acknowledged a write");
    let idp = TestIdp::generate().unwrap();
    let addr = start_shared(&replay_section(&idp, &redis_config(&master.url(), "min_replicas_acked = 1")));
    let reply = validate_json(addr, &fresh(&idp, 7_000));
    assert_eq!(reply.status, 200, "{}", reply.body);
    replica.signal("-STOP");
    assert_eq!(verdict(addr, &fresh(&idp, 7_010)), (503, "replay_store_unavailable".into()));
    replica.signal("-CONT");
    until_fresh_accepted(addr, &idp, 7_100);
}

/// A write on one connection, then `WAIT 1 100` on the same one: whether a replica acknowledged it.
fn acknowledged(master: &RedisServer) -> bool {
    use std::io::Write as _;
    let mut cli = std::process::Command::new("redis-cli")
        .args(["-p", &master.port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cli.stdin.take().unwrap().write_all(b"SET acknowledged 1\nWAIT 1 100\n").unwrap();
    let output = cli.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).lines().nth(1) == Some("1")
}

#[test]
fn a_sentinel_failover_to_a_lagging_replica_is_followed_and_refuses_what_the_replica_missed() {
    let mut master = RedisServer::start("sentinel-master", &["--repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start("sentinel-replica", &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(within(Duration::from_secs(10), || replica
        .cli(&["info", "replication"])
        .contains("master_link_status:up")));
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start("saml", master.port)).collect();
    assert!(within(Duration::from_secs(10), || sentinels.iter().all(|s| s.master_port("saml") == Some(master.port))));
    let idp = TestIdp::generate().unwrap();
    let urls = sentinels.iter().map(|s| format!("\"{}\"", s.url())).collect::<Vec<_>>().join(", ");
    let section =
        format!("store = \"redis\"\nsentinel_urls = [{urls}]\nsentinel_master_name = \"saml\"\ntimeout_ms = 500");
    let (one, two) = (start_shared(&replay_section(&idp, &section)), start_shared(&replay_section(&idp, &section)));
    let replicated = accept(one, &idp, 8_000, 4);
    assert!(within(Duration::from_secs(5), || replica.cli(&["dbsize"]) == master.cli(&["dbsize"])));

    // The replica stops, and the master drops its link (so nothing more reaches it, not even
    // through socket buffers); logins go on on the master alone; the master dies.
    replica.signal("-STOP");
    master.cli(&["client", "kill", "type", "replica"]);
    let missed = accept(one, &idp, 8_100, 6);
    master.crash();
    replica.signal("-CONT");
    assert!(
        within(Duration::from_secs(20), || sentinels[0].master_port("saml") == Some(replica.port)),
        "the Sentinels did not promote the replica"
    );
    assert_eq!(records(&replica).len(), 4, "the promoted replica should hold the replicated records only");
    assert_eq!(replays_accepted(two, &missed), vec![], "an assertion the replica missed was accepted again");
    assert_eq!(replays_accepted(one, &replicated), vec![]);
    let healed = until_fresh_accepted(two, &idp, 8_200);
    eprintln!("sentinel failover: fresh logins accepted again {healed:?} after the promotion was seen");
    until_fresh_accepted(one, &idp, 8_300);
    assert_eq!(store_status(two)["kind"], "redis_sentinel");
}
