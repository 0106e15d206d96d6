//! Multi-process cluster harness (cluster.md): starts N `hypercache-server` nodes on loopback
//! with pre-allocated dist ports and `id@host:port` seeds, short membership timers and a shared
//! token, and waits until every node sees every other node `alive`.
//!
//! Cluster tests serialize on a file lock under `CARGO_TARGET_TMPDIR`, so that at most one
//! cluster runs at a time (also across test binaries): timing bounds of cluster.md §13 assume
//! nodes that are not starved of CPU.

use super::{poll_until, Client, Response, TestNode};
use serde_json::Value;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";
/// Membership timers used by every cluster (cluster.md §0): T, G and the suspicion multiplier.
pub const T_MS: u64 = 200;
pub const G_MS: u64 = 200;
pub const SUSPICION_MULT: u64 = 3;
/// Generous bound for a whole cluster to form.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(15);

/// Holds an exclusive `flock` on a file shared by every cluster test.
struct ClusterLock(File);

impl ClusterLock {
    fn acquire() -> ClusterLock {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-tests.lock");
        let f = File::create(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        // SAFETY: flock on a valid, owned file descriptor.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {path:?}");
        ClusterLock(f)
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // SAFETY: valid fd; the lock is also released when the file closes.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// `n` distinct free loopback ports (bound, read, released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~` (cluster.md §12.1).
pub fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// One request on a fresh connection; connection or read failures are an `Err`.
pub fn try_req(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let mut conn = super::Conn::try_open(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    if !conn.try_send(&super::build_request(method, target, &h, body)) {
        return Err(format!("{method} {target}: write failed"));
    }
    conn.try_read_response(method == "HEAD")
        .map_err(|e| format!("{method} {target}: {e}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub address: String,
    pub api_address: String,
    pub state: String,
    pub incarnation: u64,
}

/// One slot of the cluster: the node's fixed identity plus the running process (if any).
pub struct Slot {
    pub id: String,
    pub dist_port: u16,
    pub seeds: String,
    pub node: Option<TestNode>,
    /// API and management ports of the last run (restart tries to reuse them).
    last_ports: Option<(u16, u16)>,
}

pub struct TestCluster {
    pub slots: Vec<Slot>,
    pub extra_env: Vec<(String, String)>,
    _lock: ClusterLock,
}

fn base_env(
    id: &str,
    dist_port: u16,
    seeds: &str,
    api_port: u16,
    mgmt_port: u16,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HYPERCACHE_NODE_ID".into(), id.into()),
        (
            "HYPERCACHE_API_ADDR".into(),
            format!("127.0.0.1:{api_port}"),
        ),
        (
            "HYPERCACHE_MGMT_ADDR".into(),
            format!("127.0.0.1:{mgmt_port}"),
        ),
        (
            "HYPERCACHE_DIST_ADDR".into(),
            format!("127.0.0.1:{dist_port}"),
        ),
        ("HYPERCACHE_SEEDS".into(), seeds.into()),
        ("HYPERCACHE_AUTH_TOKEN".into(), TOKEN.into()),
        // No load balancer in front of test clusters: stops need no grace.
        ("HYPERCACHE_DRAIN_GRACE".into(), "0s".into()),
        ("HYPERCACHE_HEARTBEAT".into(), format!("{T_MS}ms")),
        ("HYPERCACHE_GOSSIP_INTERVAL".into(), format!("{G_MS}ms")),
        (
            "HYPERCACHE_SUSPICION_MULT".into(),
            SUSPICION_MULT.to_string(),
        ),
        ("HYPERCACHE_SHUTDOWN_TIMEOUT".into(), "5s".into()),
        ("HYPERCACHE_LOG_LEVEL".into(), "info".into()),
    ];
    // Every cluster test runs both executor layouts: nodes whose id ends in an odd digit get
    // one CPU, so their data and control cores share one executor (server::shares_one_executor);
    // the others get the whole mask, a control executor of their own and the core mesh.
    if id
        .bytes()
        .last()
        .is_some_and(|b| b.is_ascii_digit() && b % 2 == 1)
    {
        env.push(("HYPERCACHE_CPU_SET".into(), last_allowed_cpu()));
    }
    env
}

/// The highest CPU this process may run on (`Cpus_allowed_list` of /proc/self/status).
fn last_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/self/status")
        .trim();
    list.rsplit([',', '-']).next().expect("a CPU").to_string()
}

fn spawn_node(
    id: &str,
    dist_port: u16,
    seeds: &str,
    ports: (u16, u16),
    extra: &[(String, String)],
) -> TestNode {
    let mut env = base_env(id, dist_port, seeds, ports.0, ports.1);
    env.extend(extra.iter().cloned());
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestNode::spawn(1, &refs)
}

fn is_bind_race(err: &str) -> bool {
    err.contains("cannot bind") || err.contains("Address already in use")
}

impl TestCluster {
    /// `n` nodes `node-1..node-n`, each seeded with all others as `id@host:port`.
    pub fn start(n: usize, extra_env: &[(&str, &str)]) -> TestCluster {
        let ids: Vec<String> = (1..=n).map(|i| format!("node-{i}")).collect();
        TestCluster::start_ids(&ids, extra_env)
    }

    pub fn start_ids(ids: &[String], extra_env: &[(&str, &str)]) -> TestCluster {
        let lock = ClusterLock::acquire();
        let extra: Vec<(String, String)> = extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let n = ids.len();
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let ports = free_ports(n);
            let mut slots: Vec<Slot> = (0..n)
                .map(|i| {
                    let seeds: Vec<String> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| format!("{}@127.0.0.1:{}", ids[j], ports[j]))
                        .collect();
                    Slot {
                        id: ids[i].clone(),
                        dist_port: ports[i],
                        seeds: seeds.join(","),
                        node: None,
                        last_ports: None,
                    }
                })
                .collect();
            for s in slots.iter_mut() {
                s.node = Some(spawn_node(&s.id, s.dist_port, &s.seeds, (0, 0), &extra));
            }
            let mut failed = None;
            for s in slots.iter_mut() {
                let node = s.node.as_mut().unwrap();
                if let Err(e) = node.wait_started(super::START_TIMEOUT) {
                    failed = Some(e);
                    break;
                }
                s.last_ports = Some((node.api().port(), node.mgmt().port()));
            }
            match failed {
                None => {
                    let c = TestCluster {
                        slots,
                        extra_env: extra,
                        _lock: lock,
                    };
                    c.wait_formed(FORM_TIMEOUT);
                    return c;
                }
                Some(e) if is_bind_race(&e) => {
                    last_err = e;
                    drop(slots); // kills the started nodes
                    continue;
                }
                Some(e) => panic!("cluster start failed: {e}"),
            }
        }
        panic!("cluster start failed 5 times on port races; last: {last_err}");
    }

    /// Adds a new node (not started with the others) with the given seed list; waits for its
    /// start line only. Returns its index.
    pub fn add_node(&mut self, id: &str, seeds: &str) -> usize {
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_ports(1)[0];
            let mut node = spawn_node(id, port, seeds, (0, 0), &self.extra_env);
            match node.wait_started(super::START_TIMEOUT) {
                Ok(()) => {
                    let lp = (node.api().port(), node.mgmt().port());
                    self.slots.push(Slot {
                        id: id.to_string(),
                        dist_port: port,
                        seeds: seeds.to_string(),
                        node: Some(node),
                        last_ports: Some(lp),
                    });
                    return self.slots.len() - 1;
                }
                Err(e) if is_bind_race(&e) => last_err = e,
                Err(e) => panic!("add_node {id}: {e}"),
            }
        }
        panic!("add_node {id}: port races; last: {last_err}");
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn id(&self, i: usize) -> &str {
        &self.slots[i].id
    }
    pub fn ids(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.id.clone()).collect()
    }
    pub fn index_of(&self, id: &str) -> usize {
        self.slots
            .iter()
            .position(|s| s.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }
    pub fn is_running(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }
    /// Indexes of the nodes currently running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_running(i)).collect()
    }
    pub fn node(&self, i: usize) -> &TestNode {
        self.slots[i]
            .node
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.slots[i].id))
    }
    pub fn node_mut(&mut self, i: usize) -> &mut TestNode {
        let id = self.slots[i].id.clone();
        self.slots[i]
            .node
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }
    pub fn dist_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.slots[i].dist_port))
    }
    /// `id@127.0.0.1:port` of node i.
    pub fn seed_of(&self, i: usize) -> String {
        format!("{}@127.0.0.1:{}", self.slots[i].id, self.slots[i].dist_port)
    }
    pub fn api(&self, i: usize) -> Client {
        self.node(i).api_client()
    }
    pub fn mgmt(&self, i: usize) -> Client {
        self.node(i).mgmt_client()
    }
    /// Client on the dist listener with the token.
    pub fn dist(&self, i: usize) -> Client {
        Client::new(self.dist_addr(i), Some(TOKEN))
    }
    pub fn dist_anon(&self, i: usize) -> Client {
        Client::new(self.dist_addr(i), None)
    }

    // ---- process control ----

    /// SIGKILL and reap.
    pub fn kill(&mut self, i: usize) {
        let mut node = self.slots[i].node.take().expect("node not running");
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(node.pid() as libc::pid_t, libc::SIGKILL) };
        node.wait_exit(Duration::from_secs(5));
    }

    /// SIGTERM and wait for the exit (SHUTDOWN_TIMEOUT is 5 s in these clusters).
    pub fn stop(&mut self, i: usize) -> std::process::ExitStatus {
        let mut node = self.slots[i].node.take().expect("node not running");
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(node.pid() as libc::pid_t, libc::SIGTERM) };
        node.wait_exit(Duration::from_secs(10))
    }

    /// Starts node i again with its id, dist port, seeds and env (API/management ports reused
    /// when still free). Waits for the start line only.
    pub fn restart(&mut self, i: usize) {
        assert!(
            self.slots[i].node.is_none(),
            "node {} still running",
            self.id(i)
        );
        let mut last_err = String::new();
        for attempt in 0..10 {
            let ports = if attempt == 0 {
                self.slots[i].last_ports.unwrap_or((0, 0))
            } else {
                (0, 0)
            };
            let s = &self.slots[i];
            let mut node = spawn_node(&s.id, s.dist_port, &s.seeds, ports, &self.extra_env);
            match node.wait_started(super::START_TIMEOUT) {
                Ok(()) => {
                    self.slots[i].last_ports = Some((node.api().port(), node.mgmt().port()));
                    self.slots[i].node = Some(node);
                    return;
                }
                Err(e) if is_bind_race(&e) => {
                    last_err = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("restart {}: {e}", self.id(i)),
            }
        }
        panic!("restart {}: could not bind; last: {last_err}", self.id(i));
    }

    // ---- views ----

    /// `/cluster/members` of node i (management listener).
    pub fn try_members(&self, i: usize) -> Result<Vec<Member>, String> {
        let n = self.node(i);
        let r = try_req(n.mgmt(), Some(TOKEN), "GET", "/cluster/members", &[], None)?;
        if r.status != 200 {
            return Err(format!("/cluster/members: {}", r.describe()));
        }
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        let arr = v["members"]
            .as_array()
            .ok_or_else(|| format!("no members array: {v}"))?;
        Ok(arr
            .iter()
            .map(|m| Member {
                id: m["ID"].as_str().unwrap_or_default().to_string(),
                address: m["Address"].as_str().unwrap_or_default().to_string(),
                api_address: m["APIAddress"].as_str().unwrap_or("<missing>").to_string(),
                state: m["State"].as_str().unwrap_or_default().to_string(),
                incarnation: m["Incarnation"].as_u64().unwrap_or(u64::MAX),
            })
            .collect())
    }
    pub fn members(&self, i: usize) -> Vec<Member> {
        self.try_members(i)
            .unwrap_or_else(|e| panic!("members of {}: {e}", self.id(i)))
    }
    /// Node i's view of member `id`.
    pub fn member(&self, i: usize, id: &str) -> Option<Member> {
        self.try_members(i)
            .ok()
            .and_then(|ms| ms.into_iter().find(|m| m.id == id))
    }
    pub fn state_of(&self, i: usize, id: &str) -> Option<String> {
        self.member(i, id).map(|m| m.state)
    }
    /// `/cluster/ring` of node i: (count, vnodes).
    pub fn ring(&self, i: usize) -> (u64, Vec<String>) {
        let v = self.mgmt_json(i, "/cluster/ring");
        let vn = v["vnodes"]
            .as_array()
            .unwrap_or_else(|| panic!("ring vnodes: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect();
        (v["count"].as_u64().unwrap_or(u64::MAX), vn)
    }
    /// Distinct ids in node i's ring.
    pub fn ring_ids(&self, i: usize) -> Vec<String> {
        let mut ids: Vec<String> = self
            .ring(i)
            .1
            .iter()
            .filter_map(|s| s.split_once(':').map(|(_, id)| id.to_string()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
    pub fn mgmt_json(&self, i: usize, path: &str) -> Value {
        let r = try_req(self.node(i).mgmt(), Some(TOKEN), "GET", path, &[], None)
            .unwrap_or_else(|e| panic!("{} GET {path}: {e}", self.id(i)));
        assert_eq!(r.status, 200, "{} GET {path}: {}", self.id(i), r.describe());
        r.json()
    }
    /// `/dist/metrics` of node i.
    pub fn metrics(&self, i: usize) -> Value {
        self.mgmt_json(i, "/dist/metrics")
    }
    pub fn metric(&self, i: usize, field: &str) -> u64 {
        let v = self.metrics(i);
        v[field].as_u64().unwrap_or_else(|| {
            panic!(
                "{field} missing or not u64 in /dist/metrics of {}: {v}",
                self.id(i)
            )
        })
    }
    /// `/v1/owners/{key}` on node i.
    pub fn owners(&self, i: usize, key: &str) -> Vec<String> {
        let r = self.api(i).get(&format!("/v1/owners/{}", pct(key)));
        assert_eq!(
            r.status,
            200,
            "owners {key} on {}: {}",
            self.id(i),
            r.describe()
        );
        let v = r.json();
        v["owners"]
            .as_array()
            .unwrap_or_else(|| panic!("owners not an array: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }
    /// `GET /internal/get?key=K` on node i's dist listener (authenticated).
    pub fn internal_get(&self, i: usize, key: &str) -> Value {
        let r = self.dist(i).get(&format!("/internal/get?key={}", pct(key)));
        assert_eq!(
            r.status,
            200,
            "internal/get {key} on {}: {}",
            self.id(i),
            r.describe()
        );
        r.json()
    }
    /// (version, origin, value bytes) of node i's live item for key, if any.
    pub fn held(&self, i: usize, key: &str) -> Option<(u64, String, Vec<u8>)> {
        let v = self.internal_get(i, key);
        if v["found"] != true {
            return None;
        }
        let it = &v["item"];
        use base64::Engine;
        let val = base64::engine::general_purpose::STANDARD
            .decode(
                it["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("item value: {v}")),
            )
            .unwrap_or_else(|e| panic!("item value base64 {e}: {v}"));
        Some((
            it["version"]
                .as_u64()
                .unwrap_or_else(|| panic!("item version: {v}")),
            it["origin"].as_str().unwrap_or_default().to_string(),
            val,
        ))
    }

    // ---- waiting ----

    /// Waits until every running node lists exactly the running nodes as `alive` (plus any
    /// non-running members in another state) and its ring holds 64 vnodes per running node.
    pub fn wait_formed(&self, timeout: Duration) {
        let running: Vec<String> = self
            .running()
            .iter()
            .map(|&i| self.id(i).to_string())
            .collect();
        let ok = poll_until(timeout, Duration::from_millis(50), || {
            self.running().iter().all(|&i| {
                let Ok(ms) = self.try_members(i) else {
                    return false;
                };
                running
                    .iter()
                    .all(|id| ms.iter().any(|m| &m.id == id && m.state == "alive"))
                    && self.ring(i).0 == 64 * running.len() as u64
            })
        });
        if !ok {
            let views: Vec<String> = self
                .running()
                .iter()
                .map(|&i| format!("{}: {:?}", self.id(i), self.try_members(i)))
                .collect();
            panic!(
                "cluster did not form within {timeout:?} (want {running:?} alive everywhere):\n{}",
                views.join("\n")
            );
        }
    }

    /// Polls `f` until true or the deadline; returns the elapsed time on success.
    pub fn wait(&self, timeout: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
        let t0 = Instant::now();
        if !poll_until(timeout, Duration::from_millis(20), &mut f) {
            let views: Vec<String> = self
                .running()
                .iter()
                .map(|&i| format!("{}: {:?}", self.id(i), self.try_members(i)))
                .collect();
            panic!(
                "{what}: not reached within {timeout:?}; members:\n{}",
                views.join("\n")
            );
        }
        t0.elapsed()
    }
}

// ---- client-side helpers shared by the cluster tests ----

/// `PUT /v1/cache/{key}`; asserts 200 and returns the JSON body.
pub fn put_ok(c: &Client, key: &str, value: &[u8]) -> Value {
    let r = c.put(&format!("/v1/cache/{}", pct(key)), value);
    assert_eq!(r.status, 200, "PUT {key} via {}: {}", c.addr, r.describe());
    r.json()
}

/// `GET /v1/cache/{key}` raw: Some(bytes) on 200, None on 404, panics otherwise.
pub fn get_raw(c: &Client, key: &str) -> Option<Vec<u8>> {
    let r = c.get(&format!("/v1/cache/{}", pct(key)));
    match r.status {
        200 => {
            assert_eq!(
                r.header("content-type"),
                Some("application/octet-stream"),
                "GET {key}: {}",
                r.describe()
            );
            Some(r.body)
        }
        404 => None,
        _ => panic!("GET {key} via {}: {}", c.addr, r.describe()),
    }
}

/// `GET /v1/cache/{key}` with `Accept: application/json`: the envelope on 200, None on 404.
pub fn get_env(c: &Client, key: &str) -> Option<Value> {
    let r = c.get_with(
        &format!("/v1/cache/{}", pct(key)),
        &[("Accept", "application/json")],
    );
    match r.status {
        200 => Some(r.json()),
        404 => None,
        _ => panic!("GET(json) {key} via {}: {}", c.addr, r.describe()),
    }
}

/// `X-Cache-Version` of a HEAD, None on 404.
pub fn head_version(c: &Client, key: &str) -> Option<u64> {
    let r = c.head(&format!("/v1/cache/{}", pct(key)));
    match r.status {
        200 => Some(
            r.header("x-cache-version")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("HEAD {key}: bad X-Cache-Version: {}", r.describe())),
        ),
        404 => None,
        _ => panic!("HEAD {key} via {}: {}", c.addr, r.describe()),
    }
}

pub fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}
