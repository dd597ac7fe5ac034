//! The fleet benchmark (issue 17): a help desk's whole customer base on one replica.
//!
//! Generates `TENANTS` tenant files (80 % pinned certificates, 20 % `metadata_url` served by a
//! metadata server on loopback run here, a tenth of those failing and a twentieth sharing one
//! URL), starts the real binary on them and measures: start-up to ready, RSS (ready, peak, per
//! tenant against a one-tenant baseline), the metadata fetches, validation throughput with
//! logins spread uniformly over every serving tenant vs all on one tenant, the `/metrics`
//! scrape (raw and gzip), one tenant file changed → its new key in force, and a batch of files
//! changed at once. Prints `key=value` lines; exits non-zero if anything was wrong (a login
//! refused, a reload never applied), never because something was slow.
//!
//! `cargo run --release --example fleet -- TENANTS WORK_DIR BINARY DURATION_SECONDS CONNECTIONS [POOL_PER_RUN]`
//! (the pool defaults to 16,000 signed logins per second of run: a run ends early when it is used up).
// Load generators time their runs and stamp fresh responses with the clock.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use saml_validator::testing::idp::{guid, idp_metadata, post_binding, ResponseSpec, Signing, TestIdp};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SP: &str = "https://www.jitbit.com/web-helpdesk/";
const REQUEST: &str = "_fleet-request";
/// Distinct IdP signing keys the fleet's tenants are spread over.
const KEYS: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pinned,
    Metadata,
    /// Several tenants on one URL (a multi-tenant app's common endpoint).
    Shared,
    Failing,
}

struct Tenant {
    id: String,
    issuer: String,
    acs: String,
    key: usize,
    kind: Kind,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fleet: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (count, work, binary, duration, connections, pool_size) = match args.as_slice() {
        [count, work, binary, duration, connections] => (count, work, binary, duration, connections, None),
        [count, work, binary, duration, connections, pool] => (count, work, binary, duration, connections, Some(pool)),
        _ => return Err("usage: fleet TENANTS WORK_DIR BINARY DURATION_SECONDS CONNECTIONS [POOL_PER_RUN]".into()),
    };
    let count: usize = count.parse()?;
    let duration = Duration::from_secs(duration.parse()?);
    let connections: usize = connections.parse()?;
    let work = PathBuf::from(work);
    let binary = PathBuf::from(binary);
    std::fs::create_dir_all(&work)?;

    let idps = generate_idps(KEYS.min(count))?;
    let tenants = plan(count);
    let (metadata_port, documents, hits) = start_metadata_server()?;
    let dir = work.join("tenants.d");
    write_fleet(&dir, &tenants, &idps, metadata_port, &documents)?;
    let serving: Vec<&Tenant> = tenants.iter().filter(|t| t.kind != Kind::Failing).collect();
    println!(
        "fleet tenants={count} pinned={} metadata_urls={} shared_url_tenants={} failing_urls={}",
        tenants.iter().filter(|t| t.kind == Kind::Pinned).count(),
        tenants.iter().filter(|t| matches!(t.kind, Kind::Metadata | Kind::Failing)).count() + 1,
        tenants.iter().filter(|t| t.kind == Kind::Shared).count(),
        tenants.iter().filter(|t| t.kind == Kind::Failing).count(),
    );

    // Pools are signed before the server starts, so signing never competes with it.
    let per_run = match pool_size {
        Some(size) => size.parse()?,
        None => duration.as_secs() as usize * 16_000,
    };
    let spread = pool(&serving, &idps, per_run, 1)?;
    let single = pool(&serving[..1], &idps, per_run, 10_000_000)?;
    let mut failures = Vec::new();

