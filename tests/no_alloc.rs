//! Proves the GET hit path allocates nothing per request: parse the head,
//! route, decode the key, hash, look up the shard, write the response and
//! record metrics, 10 000 times, counting heap allocations on this thread
//! with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use glommio::channels::channel_mesh::MeshBuilder;
use hypercache::api::ClientService;
use hypercache::base::stop::StopSignal;
use hypercache::config::Config;
use hypercache::dist::ring::Ring;
use hypercache::http::parse::{parse_head, Parsed};
use hypercache::http::response::{ConnHeader, Responder};
use hypercache::metrics::CoreMetrics;
use hypercache::runtime::dispatch::{new_peer_map, Dispatcher};
use hypercache::runtime::msg::Msg;
use hypercache::runtime::{CoreCtx, NodeShared};
use hypercache::service::conn::Service;
use hypercache::store::{Hlc, Policy, Shard, ShardLimits};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

async fn one(svc: &ClientService, req: &[u8], out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> u16 {
    let Parsed::Complete(head) = parse_head(req) else {
        panic!("request did not parse")
    };
    let mut r = Responder {
        out,
        scratch,
        head_only: false,
        conn: ConnHeader::Default,
        status: 0,
    };
    let route = svc
        .prepare(&head, hypercache::auth::ConnFacts::default(), &mut r)
        .expect("route");
    svc.call(route, &head, b"", &mut r, &mut Default::default())
        .await;
    let status = r.status;
    svc.observe(0, status, std::time::Duration::from_micros(3));
    out.clear();
    status
}

#[test]
fn get_hit_path_does_not_allocate() {
    exercise(None, "");
}

/// The same with a policy file: resolving the bearer token and checking the
/// route's scope allocate nothing either.
#[test]
fn get_hit_path_with_a_policy_does_not_allocate() {
    let policy = "tokens:\n  - {id: a, token: t0, scopes: [read]}\n  - {id: b, token: tok, scopes: [read, write]}\n";
    exercise(Some(policy), "Authorization: Bearer tok\r\n");
}

fn exercise(policy: Option<&str>, authz: &str) {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(64 << 10)
        .make()
        .expect("executor (needs io_uring)");
    ex.run(async {
        let vars = vec![
            ("HYPERCACHE_NODE_ID".to_string(), "n1".to_string()),
            ("HYPERCACHE_CORES".to_string(), "1".to_string()),
        ];
        let mut config =
            Config::from_vars(&vars, &[0], Some("n1")).unwrap_or_else(|_| panic!("config"));
        config.policy = policy.map(|p| {
            std::sync::Arc::new(hypercache::auth::policy::Policy::parse(p).expect("policy"))
        });
        let addr = "127.0.0.1:1".parse().unwrap();
        let node = NodeShared::new(config, addr, addr, addr, "127.0.0.1:1".into());
        let mesh: MeshBuilder<Msg, _> = MeshBuilder::full(1, 16);
        let (senders, _receivers) = mesh.join().await.expect("mesh");
        let limits = ShardLimits {
            max_items: 1000,
            max_bytes: None,
        };
        let ctx = Rc::new(CoreCtx {
            id: 0,
            cpu: 0,
            cores: 1,
            ring: RefCell::new(std::sync::Arc::new(Ring::new(&["n1".to_string()], 3))),
            shard: RefCell::new(Shard::new(limits, Policy::Lru, 600_000)),
            hlc: RefCell::new(Hlc::new()),
            metrics: CoreMetrics::default(),
            dispatch: Dispatcher::new(senders, 0, &new_peer_map(1)).await,
            listener_stop: StopSignal::new(),
            capacity_items: 1000,
            node,
        });
        let svc = ClientService::new(ctx.clone());
        let mut out = Vec::with_capacity(4096);
        let mut scratch = Vec::with_capacity(4096);
        let put = format!(
            "PUT /v1/cache/user%3A42?ttl=1h HTTP/1.1\r\nHost: x\r\n{authz}Content-Length: 0\r\n\r\n"
        );
        let put = put.as_bytes();
        let before = allocs();
        assert_eq!(one(&svc, put, &mut out, &mut scratch).await, 200);
        // The counter works: storing a new entry allocates its key+value box.
        assert!(
            allocs() > before,
            "allocation counter did not count the PUT"
        );

        let raw = format!("GET /v1/cache/user%3A42 HTTP/1.1\r\nHost: x\r\n{authz}\r\n");
        let json = format!(
            "GET /v1/cache/user%3A42 HTTP/1.1\r\nHost: x\r\n{authz}Accept: application/json\r\n\r\n"
        );
        for req in [raw.as_bytes(), json.as_bytes()] {
            // Warm up: buffers grow to their working size, date cache fills.
            for _ in 0..100 {
                assert_eq!(one(&svc, req, &mut out, &mut scratch).await, 200);
            }
            let before = allocs();
            for _ in 0..10_000 {
                one(&svc, req, &mut out, &mut scratch).await;
            }
            let n = allocs() - before;
            assert_eq!(n, 0, "{n} allocations for 10000 GET hits");
        }
        assert_eq!(ctx.metrics.hits.get(), 20_200);
    });
}
