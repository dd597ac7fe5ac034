//! Real `redis-server` processes (Debian's package; `scripts/deps.sh` installs it) on free
//! loopback ports, persistence off, in a temporary directory, killed on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// A plain server; `extra` are more `redis-server` arguments (`--requirepass`, TLS, ...).
    pub fn start(name: &str, extra: &[&str]) -> RedisServer {
        RedisServer::start_on(name, super::free_port(), extra)
    }

    /// As [`RedisServer::start`], with `port` the port clients use (for TLS: the TLS port, the
    /// plain one off).
    pub fn start_on(name: &str, port: u16, extra: &[&str]) -> RedisServer {
        let dir = super::temp_dir(&format!("redis-{name}-{port}"));
        let mut args: Vec<String> =
            vec!["--bind".into(), "127.0.0.1".into(), "--dir".into(), dir.display().to_string()];
        args.extend(["--save", "", "--appendonly", "no", "--protected-mode", "no"].map(String::from));
        if !extra.contains(&"--tls-port") {
            args.extend(["--port".to_string(), port.to_string()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = RedisServer { child: None, port, dir, args };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until its port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(super::eventually(|| std::net::TcpStream::connect(addr).is_err()), "redis on {} still up", self.port);
    }

    /// Starts the server (again, on the same port) and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server (scripts/deps.sh installs it): {e}"));
        self.child = Some(child);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            super::eventually(|| std::net::TcpStream::connect(addr).is_ok()),
            "redis on {} did not start",
            self.port
        );
    }

    /// Stops (`true`) or continues the server process: a store that holds its connections open
    /// and answers nothing, the way an overloaded or partitioned one does.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// `redis-cli` against this server; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
