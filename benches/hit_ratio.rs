//! Hit ratio of the store's eviction (CLOCK over the log, `store::policy`) against an exact LRU
//! of the same accounted byte budget, on the streams a cache tier sees (issue 9's bench):
//!
//! * Zipf α 0.9 and α 1.1 over 1 M keys;
//! * the α 0.9 stream with scans mixed in: every 50 000 requests, 20 000 keys read once in
//!   sequence (a batch job walking a table), which push hot keys out of an LRU.
//!
//! Cache-aside: a GET that misses is followed by a PUT of the key (100-byte values). The budget
//! is 10 % of the keys' accounted bytes, so both caches evict all the time. The LRU is a plain
//! exact one (hash map plus a recency-ordered tree), with the same accounted size per item
//! (`key + value + ENTRY_OVERHEAD`). Deterministic (seeded).
//!
//!   cargo bench --bench hit_ratio     # ~20 s; prints one line per stream
//!
//! Output: `stream  ours  lru  ours-lru(points)`; exits 1 if ours is more than 1 point below LRU
//! (the target), so `scripts/bench/compare.sh` reports it.

use std::collections::{BTreeMap, HashMap};

use hypercache::store::{key_hash, Incoming, Policy, Shard, ShardLimits, ENTRY_OVERHEAD};

const KEYS: usize = 1_000_000;
const REQUESTS: usize = 6_000_000;
const VALUE: [u8; 100] = [b'v'; 100];
const NOW: u64 = 1_700_000_000_000;

/// Inverse-CDF Zipf sampler over `0..n` (rank 0 hottest).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, alpha: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(alpha);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The key of rank `r`, scattered so hot keys are not adjacent numbers.
fn key(r: usize, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    write!(
        out,
        "key-{}",
        (r as u64).wrapping_mul(0x9e37_79b9) % 10_000_000_019
    )
    .unwrap();
}

fn stream(alpha: f64, scans: bool, seed: u64) -> Vec<u32> {
    let z = Zipf::new(KEYS, alpha);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(REQUESTS + REQUESTS / 2);
    let mut next_cold = KEYS as u32; // scan keys never repeat and are outside the Zipf range
    for i in 0..REQUESTS {
        if scans && i % 50_000 == 0 && i > 0 {
            for _ in 0..20_000 {
                out.push(next_cold);
                next_cold += 1;
            }
        }
        out.push(z.sample(&mut rng) as u32);
    }
    out
}

/// Exact LRU under an accounted byte budget.
struct Lru {
    budget: u64,
    bytes: u64,
    tick: u64,
    at: HashMap<u32, u64>,
    order: BTreeMap<u64, (u32, u64)>,
}

impl Lru {
    fn get(&mut self, k: u32) -> bool {
        let Some(t) = self.at.get_mut(&k) else {
            return false;
        };
        let v = self.order.remove(t).expect("in order");
        self.tick += 1;
        *t = self.tick;
        self.order.insert(self.tick, v);
        true
    }

    fn put(&mut self, k: u32, size: u64) {
        while self.bytes + size > self.budget {
            let (_, (victim, s)) = self.order.pop_first().expect("something to evict");
            self.at.remove(&victim);
            self.bytes -= s;
        }
        self.tick += 1;
        self.at.insert(k, self.tick);
        self.order.insert(self.tick, (k, size));
        self.bytes += size;
    }
}

fn run(name: &str, reqs: &[u32]) -> f64 {
    let mut name_buf = String::new();
    let avg = {
        let mut total = 0u64;
        for r in 0..1000 {
            key(r, &mut name_buf);
            total += name_buf.len() as u64 + VALUE.len() as u64 + ENTRY_OVERHEAD;
        }
        total / 1000
    };
    let budget = avg * KEYS as u64 / 10;
    let limits = ShardLimits {
        max_items: u64::MAX,
        max_bytes: Some(budget),
    };
    let mut shard = Shard::new(limits, Policy::Lru, 60_000);
    let mut lru = Lru {
        budget,
        bytes: 0,
        tick: 0,
        at: HashMap::new(),
        order: BTreeMap::new(),
    };
    let (mut ours, mut theirs) = (0u64, 0u64);
    for &r in reqs {
        key(r as usize, &mut name_buf);
        let k = name_buf.as_bytes();
        let h = key_hash(k);
        if shard.get(h, k, NOW).is_some() {
            ours += 1;
        } else {
            let item = Incoming::Item {
                value: &VALUE,
                version: 1,
                origin: "n1",
                expires_at_ms: 0,
            };
            shard.apply(h, k, item, NOW, false);
        }
        if lru.get(r) {
            theirs += 1;
        } else {
            lru.put(r, k.len() as u64 + VALUE.len() as u64 + ENTRY_OVERHEAD);
        }
    }
    let n = reqs.len() as f64;
    let (o, l) = (ours as f64 / n * 100.0, theirs as f64 / n * 100.0);
    println!(
        "{name:<28} ours {o:6.2} %   exact LRU {l:6.2} %   ours - LRU {:+6.2} points   (memory {:.1} MiB, budget {:.1} MiB)",
        o - l,
        shard.memory_bytes() as f64 / 1048576.0,
        budget as f64 / 1048576.0
    );
    o - l
}

fn main() {
    let mut worst = f64::MAX;
    worst = worst.min(run("zipf 0.9", &stream(0.9, false, 1)));
    worst = worst.min(run("zipf 1.1", &stream(1.1, false, 2)));
    worst = worst.min(run("zipf 0.9 + scans", &stream(0.9, true, 3)));
    if worst < -1.0 {
        eprintln!(
            "hit_ratio: ours is {:.2} points below exact LRU (target: at most 1)",
            -worst
        );
        std::process::exit(1);
    }
}
