//! The shared replay store against real `redis-server` processes: replicas (each its own
//! Service behind its own HTTP server) sharing one Redis refuse each other's replays, across
//! restarts; a store that is down fails closed with 503 and serving resumes by itself; the
//! relaxation; ACL user and password file; TLS with a private CA; a 3-master Redis Cluster.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::redis::RedisServer;
use crate::support::*;
use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::json;

pub(crate) fn replay_section(idp: &TestIdp, replay: &str) -> String {
    let mut text = config_text(idp, "");
    text.push_str(&format!("\n[replay]\n{replay}\n"));
    text
}

pub(crate) fn fresh(idp: &TestIdp, seed: u64) -> serde_json::Value {
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, seed);
    let saml_response = post_binding(&spec.signed(idp, Signing::Assertion).unwrap());
    json!({"tenant": "contoso", "saml_response": saml_response, "expected_request_id": REQUEST_ID})
}

/// (status, error code or "valid").
pub(crate) fn verdict(addr: SocketAddr, body: &serde_json::Value) -> (u16, String) {
    let reply = validate_json(addr, body);
    let json = reply.json();
    let code = json["error"]["code"].as_str().unwrap_or("valid").to_string();
    if reply.status == 503 {
        assert_eq!(reply.header("retry-after"), Some("1"), "every 503 says when to retry");
    }
    (reply.status, code)
}

/// Polls until `condition` holds or `within` passes: waits for an observable state, never a
/// fixed sleep standing in for one.
/// A server whose shared store has dated its epoch: a response issued from now on is after any
/// loss the store's first markers declare (a first start cannot be told from an empty store).
pub(crate) fn start_shared(text: &str) -> SocketAddr {
    let addr = start_server(text);
    await_epoch(addr);
    addr
}

pub(crate) fn await_epoch(addr: SocketAddr) {
    assert!(
        eventually(|| !store_status(addr)["epoch_since"].is_null()),
        "the replay store never dated its epoch: {}",
        store_status(addr)
    );
}

pub(crate) fn store_status(addr: SocketAddr) -> serde_json::Value {
    request(addr, "GET", "/v1/replay-store", b"", &[]).json()
}

/// The records under the prefix, without the buckets' epoch markers and server identities.
pub(crate) fn records(redis: &RedisServer) -> Vec<String> {
    let keys = redis.cli(&["--scan", "--pattern", "saml-validator:*"]);
    keys.lines().filter(|k| !k.ends_with(":epoch") && !k.ends_with(":server")).map(String::from).collect()
}

