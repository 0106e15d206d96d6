//! The deterministic cluster simulator (issue 7 item 5): the real membership state machine,
//! write quorum tracker, hint queues, rebalance core and anti-entropy core of five nodes run in one seeded, single-threaded event
//! loop with message loss, duplication, reordering, partitions, crashes (state lost), pauses
//! and clock offsets; every run checks the invariants in `check.rs` and replays exactly from its
//! seed.
//!
//! - `cargo test --test sim`: `SIM_SEEDS` seeds (default 500) from `SIM_FIRST` (default 0).
//! - `SIM_SEED=n cargo test --test sim -- --nocapture seeds`: one seed, with its scenario.
//! - `scale_report`: a 100-node cluster (`SIM_NODES` to change it, e.g. 1000): gossip rounds for
//!   a join, a failure and a leave to reach every member, ring balance, idle bytes per member.
//!
//! Once a run has settled, every owner of every key must hold the same entry (cluster.md §13):
//! rebalance and anti-entropy must repair what crashes, partitions and lost hints left. With
//! `SIM_NO_AE=1 SIM_NO_RB=1` (both repair paths off) about a quarter of the seeds fail that check.

mod check;
mod node;
mod world;

use hypercache::base::hash::xxhash64;
use hypercache::dist::membership::State;
use hypercache::dist::ring::Ring;
use node::{id, TIMERS};
use world::{Scenario, World};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seed(seed: u64) -> Result<(usize, u64), String> {
    let sc = Scenario::from_seed(seed);
    let mut w = World::new(seed, sc);
    w.run()?;
    Ok((w.history.acked.len(), w.history.failed))
}

#[test]
fn seeds() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        let seed: u64 = s.parse().expect("SIM_SEED must be a number");
        println!("scenario: {:#?}", Scenario::from_seed(seed));
        match run_seed(seed) {
            Ok((acked, failed)) => {
                println!("seed {seed}: ok, {acked} writes acknowledged, {failed} failed")
            }
            Err(e) => panic!("seed {seed}: {e}"),
        }
        return;
    }
    let first = env_u64("SIM_FIRST", 0);
    let count = env_u64("SIM_SEEDS", 500);
    let mut failures = Vec::new();
    let (mut acked, mut failed) = (0, 0);
    for seed in first..first + count {
        match run_seed(seed) {
            Ok((a, f)) => {
                acked += a;
                failed += f;
            }
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  replay: SIM_SEED={seed} cargo test --test sim -- --nocapture seeds"
            )),
        }
    }
    println!("{count} seeds: {acked} writes acknowledged, {failed} failed (no quorum)");
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        acked > count as usize * 100,
        "the load barely ran: {acked} acknowledged writes"
    );
}

/// A run replays exactly: the same seed gives the same history.
#[test]
fn a_seed_replays_exactly() {
    let digest = |seed| {
        let mut w = World::new(seed, Scenario::from_seed(seed));
        w.run().ok();
        let acked: Vec<(String, u64, u64)> = w
            .history
            .acked
            .iter()
            .map(|a| (a.done.key.clone(), a.done.entry.version(), a.at))
            .collect();
        (acked, w.messages, w.bytes)
    };
    assert_eq!(digest(7), digest(7));
    assert_ne!(digest(7).0, digest(8).0);
}

/// Milliseconds from `t0` until `f` holds, checked every 10 ms, at most `limit`.
fn until(w: &mut World, limit: u64, mut f: impl FnMut(&World) -> bool) -> Option<u64> {
    let t0 = w.now;
    while w.now - t0 <= limit {
        if f(w) {
            return Some(w.now - t0);
        }
        let t = w.now + 10;
        w.run_until(t);
    }
    None
}

fn rounds(ms: u64) -> f64 {
    ms as f64 / TIMERS.gossip_ms as f64
}

#[test]
fn scale_report() {
    let n = env_u64("SIM_NODES", 100) as usize;
    let sc = Scenario {
        n,
        loss: 0.0,
        dup: 0.0,
        max_delay_ms: 5,
        offsets: vec![0; n],
        faults: Vec::new(),
        duration_ms: 0,
        settle_ms: 0,
    };
    let mut w = World::empty(1, sc);
    // n - 1 nodes that form one converged cluster (the cold start, where every newly alive
    // member is pushed to everyone, is left out: docs/cluster.md); the last one joins through
    // three seeds.
    let first: Vec<usize> = (0..n - 1).collect();
    w.start_converged(&first);
    w.run_until(5_000);
    let newcomer = n - 1;
    w.start_seeded(newcomer, &[0, 1, 2]);
    let all_see = |w: &World, j: usize, s: State| {
        (0..n)
            .filter(|&i| i != j && w.nodes[i].is_some())
            .all(|i| w.view(i, j) == Some(s))
    };
    let join = until(&mut w, 60_000, |w| all_see(w, newcomer, State::Alive)).expect("join");
    let t_idle = w.now;
    let (m0, b0) = (w.messages, w.bytes);
    w.run_until(t_idle + 10_000);
    let idle_bytes = (w.bytes - b0) as f64 / n as f64 / 10.0;
    let idle_msgs = (w.messages - m0) as f64 / n as f64 / 10.0;
    let victim = n / 2;
    w.crash(victim);
    let fail = until(&mut w, 60_000, |w| all_see(w, victim, State::Dead)).expect("failure");
    let leaver = n / 3;
    w.leave(leaver);
    let leave = until(&mut w, 60_000, |w| all_see(w, leaver, State::Left)).expect("leave");
    let members: Vec<String> = (0..n).map(id).collect();
    let ring = Ring::new(&members, 3);
    let mut per = vec![0u32; n];
    let mut idx = Vec::new();
    for k in 0..100_000 {
        ring.owners_into(xxhash64(format!("key-{k}").as_bytes(), 0), &mut idx);
        per[idx[0] as usize] += 1;
    }
    let (max, min) = (*per.iter().max().unwrap(), *per.iter().min().unwrap());
    println!(
        "{n} nodes (gossip {} ms, heartbeat {} ms, suspicion {}x):\n  \
         join reaches every member in {join} ms ({:.1} gossip rounds)\n  \
         a crash is dead everywhere in {fail} ms ({:.1} rounds)\n  \
         a leave is left everywhere in {leave} ms ({:.1} rounds)\n  \
         idle: {idle_msgs:.1} messages and {idle_bytes:.0} bytes per member per second\n  \
         ring balance over 100 000 keys (primaries): max {max}, min {min}, max/min {:.2}",
        TIMERS.gossip_ms,
        TIMERS.heartbeat_ms,
        TIMERS.suspicion_mult,
        rounds(join),
        rounds(fail),
        rounds(leave),
        max as f64 / min as f64
    );
    // Detection bound of cluster.md §13 invariant 11 (2T + S + G) plus dissemination.
    let bound =
        2 * TIMERS.heartbeat_ms + TIMERS.suspicion_mult * TIMERS.heartbeat_ms + TIMERS.gossip_ms;
    assert!(
        fail <= bound + 20 * TIMERS.gossip_ms,
        "failure took {fail} ms"
    );
    assert!(join <= 40 * TIMERS.gossip_ms && leave <= 40 * TIMERS.gossip_ms);
}