    let baseline_kb = baseline(&work, &binary, &idps[0])?;
    let http_port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{http_port}").parse()?;
    std::fs::write(work.join("config.toml"), config(http_port, "tenants.d"))?;
    let started = Instant::now();
    let server = Server(
        Command::new(&binary)
            .args(["serve", "--config"])
            .arg(work.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let ready = wait_ready(addr, &server, Duration::from_secs(120))?;
    let ready_ms = started.elapsed().as_millis();
    let rss_ready_kb = status_kb(server.0.id(), "VmRSS")?;
    println!(
        "startup ready_ms={ready_ms} readyz={ready} metadata_requests={} rss_ready_kb={rss_ready_kb} baseline_rss_kb={baseline_kb} rss_per_tenant_kb={:.1}",
        hits.load(Ordering::Relaxed),
        (rss_ready_kb.saturating_sub(baseline_kb)) as f64 / count as f64
    );
    check_states(addr, &tenants, &mut failures)?;

    let (spread_rps, spread_bad) = load(addr, &spread, connections, duration)?;
    let (single_rps, single_bad) = load(addr, &single, connections, duration)?;
    println!(
        "throughput connections={connections} seconds={} spread_over={} rps_spread={spread_rps:.0} rps_one_tenant={single_rps:.0} ratio={:.3} non_200={}",
        duration.as_secs(),
        serving.len(),
        spread_rps / single_rps.max(1.0),
        spread_bad + single_bad
    );
    if spread_bad + single_bad > 0 {
        failures.push(format!("{} logins were not 200", spread_bad + single_bad));
    }

    for gzip in [false, true] {
        let headers: &[(&str, &str)] = if gzip { &[("Accept-Encoding", "gzip")] } else { &[] };
        let started = Instant::now();
        let (status, body) = once(addr, "GET", "/metrics", b"", headers)?;
        let elapsed = started.elapsed();
        let series =
            if gzip { 0 } else { body.split(|b| *b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').count() };
        println!(
            "scrape gzip={gzip} status={status} bytes={} ms={:.1}{}",
            body.len(),
            elapsed.as_secs_f64() * 1000.0,
            if gzip { String::new() } else { format!(" series={series}") }
        );
    }

    reloads(addr, &dir, &tenants, &mut failures)?;
    println!("memory peak_rss_kb={}", status_kb(server.0.id(), "VmHWM")?);
    drop(server);
    if failures.is_empty() {
        println!("fleet ok");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

fn generate_idps(count: usize) -> Result<Vec<Arc<TestIdp>>> {
    let handles: Vec<_> = (0..count).map(|_| std::thread::spawn(TestIdp::generate)).collect();
    handles.into_iter().map(|h| Ok(Arc::new(h.join().map_err(|_| "keygen panicked")??))).collect()
}

fn plan(count: usize) -> Vec<Tenant> {
    let metadata = count / 5;
    let failing = metadata / 10;
    let shared = metadata / 20;
    (0..count)
        .map(|i| {
            let id = format!("tenant-{i:05}");
            let from_end = count - i;
            let kind = if from_end <= failing {
                Kind::Failing
            } else if from_end <= failing + shared {
                Kind::Shared
            } else if from_end <= metadata {
                Kind::Metadata
            } else {
                Kind::Pinned
            };
            let issuer = if kind == Kind::Shared {
                "https://idp.shared.example/".to_string()
            } else {
                format!("https://sts.windows.net/{}/", guid(i as u64 + 1_000_000))
            };
            let acs = format!("https://{id}.jitbit.example/helpdesk/User/Login");
            let key = if kind == Kind::Shared { 0 } else { i % KEYS.min(count) };
            Tenant { id, issuer, acs, key, kind }
        })
        .collect()
}

type Documents = Arc<std::sync::RwLock<HashMap<String, Vec<u8>>>>;

/// A metadata endpoint on loopback: `/md/<name>` from memory, anything else 503.
fn start_metadata_server() -> Result<(u16, Documents, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let documents: Documents = Arc::default();
    let hits = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (listener, documents, hits) = (listener.try_clone()?, documents.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                hits.fetch_add(1, Ordering::Relaxed);
                let _ = answer_metadata(stream, &documents);
            }
        });
    }
    Ok((port, documents, hits))
}

fn answer_metadata(mut stream: TcpStream, documents: &Documents) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let body = documents.read().ok().and_then(|d| d.get(&path).cloned());
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("503 Service Unavailable", b"down".to_vec()),
    };
    write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    stream.write_all(&body)
}

fn tenant_file(tenant: &Tenant, idp: &TestIdp, metadata_port: u16) -> String {
    let head = format!("sp_entity_id = \"{SP}\"\nacs_url = \"{}\"\n", tenant.acs);
    match tenant.kind {
        Kind::Pinned => {
            format!("{head}idp_entity_id = \"{}\"\ncertificates = [\"{}\"]\n", tenant.issuer, idp.certificate_base64())
        }
        Kind::Metadata => format!("{head}metadata_url = \"http://127.0.0.1:{metadata_port}/md/{}.xml\"\n", tenant.id),
        Kind::Shared => format!(
            "{head}idp_entity_id = \"{}\"\nmetadata_url = \"http://127.0.0.1:{metadata_port}/md/shared.xml\"\n",
            tenant.issuer
        ),
        Kind::Failing => format!("{head}metadata_url = \"http://127.0.0.1:{metadata_port}/down/{}.xml\"\n", tenant.id),
    }
}

fn write_fleet(dir: &Path, tenants: &[Tenant], idps: &[Arc<TestIdp>], port: u16, documents: &Documents) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut docs = documents.write().map_err(|_| "poisoned")?;
    for tenant in tenants {
        let idp = &idps[tenant.key];
        std::fs::write(dir.join(format!("{}.toml", tenant.id)), tenant_file(tenant, idp, port))?;
        match tenant.kind {
            Kind::Metadata => {
                docs.insert(format!("/md/{}.xml", tenant.id), idp_metadata(&tenant.issuer, &[idp], None).into_bytes());
            }
            Kind::Shared => {
                docs.insert("/md/shared.xml".into(), idp_metadata(&tenant.issuer, &[idp], None).into_bytes());
            }
            _ => {}
        }
    }
    Ok(())
}