pub(crate) fn within(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn three_replicas_sharing_one_redis_accept_one_of_forty_concurrent_copies() {
    let redis = RedisServer::start("replicas", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &format!("store = \"redis\"\nurl = \"{}\"", redis.url()));
    let replicas: Vec<SocketAddr> = (0..3).map(|_| start_shared(&text)).collect();

    // Accepted by replica 1, replayed on replicas 2 and 3.
    let first = fresh(&idp, 1);
    assert_eq!(verdict(replicas[0], &first), (200, "valid".into()));
    assert_eq!(verdict(replicas[1], &first), (422, "replayed".into()));
    assert_eq!(verdict(replicas[2], &first), (422, "replayed".into()));

    // 40 copies of one fresh response, released at once, spread over the three replicas.
    let copy = fresh(&idp, 2);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
    let answers: Vec<(u16, String)> = (0..40)
        .map(|i| {
            let (addr, body, barrier) = (replicas[i % 3], copy.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                verdict(addr, &body)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let accepted = answers.iter().filter(|a| a.0 == 200).count();
    let replayed = answers.iter().filter(|a| *a == &(422, "replayed".to_string())).count();
    assert_eq!((accepted, replayed), (1, 39), "{answers:?}");

    // A restarted replica (a new Service: nothing in its memory) still refuses both.
    let restarted = start_shared(&text);
    assert_eq!(verdict(restarted, &first), (422, "replayed".into()));
    assert_eq!(verdict(restarted, &copy), (422, "replayed".into()));
    // The record is in Redis under the prefix, with the assertion's lifetime as its TTL.
    let keys = records(&redis);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ttl: i64 = redis.cli(&["pttl", &keys[0]]).parse().unwrap();
    assert!(ttl > 1_000, "ttl {ttl} ms");
}

#[test]
fn a_store_that_is_down_fails_closed_and_serving_resumes_when_it_is_back() {
    let mut redis = RedisServer::start("outage", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &format!("store = \"redis\"\nurl = \"{}\"\ntimeout_ms = 300", redis.url()));
    let addr = start_shared(&text);
    let accepted = fresh(&idp, 10);
    assert_eq!(verdict(addr, &accepted), (200, "valid".into()));

    redis.stop();
    // Neither a fresh login nor a replay is accepted while nothing can record it.
    for body in [&fresh(&idp, 11), &accepted] {
        assert_eq!(verdict(addr, body), (503, "replay_store_unavailable".into()));
    }
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_up 0"), "{metrics}");
    assert!(metrics.contains("code=\"replay_store_unavailable\""), "{metrics}");
    // Readiness is about tenants, not the store (see README, Scaling out).
    assert_eq!(request(addr, "GET", "/readyz", b"", &[]).status, 200);

    // Persistence is off, so the restarted store has forgotten `accepted`: only fresh logins
    // are asserted on. They succeed within 2 s, without restarting the service.
    redis.restart();
    let mut seed = 100;
    assert!(
        within(Duration::from_secs(2), || {
            seed += 1;
            verdict(addr, &fresh(&idp, seed)).0 == 200
        }),
        "no fresh login accepted within 2 s of the store coming back"
    );
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_up 1"), "{metrics}");
    // Every replay store metric the README documents is exported (with store = "redis").
    let readme = include_str!("../../README.md");
    for name in
        readme.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("saml_replay_store_"))
    {
        assert!(metrics.contains(&format!("# TYPE {name} ")), "{name} is documented but not exported");
    }
    assert!(metrics.contains("saml_replay_store_operations_total{result=\"stored\"}"), "{metrics}");
}

#[test]
fn a_store_that_does_not_answer_within_timeout_ms_fails_closed() {
    let redis = RedisServer::start("frozen", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &format!("store = \"redis\"\nurl = \"{}\"\ntimeout_ms = 150", redis.url()));
    let addr = start_shared(&text);
    assert_eq!(verdict(addr, &fresh(&idp, 60)), (200, "valid".into()));
    redis.freeze(true);
    let started = Instant::now();
    let answer = verdict(addr, &fresh(&idp, 61));
    let waited = started.elapsed();
    redis.freeze(false);
    assert_eq!(answer, (503, "replay_store_unavailable".into()));
    assert!(waited < Duration::from_secs(2), "waited {waited:?} for a 150 ms timeout");
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_operations_total{result=\"timeout\"} 1"), "{metrics}");
    // The connection was never dropped: the next login goes through at once.
    assert_eq!(verdict(addr, &fresh(&idp, 62)), (200, "valid".into()));
}

#[test]
fn the_relaxation_falls_back_to_this_process_while_the_store_is_down() {
    let mut redis = RedisServer::start("fallback", &[]);
    let idp = TestIdp::generate().unwrap();
    let url = redis.url();
    let text = replay_section(
        &idp,
        &format!("store = \"redis\"\nurl = \"{url}\"\nallow_memory_fallback_when_unavailable = true"),
    );
    let addr = start_shared(&text);
    redis.stop();
    let body = fresh(&idp, 20);
    assert_eq!(verdict(addr, &body), (200, "valid".into()));
    // This replica still refuses its own replay, from its memory.
    assert_eq!(verdict(addr, &body), (422, "replayed".into()));
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_replay_store_fallbacks_total 2"), "{metrics}");
}

#[test]
fn an_acl_user_logs_in_with_the_password_file_and_a_wrong_password_fails_closed() {
    let redis = RedisServer::start(
        "acl",
        &[
            "--user",
            "default",
            "off",
            "--user",
            "saml",
            "on",
            ">s3cret-pass",
            "~saml-validator:*",
            "+@connection",
            "+set",
            "+get",
            "+eval",
            "+evalsha",
            "+multi",
            "+exec",
            "+script|exists",
            "+info",
            // The rights the versions that recorded by script needed: no MULTI, no SCRIPT EXISTS.
            "--user",
            "legacy",
            "on",
            ">s3cret-pass",
            "~saml-validator:*",
            "+@connection",
            "+set",
            "+get",
            "+eval",
            "+evalsha",
            "+info",
        ],
    );
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("acl");
    std::fs::write(dir.join("good"), "s3cret-pass\n").unwrap();
    std::fs::write(dir.join("bad"), "not-the-password\n").unwrap();
    let with_user = |user: &str, file: &str| {
        let section = format!(
            "store = \"redis\"\nurl = \"{}\"\nusername = \"{user}\"\npassword_file = \"{}\"",
            redis.url(),
            dir.join(file).display()
        );
        start_server(&replay_section(&idp, &section))
    };
    let with = |file: &str| with_user("saml", file);
    let good = with("good");
    await_epoch(good);
    let body = fresh(&idp, 30);
    assert_eq!(verdict(good, &body), (200, "valid".into()));
    assert_eq!(verdict(good, &body), (422, "replayed".into()));
    let bad = with("bad");
    assert_eq!(verdict(bad, &fresh(&idp, 31)), (503, "replay_store_unavailable".into()));
    // An ACL that predates the record's transaction fails closed (MULTI refused), never open.
    let legacy = with_user("legacy", "good");
    for seed in 32..35 {
        assert_eq!(verdict(legacy, &fresh(&idp, seed)), (503, "replay_store_unavailable".into()));
    }
}

#[test]
fn rediss_with_a_private_ca() {
    let dir = temp_dir("redis-tls");
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl").args(args).current_dir(&dir).stderr(std::process::Stdio::null()).status();
        assert!(status.unwrap().success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test redis CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    let file = |name: &str| dir.join(name).display().to_string();
    let port = free_port();
    let (port_text, cert, key, ca) = (port.to_string(), file("server.pem"), file("server.key"), file("ca.pem"));
    let _redis = RedisServer::start_on(
        "tls",
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port_text,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let idp = TestIdp::generate().unwrap();
    let addr = start_shared(&replay_section(
        &idp,
        &format!("store = \"redis\"\nurl = \"rediss://127.0.0.1:{port}\"\nca_file = \"{ca}\"\ntimeout_ms = 1000"),
    ));
    let body = fresh(&idp, 40);
    assert_eq!(verdict(addr, &body), (200, "valid".into()));
    assert_eq!(verdict(addr, &body), (422, "replayed".into()));
    // Without the private CA the server's certificate is not trusted: no login goes through.
    let untrusted =
        start_server(&replay_section(&idp, &format!("store = \"redis\"\nurl = \"rediss://127.0.0.1:{port}\"")));
    assert_eq!(verdict(untrusted, &fresh(&idp, 41)), (503, "replay_store_unavailable".into()));
}

/// A port whose cluster bus port (+10000) is also free.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

#[test]
fn a_redis_cluster_of_three_masters_spreads_the_keys_and_refuses_replays() {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|i| {
            let port = cluster_port();
            RedisServer::start_on(
                &format!("cluster{i}"),
                port,
                &["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            )
        })
        .collect();
    let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    assert!(
        within(Duration::from_secs(10), || nodes
            .iter()
            .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))),
        "the cluster did not become ok"
    );
    let idp = TestIdp::generate().unwrap();
    let urls = addresses.iter().map(|a| format!("\"redis://{a}\"")).collect::<Vec<_>>().join(", ");
    let text = replay_section(&idp, &format!("store = \"redis\"\ncluster_urls = [{urls}]\ntimeout_ms = 1000"));
    let (one, two) = (start_shared(&text), start_shared(&text));
    for seed in 50..80 {
        let body = fresh(&idp, seed);
        assert_eq!(verdict(one, &body), (200, "valid".into()), "seed {seed}");
        assert_eq!(verdict(two, &body), (422, "replayed".into()), "seed {seed}");
    }
    // 30 records, and the 16 buckets' epoch markers and server identities spread with them.
    let per_node: Vec<u64> = nodes.iter().map(|n| n.cli(&["dbsize"]).parse().unwrap()).collect();
    assert_eq!(per_node.iter().sum::<u64>(), 30 + 2 * 16, "{per_node:?}");
    assert!(per_node.iter().filter(|n| **n > 0).count() >= 2, "keys all on one node: {per_node:?}");
}

/// The gRPC answer: ("ok", verdict code or "valid"), or ("error", x-error-code) with the status
/// the error table gives it.
pub(crate) fn over_grpc(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    body: &serde_json::Value,
) -> (String, String) {
    use saml_validator::transport::grpc::pb;
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{addr}")).await.unwrap();
        let request = pb::ValidateRequest {
            tenant: "contoso".into(),
            saml_response: body["saml_response"].as_str().unwrap().into(),
            expected_request_id: Some(REQUEST_ID.into()),
            expected_acs_url: None,
        };
        match client.validate(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                ("ok".into(), reply.error.map_or("valid".into(), |e| e.code))
            }
            Err(status) => {
                let code = status.metadata().get("x-error-code").unwrap().to_str().unwrap().to_string();
                assert_eq!(status.code(), tonic::Code::Unavailable, "{code}");
                ("error".into(), code)
            }
        }
    })
}

