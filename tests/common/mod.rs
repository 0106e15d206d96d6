//! Shared harness for the black-box integration tests: starts `hypercache-server` on ephemeral
//! ports, reads the bound addresses from its start line (ops.md §5), keeps its stderr, and
//! kills it on drop.
#![allow(dead_code)]

pub mod client;
pub mod cluster;
pub mod http;
pub mod tls;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use http::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_hypercache-server");
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestNode {
    child: Child,
    log: Arc<Mutex<String>>,
    started: mpsc::Receiver<Option<String>>,
    reader: Option<JoinHandle<()>>,
    addrs: Option<[SocketAddr; 3]>,
    start_line: String,
    exit: Option<ExitStatus>,
    pub token: Option<String>,
    pub cores: usize,
}

impl TestNode {
    /// Spawns and waits for the start line; panics with the collected stderr otherwise.
    pub fn start(cores: usize, extra_env: &[(&str, &str)]) -> TestNode {
        let mut n = TestNode::spawn(cores, extra_env);
        if let Err(e) = n.wait_started(START_TIMEOUT) {
            panic!("{e}");
        }
        n
    }

    /// Spawns without waiting (for tests that expect start-up to fail).
    pub fn spawn(cores: usize, extra_env: &[(&str, &str)]) -> TestNode {
        let mut cmd = Command::new(BIN);
        cmd.env_clear();
        if let Ok(p) = std::env::var("PATH") {
            cmd.env("PATH", p);
        }
        let cores_s = cores.to_string();
        let base = [
            ("HYPERCACHE_NODE_ID", "test-node"),
            ("HYPERCACHE_API_ADDR", "127.0.0.1:0"),
            ("HYPERCACHE_MGMT_ADDR", "127.0.0.1:0"),
            ("HYPERCACHE_DIST_ADDR", "127.0.0.1:0"),
            ("HYPERCACHE_CORES", cores_s.as_str()),
            ("HYPERCACHE_LOG_LEVEL", "info"),
        ];
        for (k, v) in base.iter().chain(extra_env.iter()) {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            let mut sent = false;
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&line).into_owned();
                        log2.lock().unwrap().push_str(&s);
                        if !sent && s.contains("hypercache-server started") {
                            let _ = tx.send(Some(s.trim_end().to_string()));
                            sent = true;
                        }
                    }
                }
            }
            if !sent {
                let _ = tx.send(None);
            }
        });
        let token = extra_env
            .iter()
            .rev()
            .find(|(k, _)| *k == "HYPERCACHE_AUTH_TOKEN")
            .map(|(_, v)| v.to_string());
        TestNode {
            child,
            log,
            started: rx,
            reader: Some(reader),
            addrs: None,
            start_line: String::new(),
            exit: None,
            token: token.filter(|t| !t.trim().is_empty()),
            cores,
        }
    }

    pub fn wait_started(&mut self, timeout: Duration) -> Result<(), String> {
        match self.started.recv_timeout(timeout) {
            Ok(Some(line)) => {
                let get = |key: &str| -> Result<SocketAddr, String> {
                    line.split_whitespace()
                        .find_map(|t| t.strip_prefix(key))
                        .and_then(|a| a.parse().ok())
                        .ok_or(format!("start line lacks {key}<addr>: {line}"))
                };
                self.addrs = Some([get("api=")?, get("mgmt=")?, get("dist=")?]);
                self.start_line = line;
                Ok(())
            }
            Ok(None) => {
                let st = self.child.wait().ok();
                self.exit = st;
                Err(format!(
                    "server exited before its start line ({st:?}); stderr:\n{}",
                    self.stderr()
                ))
            }
            Err(_) => Err(format!(
                "no start line within {timeout:?}; stderr:\n{}",
                self.stderr()
            )),
        }
    }

    pub fn api(&self) -> SocketAddr {
        self.addrs.expect("node not started")[0]
    }
    pub fn mgmt(&self) -> SocketAddr {
        self.addrs.expect("node not started")[1]
    }
    pub fn dist(&self) -> SocketAddr {
        self.addrs.expect("node not started")[2]
    }
    pub fn start_line(&self) -> &str {
        &self.start_line
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Client on the API listener carrying the node's token (if any).
    pub fn api_client(&self) -> Client {
        Client::new(self.api(), self.token.as_deref())
    }
    pub fn mgmt_client(&self) -> Client {
        Client::new(self.mgmt(), self.token.as_deref())
    }
    pub fn api_anon(&self) -> Client {
        Client::new(self.api(), None)
    }
    pub fn mgmt_anon(&self) -> Client {
        Client::new(self.mgmt(), None)
    }

    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }
    /// Polls the collected stderr for `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll_until(timeout, Duration::from_millis(20), || {
            self.stderr().contains(needle)
        })
    }

    /// `kill -<sig> <pid>` (e.g. "TERM", "INT").
    pub fn send_signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    pub fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.exit {
            return Some(st);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
                if let Some(h) = self.reader.take() {
                    let _ = h.join();
                }
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.try_wait_exit(timeout) {
            Some(st) => st,
            None => panic!(
                "server did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Diagnostics for the failing test: did the server die, and what did it log?
            let status = self.exit.or_else(|| self.child.try_wait().ok().flatten());
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- server (pid {}) exit status: {status:?}; last stderr lines:\n{}",
                self.child.id(),
                tail.join("\n")
            );
        }
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Calls `f` every `interval` until it returns true or `timeout` passes.
pub fn poll_until(timeout: Duration, interval: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(interval);
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (api.md §1 timestamps).
pub fn rfc3339(secs: u64) -> String {
    let (days, sod) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

pub fn is_rfc3339_z(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts that `keys` appear as JSON object keys in this order in the compact body text.
pub fn assert_field_order(body: &str, keys: &[&str]) {
    let mut last = 0;
    for k in keys {
        let pat = format!("\"{k}\":");
        let pos = body
            .find(&pat)
            .unwrap_or_else(|| panic!("field {k} missing in {body}"));
        assert!(
            pos >= last,
            "field {k} out of order in {body} (expected order {keys:?})"
        );
        last = pos;
    }
}
