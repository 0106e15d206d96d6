//! Even client connections over the data cores (issue 9, item 2).
//!
//! SO_REUSEPORT hands a new connection to a listener by a hash of its
//! addresses: 64 connections split 33/31, 35/29 or 36/28 over two cores in
//! three wrk runs. A connection then stays on its core for life, so an uneven
//! split is uneven load for as long as the clients keep their connections.
//! So each data core's accept loop asks [`Loads::place`] where a connection it
//! accepted goes: to itself, unless another core serves fewer client
//! connections, in which case the socket is handed to that core over
//! the mesh (`Op::Adopt`) before any byte or TLS handshake is read.
//!
//! The counts are one atomic per core, touched when a connection opens or
//! closes, never per request. A hand-off counts the connection on its new
//! core at once, so a burst of accepts (wrk opening 64 connections) does not
//! pile onto the same core before the first adoption arrives.

use std::sync::atomic::{AtomicU32, Ordering};

/// The count of a core whose listener stopped: above any real count, so
/// `pick` never chooses it (closes on it still subtract from it harmlessly).
const STOPPED: u32 = u32::MAX / 2;

/// Open client connections per data core, shared by the cores.
pub struct Loads {
    open: Box<[AtomicU32]>,
}

/// Where core `me` should serve a new connection, given every core's open
/// connections (before this one): the least-loaded core when it serves fewer,
/// else `me`. The counts then never differ by more than one.
pub fn pick(loads: &[u32], me: usize) -> usize {
    pick_by(loads.len(), |i| loads[i], me)
}

/// [`pick`] over `cores` counts read through `load` (no collection per accept).
fn pick_by(cores: usize, load: impl Fn(usize) -> u32, me: usize) -> usize {
    let (least, min) = (0..cores)
        .map(|i| (i, load(i)))
        .min_by_key(|&(i, n)| (n, i != me))
        .expect("at least one core");
    if min < load(me) {
        least
    } else {
        me
    }
}

impl Loads {
    pub fn new(cores: usize) -> Loads {
        Loads {
            open: (0..cores).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Picks the core for a connection core `me` accepted and counts it there.
    pub fn place(&self, me: usize) -> usize {
        let to = pick_by(
            self.open.len(),
            |i| self.open[i].load(Ordering::Relaxed),
            me,
        );
        self.open[to].fetch_add(1, Ordering::Relaxed);
        to
    }

    /// Core `core` stopped accepting (shutdown): never hand it another connection.
    pub fn stop(&self, core: usize) {
        self.open[core].store(STOPPED, Ordering::Relaxed);
    }

    /// A connection counted on `core` closed (or was refused there).
    pub fn closed(&self, core: usize) {
        self.open[core].fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection counted on `from` is served by `to` after all.
    pub fn moved(&self, from: usize, to: usize) {
        self.closed(from);
        self.open[to].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, core: usize) -> u32 {
        self.open[core].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_connection_unless_another_core_has_fewer() {
        assert_eq!(pick(&[0, 0], 0), 0);
        assert_eq!(pick(&[1, 0], 0), 1);
        assert_eq!(pick(&[0, 1], 0), 0);
        assert_eq!(pick(&[5, 3, 4], 0), 1);
        assert_eq!(pick(&[3, 5, 3], 1), 0, "ties go to the lowest index");
        assert_eq!(pick(&[3, 4, 3], 2), 2, "a tie with this core stays here");
        assert_eq!(pick(&[7], 0), 0);
    }

    #[test]
    fn accepts_all_on_one_core_still_spread_evenly() {
        // The worst SO_REUSEPORT case: every connection arrives on core 0.
        let loads = Loads::new(3);
        for _ in 0..64 {
            loads.place(0);
        }
        let per: Vec<u32> = (0..3).map(|c| loads.get(c)).collect();
        assert_eq!(per.iter().sum::<u32>(), 64);
        assert!(
            per.iter().max().unwrap() - per.iter().min().unwrap() <= 1,
            "{per:?}"
        );
    }

    #[test]
    fn closes_and_moves_keep_the_counts() {
        let loads = Loads::new(2);
        assert_eq!(loads.place(1), 1);
        assert_eq!(loads.place(1), 0, "the second goes to the core with fewer");
        assert_eq!(loads.place(0), 0);
        loads.moved(0, 1);
        assert_eq!((loads.get(0), loads.get(1)), (1, 2));
        loads.closed(1);
        loads.closed(1);
        loads.closed(0);
        assert_eq!((loads.get(0), loads.get(1)), (0, 0));
        loads.stop(0);
        assert_eq!(loads.place(1), 1, "a stopped core gets no hand-offs");
        assert_eq!(loads.place(1), 1);
    }
}
