//! Micro-benchmarks of the core-local store (`store::Shard`): get hit / miss, put (insert and
//! overwrite through the LWW `apply`), put with eviction at the item limit, for LRU and CLOCK,
//! plus the key hash (`base::hash::xxhash64`) every request computes first.
//!
//!   cargo bench --bench store           # prints ns/op per case, ~5 s
//!
//! Keys are `key-<n>` (the wrk scripts' keys), values 100 bytes, 100 000 keys drawn uniformly
//! by a seeded fastrand generator, so the working set (~20 MB) does not fit in the CPU caches, as with
//! the HTTP harness. `harness = false`; best of 3 timed rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hypercache::base::hash::xxhash64;
use hypercache::store::{Incoming, Policy, Shard, ShardLimits};

const KEYS: usize = 100_000;
const NOW: u64 = 1_700_000_000_000;

fn report(name: &str, best: Duration, iters: u64) {
    println!(
        "{:<44} {:>9.1} ns/op",
        name,
        best.as_nanos() as f64 / iters as f64
    );
}

fn bench(name: &str, iters: u64, mut f: impl FnMut(u64)) {
    for i in 0..iters / 10 {
        f(i);
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for i in 0..iters {
            f(i);
        }
        best = best.min(t.elapsed());
    }
    report(name, best, iters);
}

fn item(value: &[u8], version: u64) -> Incoming<'_> {
    Incoming::Item {
        value,
        version,
        origin: "bench",
        expires_at_ms: 0,
    }
}

fn main() {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|n| format!("key-{n}").into_bytes()).collect();
    let hashes: Vec<u64> = keys.iter().map(|k| xxhash64(k, 0)).collect();
    let value = [b'x'; 100];
    let rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    // Pre-drawn indices so the generator is not part of the measured loop.
    let draws: Vec<usize> = (0..1 << 20).map(|_| rng.usize(..KEYS)).collect();
    let mask = draws.len() - 1;

    bench("xxhash64 key-<n> (9-11 B)", 5_000_000, |i| {
        black_box(xxhash64(black_box(&keys[i as usize % KEYS]), 0));
    });
    let k16 = *b"0123456789abcdef";
    bench("xxhash64 16 B key", 5_000_000, |_| {
        black_box(xxhash64(black_box(&k16), 0));
    });

    for policy in [Policy::Lru, Policy::Clock] {
        let p = policy.as_str();
        let limits = ShardLimits {
            max_items: 2_000_000,
            max_bytes: None,
        };
        // Insert into an empty shard (includes index and slab growth).
        let t = Instant::now();
        let mut shard = Shard::new(limits, policy, 600_000);
        for (k, h) in keys.iter().zip(&hashes) {
            black_box(shard.apply(*h, k, item(&value, 1), NOW, false));
        }
        report(
            &format!("{p}: put insert (100k keys, empty shard)"),
            t.elapsed(),
            KEYS as u64,
        );

        let mut version = 2;
        bench(&format!("{p}: put overwrite (uniform)"), 2_000_000, |i| {
            let j = draws[i as usize & mask];
            version += 1;
            black_box(shard.apply(hashes[j], &keys[j], item(&value, version), NOW, false));
        });
        // A replica's `/internal/batch`: 60 writes at a time, their lookups prefetched first
        // (`Shard::prefetch`); compare with the line above.
        const BATCH: u64 = 60;
        bench(
            &format!("{p}: put overwrite, batches of {BATCH} prefetched"),
            2_000_000,
            |i| {
                if i % BATCH == 0 {
                    let at = |n: u64| hashes[draws[(i + n) as usize & mask]];
                    shard.prefetch((0..BATCH).map(at));
                }
                let j = draws[i as usize & mask];
                version += 1;
                black_box(shard.apply(hashes[j], &keys[j], item(&value, version), NOW, false));
            },
        );
        bench(
            &format!("{p}: get hit + copy 100 B (uniform)"),
            4_000_000,
            |i| {
                let j = draws[i as usize & mask];
                let it = shard.get(hashes[j], &keys[j], NOW).expect("hit");
                black_box(it.value[0]);
            },
        );
        bench(
            &format!("{p}: get hit, same key (cache-hot)"),
            4_000_000,
            |_| {
                let it = shard.get(hashes[7], &keys[7], NOW).expect("hit");
                black_box(it.value[0]);
            },
        );
        let miss: Vec<Vec<u8>> = (0..1024)
            .map(|n| format!("nokey-{n}").into_bytes())
            .collect();
        let mh: Vec<u64> = miss.iter().map(|k| xxhash64(k, 0)).collect();
        bench(&format!("{p}: get miss"), 4_000_000, |i| {
            let j = i as usize & 1023;
            black_box(shard.get(mh[j], &miss[j], NOW).is_none());
        });
        drop(shard);

        // Put at the item limit: every insert of a new key evicts the policy's victim.
        let limit = 50_000u64;
        let mut full = Shard::new(
            ShardLimits {
                max_items: limit,
                max_bytes: None,
            },
            policy,
            600_000,
        );
        for (k, h) in keys.iter().zip(&hashes).take(limit as usize) {
            full.apply(*h, k, item(&value, 1), NOW, false);
        }
        let mut next = limit as usize;
        bench(
            &format!("{p}: put new key + evict one (50k items)"),
            1_000_000,
            |_| {
                let j = next % KEYS;
                next += 1;
                black_box(full.apply(hashes[j], &keys[j], item(&value, next as u64), NOW, false));
            },
        );
        let st = full.stats();
        assert!(st.items <= limit && st.evictions > 0, "{st:?}");
    }
}
