//! `[admin]`: the admin page (issue 29). Off by default. When on, it is served on its own
//! listener, never on the validation one: the page shows every tenant's set-up and takes pasted
//! responses, so it must be reachable only where operators reach it (network policy, port), and
//! behind a token that no validation caller holds.

use std::path::Path;

use toml::Table;

use super::reader::Reader;
use super::replay::Secret;
use super::sections::ServerConfig;

/// Shortest token accepted: the login form is the only thing between the network and every
/// tenant's set-up, so the token must be unguessable (32 characters of base64 or hex carry
/// 128 bits or more; `openssl rand -hex 32` gives 64).
const MIN_TOKEN_CHARS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSettings {
    /// `addr`: the admin listener (TLS like every listener when `[server.tls]` is set).
    pub addr: String,
    /// `allow_plaintext_on_network`: RELAXATION. Without `[server.tls]` the listener must be
    /// on loopback (reached through `kubectl port-forward`, an SSH tunnel, a local proxy),
    /// unless this is set: the token and the session cookie would cross the network in clear.
    pub allow_plaintext_on_network: bool,
    /// The contents of `token_file`: the bearer token (or the login form's password).
    pub token: Secret,
}

/// `None` unless `enabled = true`.
pub(super) fn read(
    table: Option<&Table>,
    server: &ServerConfig,
    base: &Path,
    problems: &mut Vec<String>,
) -> Option<AdminSettings> {
    let table = table?;
    let mut r = Reader::new(table, "admin".into(), problems);
    let enabled = r.boolean("enabled", false);
    let addr = r.string("addr");
    let token_file = r.string("token_file");
    let allow_plaintext_on_network = r.boolean("allow_plaintext_on_network", false);
    if !enabled {
        r.finish();
        return None;
    }
    let addr = match addr {
        Some(addr) if addr.parse::<std::net::SocketAddr>().is_err() => {
            r.problem("addr", format!("{addr:?} is not an address like 127.0.0.1:9091"));
            None
        }
        Some(addr) => {
            let loopback = addr.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
            if server.tls.is_none() && !loopback && !allow_plaintext_on_network {
                r.problem(
                    "addr",
                    format!("{addr} is not loopback and [server.tls] is not set: the admin token would cross the network in clear (serve TLS, listen on 127.0.0.1 and tunnel, or set allow_plaintext_on_network)"),
                );
            }
            // Port 0 (tests) picks a free port for each listener: never a clash.
            let taken = [Some(&server.http_addr), server.grpc_addr.as_ref(), server.metrics_addr.as_ref()];
            if !addr.ends_with(":0") && taken.into_iter().flatten().any(|other| *other == addr) {
                r.problem("addr", format!("{addr} is already another listener's: the admin page has its own"));
            }
            Some(addr)
        }
        None => {
            r.problem("addr", "required when enabled (the admin page has its own listener)");
            None
        }
    };
    let token = match token_file {
        Some(file) => read_token(&mut r, &base.join(file)),
        None => {
            r.problem("token_file", "required when enabled");
            None
        }
    };
    r.finish();
    Some(AdminSettings { addr: addr?, allow_plaintext_on_network, token: token? })
}

fn read_token(r: &mut Reader<'_>, path: &Path) -> Option<Secret> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            r.problem("token_file", format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    // A trailing newline is how editors and `kubectl create secret --from-file` leave it.
    let token = text.trim_end_matches(['\r', '\n']);
    let distinct = token.chars().collect::<std::collections::HashSet<_>>().len();
    // Every session cookie is an HMAC of a known message under the token: a guessable token
    // falls to an offline search from one cookie. Random tokens (hex included) have 10+
    // distinct characters; `aaaa…` and `abab…` do not.
    if token.chars().count() < MIN_TOKEN_CHARS || !token.chars().all(|c| c.is_ascii_graphic()) || distinct < 10 {
        r.problem(
            "token_file",
            format!(
                "{} must hold one random token of at least {MIN_TOKEN_CHARS} visible ASCII characters (e.g. `openssl rand -hex 32`)",
                path.display()
            ),
        );
        return None;
    }
    Some(Secret(token.to_string()))
}

/// The admin token must not also be a validation caller's: every caller would be an admin.
pub(super) fn check_distinct_from_callers(
    admin: Option<&AdminSettings>,
    callers: &super::callers::Callers,
    problems: &mut Vec<String>,
) {
    let Some(admin) = admin else { return };
    let hash = openssl::sha::sha256(admin.token.0.as_bytes());
    if callers.callers.iter().any(|caller| caller.token_sha256 == Some(hash)) {
        problems
            .push("admin.token_file: the admin token is also a [[callers]] token; give the admin page its own".into());
    }
}
