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

impl RedisServer {
    /// Sends `signal` (`-STOP`, `-CONT`, `-KILL`) to the server process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// SIGKILL, as a host crash would end it: nothing flushed, files left as they are.
    pub fn crash(&mut self) {
        self.stop();
    }

    /// `redis-cli` with arguments before the command (`-a password`, ...).
    pub fn cli_with(&self, options: &[&str], args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(options)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// A `redis-sentinel` process (Debian's package) watching one master under `name`, with a
/// one-second down-after so a killed master is failed over within seconds.
pub struct Sentinel {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl Sentinel {
    pub fn start(name: &str, master_port: u16) -> Sentinel {
        let port = super::free_port();
        let dir = super::temp_dir(&format!("sentinel-{name}-{port}"));
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {dir}\nsentinel monitor {name} 127.0.0.1 {master_port} 2\nsentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 4000\nsentinel parallel-syncs {name} 1\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-sentinel (scripts/deps.sh installs it): {e}"));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(super::eventually(|| std::net::TcpStream::connect(addr).is_ok()), "sentinel on {port} did not start");
        Sentinel { child: Some(child), port, dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The master's port the Sentinel names now.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "sentinel", "get-master-addr-by-name", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).lines().nth(1).and_then(|p| p.trim().parse().ok())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