fn config(http_port: u16, tenants_dir: &str) -> String {
    format!(
        "tenants_dir = \"{tenants_dir}\"\n\n[server]\nhttp_addr = \"127.0.0.1:{http_port}\"\nmax_concurrent_validations = 4096\nreplay_cache_capacity = 10000000\n\n[logging]\nlevel = \"error\"\n\n[metadata]\nallowed_hosts = [\"127.0.0.1\"]\ntimeout_seconds = 2\n"
    )
}

/// Signed login bodies spread round-robin over `tenants` (seeds from `first_seed`).
fn pool(tenants: &[&Tenant], idps: &[Arc<TestIdp>], count: usize, first_seed: u64) -> Result<Arc<Vec<Vec<u8>>>> {
    let now = chrono::Utc::now();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let jobs: Vec<(String, String, String, Arc<TestIdp>)> =
        tenants.iter().map(|t| (t.id.clone(), t.issuer.clone(), t.acs.clone(), idps[t.key].clone())).collect();
    let jobs = Arc::new(jobs);
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let jobs = jobs.clone();
            std::thread::spawn(move || -> std::result::Result<Vec<(usize, Vec<u8>)>, String> {
                (0..count)
                    .filter(|i| i % threads == thread)
                    .map(|i| {
                        let (id, issuer, acs, idp) = &jobs[i % jobs.len()];
                        let spec = ResponseSpec::entra(issuer, SP, acs, Some(REQUEST), now, 10, first_seed + i as u64);
                        let xml = spec.signed(idp, Signing::Assertion)?;
                        let body = format!(
                            "{{\"tenant\":\"{id}\",\"saml_response\":\"{}\",\"expected_request_id\":\"{REQUEST}\"}}",
                            post_binding(&xml)
                        );
                        Ok((i, body.into_bytes()))
                    })
                    .collect()
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for handle in handles {
        all.extend(handle.join().map_err(|_| "signer panicked")??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(Arc::new(all.into_iter().map(|(_, body)| body).collect()))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).ok_or("no such /proc field")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad /proc line")?.parse()?)
}

/// Polls `/readyz` (every 5 ms) until 200; returns its body.
fn wait_ready(addr: SocketAddr, server: &Server, limit: Duration) -> Result<String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok((200, body)) = once(addr, "GET", "/readyz", b"", &[]) {
            return Ok(String::from_utf8_lossy(&body).replace(' ', ""));
        }
        if std::fs::metadata(format!("/proc/{}", server.0.id())).is_err() {
            return Err("the server exited".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("not ready in time".into())
}

/// RSS of the same binary serving one tenant, ready.
fn baseline(work: &Path, binary: &Path, idp: &TestIdp) -> Result<u64> {
    let dir = work.join("baseline.d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let one = Tenant {
        id: "tenant-00000".into(),
        issuer: "https://sts.windows.net/baseline/".into(),
        acs: "https://baseline.jitbit.example/helpdesk/User/Login".into(),
        key: 0,
        kind: Kind::Pinned,
    };
    std::fs::write(dir.join("tenant-00000.toml"), tenant_file(&one, idp, 0))?;
    let port = free_port()?;
    std::fs::write(work.join("baseline.toml"), config(port, "baseline.d"))?;
    let server = Server(
        Command::new(binary)
            .args(["serve", "--config"])
            .arg(work.join("baseline.toml"))
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_ready(format!("127.0.0.1:{port}").parse()?, &server, Duration::from_secs(30))?;
    status_kb(server.0.id(), "VmRSS")
}

/// Every tenant's state as `GET /v1/tenants/{id}` shows it, and a failing one refusing logins.
fn check_states(addr: SocketAddr, tenants: &[Tenant], failures: &mut Vec<String>) -> Result<()> {
    let step = (tenants.len() / 500).max(1);
    let mut checked = 0;
    for tenant in tenants.iter().step_by(step) {
        let (status, body) = once(addr, "GET", &format!("/v1/tenants/{}", tenant.id), b"", &[])?;
        let text = String::from_utf8_lossy(&body);
        let expected = if tenant.kind == Kind::Failing { "\"status\":\"unavailable\"" } else { "\"status\":\"ok\"" };
        if status != 200 || !text.contains(expected) {
            failures.push(format!("{}: {status} {text}", tenant.id));
        }
        checked += 1;
    }
    if let Some(failing) = tenants.iter().find(|t| t.kind == Kind::Failing) {
        let body = format!("{{\"tenant\":\"{}\",\"saml_response\":\"eA==\"}}", failing.id);
        let (status, reply) = once(addr, "POST", "/v1/validate", body.as_bytes(), &[])?;
        if status != 503 || !String::from_utf8_lossy(&reply).contains("tenant_unavailable") {
            failures.push(format!("failing tenant answered {status}"));
        }
    }
    println!("states checked={checked} problems={}", failures.len());
    Ok(())
}

/// Drives `pool` over `connections` keep-alive connections for `duration`; (req/s, non-200).
fn load(addr: SocketAddr, pool: &Arc<Vec<Vec<u8>>>, connections: usize, duration: Duration) -> Result<(f64, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            std::thread::spawn(move || -> std::io::Result<(usize, usize)> {
                let mut connection = Connection::open(addr)?;
                let (mut done, mut bad) = (0, 0);
                while started.elapsed() < duration {
                    let Some(body) = pool.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let (status, _) = connection.call("POST", "/v1/validate", body, &[])?;
                    done += 1;
                    bad += usize::from(status != 200);
                }
                Ok((done, bad))
            })
        })
        .collect();
    let (mut done, mut bad) = (0, 0);
    for handle in handles {
        let (d, b) = handle.join().map_err(|_| "load thread panicked")??;
        done += d;
        bad += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if next.load(Ordering::Relaxed) >= pool.len() {
        println!("note: the pool ran out after {elapsed:.2} s; raise DURATION's pool factor");
    }
    Ok((done as f64 / elapsed, bad))
}

/// One tenant file changed, five times (median and worst), then a batch changed at once.
fn reloads(addr: SocketAddr, dir: &Path, tenants: &[Tenant], failures: &mut Vec<String>) -> Result<()> {
    let pinned: Vec<&Tenant> = tenants.iter().filter(|t| t.kind == Kind::Pinned).collect();
    let rotated = TestIdp::generate()?;
    let mut seed = 50_000_000;
    let mut one = Vec::new();
    for tenant in pinned.iter().take(5) {
        let started = rewrite(dir, &[tenant], &rotated)?;
        if !until_in_force(addr, tenant, &rotated, &mut seed)? {
            failures.push(format!("{}: new key never in force", tenant.id));
        }
        one.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    one.sort_by(f64::total_cmp);
    let batch: Vec<&Tenant> = pinned.iter().skip(5).take(1000.min(pinned.len() / 2)).copied().collect();
    let rotated_batch = TestIdp::generate()?;
    let started = rewrite(dir, &batch, &rotated_batch)?;
    let last = batch.last().ok_or("no tenants to change")?;
    if !until_in_force(addr, last, &rotated_batch, &mut seed)? {
        failures.push("batch never in force".into());
    }
    let batch_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut stale = 0;
    for tenant in &batch {
        seed += 1;
        if login(addr, tenant, &rotated_batch, seed)? != 200 {
            stale += 1;
        }
    }
    if stale > 0 {
        failures.push(format!("{stale} batch tenants without their new key"));
    }
    println!(
        "reload one_file_ms_median={:.0} one_file_ms_max={:.0} batch_files={} batch_ms={batch_ms:.0} batch_not_in_force={stale}",
        one[one.len() / 2],
        one[one.len() - 1],
        batch.len()
    );
    Ok(())
}

/// Rewrites the tenants' files (write aside, rename over) to trust `idp`; returns when it began.
fn rewrite(dir: &Path, tenants: &[&Tenant], idp: &TestIdp) -> Result<Instant> {
    let texts: Vec<(String, String)> = tenants.iter().map(|t| (t.id.clone(), tenant_file(t, idp, 0))).collect();
    let started = Instant::now();
    for (id, text) in texts {
        let aside = dir.join(format!(".{id}.tmp"));
        std::fs::write(&aside, text)?;
        std::fs::rename(&aside, dir.join(format!("{id}.toml")))?;
    }
    Ok(started)
}

/// Logs in with `idp` until accepted (at most 30 s).
fn until_in_force(addr: SocketAddr, tenant: &Tenant, idp: &TestIdp, seed: &mut u64) -> Result<bool> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        *seed += 1;
        if login(addr, tenant, idp, *seed)? == 200 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn login(addr: SocketAddr, tenant: &Tenant, idp: &TestIdp, seed: u64) -> Result<u16> {
    let spec = ResponseSpec::entra(&tenant.issuer, SP, &tenant.acs, Some(REQUEST), chrono::Utc::now(), 10, seed);
    let xml = spec.signed(idp, Signing::Assertion)?;
    let body = format!(
        "{{\"tenant\":\"{}\",\"saml_response\":\"{}\",\"expected_request_id\":\"{REQUEST}\"}}",
        tenant.id,
        post_binding(&xml)
    );
    Ok(once(addr, "POST", "/v1/validate", body.as_bytes(), &[])?.0)
}

fn once(addr: SocketAddr, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>)> {
    Ok(Connection::open(addr)?.call(method, path, body, headers)?)
}

/// A keep-alive HTTP/1.1 client connection, enough for this server's sized responses.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: fleet\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? <= 2 {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut reply = vec![0; length];
        self.reader.read_exact(&mut reply)?;
        Ok((status, reply))
    }
}