#[test]
fn a_store_stopped_under_load_never_lets_a_replay_through_on_either_transport() {
    let mut redis = RedisServer::start("under-load", &[]);
    let idp = TestIdp::generate().unwrap();
    let text = replay_section(&idp, &format!("store = \"redis\"\nurl = \"{}\"\ntimeout_ms = 200", redis.url()));
    let (http, grpc) = start_both(&text, false);
    await_epoch(http);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let used: Vec<serde_json::Value> = (200..210).map(|seed| fresh(&idp, seed)).collect();
    for body in &used {
        assert_eq!(verdict(http, body), (200, "valid".into()));
    }
    assert_eq!(over_grpc(&runtime, grpc, &used[0]), ("ok".into(), "replayed".into()));

    // Four clients keep replaying the used assertions and sending fresh ones; the store is
    // killed while they run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let (used, stop, answered) = (used.clone(), stop.clone(), answered.clone());
            let fresh_bodies: Vec<_> = (0..200).map(|i| fresh(&idp, 1_000 + client * 1_000 + i)).collect();
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for (i, body) in fresh_bodies.iter().enumerate() {
                    if stop.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    answers.push((false, verdict(http, body)));
                    answers.push((true, verdict(http, &used[i % used.len()])));
                    answered.fetch_add(2, std::sync::atomic::Ordering::AcqRel);
                }
                answers
            })
        })
        .collect();
    // Once the clients are well under way, the store goes away mid-run.
    assert!(within(Duration::from_secs(20), || answered.load(std::sync::atomic::Ordering::Acquire) >= 40));
    redis.stop();
    let during_outage = over_grpc(&runtime, grpc, &fresh(&idp, 300));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let answers: Vec<(bool, (u16, String))> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(answers.iter().any(|(replay, a)| !replay && a.0 == 200), "no fresh login before the outage");
    for (replay, answer) in &answers {
        let allowed: &[(u16, &str)] = if *replay {
            &[(422, "replayed"), (503, "replay_store_unavailable")]
        } else {
            &[(200, "valid"), (503, "replay_store_unavailable")]
        };
        assert!(allowed.iter().any(|(s, c)| answer.0 == *s && answer.1 == *c), "replay {replay}: {answer:?}");
    }
    assert!(answers.iter().any(|(_, a)| a.0 == 503), "the outage was never seen: {answers:?}");
    assert_eq!(during_outage, ("error".into(), "replay_store_unavailable".into()));

    redis.restart();
    let mut seed = 400;
    assert!(
        within(Duration::from_secs(2), || {
            seed += 1;
            over_grpc(&runtime, grpc, &fresh(&idp, seed)) == ("ok".into(), "valid".into())
        }),
        "gRPC did not accept a fresh login within 2 s of the store coming back"
    );
}

#[test]
fn the_cli_validate_never_records_into_the_shared_store() {
    // Checking a saved response from a shell must not burn a real assertion in production's
    // store: the same response validates twice and Redis stays empty.
    let redis = RedisServer::start("cli", &[]);
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("replay-cli");
    let config = dir.join("config.toml");
    std::fs::write(&config, replay_section(&idp, &format!("store = \"redis\"\nurl = \"{}\"", redis.url()))).unwrap();
    let response = dir.join("response.b64");
    std::fs::write(&response, fresh(&idp, 70)["saml_response"].as_str().unwrap()).unwrap();
    for _ in 0..2 {
        let output = Command::new(BIN)
            .args(["validate", "--tenant", "contoso", "--expected-request-id", REQUEST_ID, "--config"])
            .arg(&config)
            .arg(&response)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    }
    assert_eq!(redis.cli(&["dbsize"]), "0");
}
