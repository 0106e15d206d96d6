//! The process allocator: mimalloc for small blocks, the system allocator for large ones.
//!
//! Why two: the cluster paths allocate and free many small blocks per replicated write (peer
//! requests, decoded batch items, queued entries), where glibc's malloc/free and its fastbin
//! consolidation took 15 % of a coordinator's CPU; mimalloc's per-thread free lists cut a
//! replicated PUT's cluster-wide CPU by about 8 % (PERFORMANCE.md, "Replicated PUT"). But the
//! store's memory figure depends on how its big blocks live: a 1 MiB log segment or an index
//! table is its own glibc mapping (`main.rs` pins the mmap threshold), its untouched tail never
//! becomes resident, and it goes back to the kernel when freed. With every block in mimalloc,
//! resident memory per stored item rose from 22 to 38 bytes. So blocks of [`LARGE`] bytes or
//! more go to the system allocator, the rest to mimalloc. The hot GET path allocates nothing
//! either way.
//!
//! A block is freed by the allocator that made it: `dealloc` gets the layout `alloc` (or the
//! last `realloc`) was given, so the size decides the same way both times; a `realloc` across
//! the threshold moves the block between the two.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks this large or larger go to the system allocator: glibc's mmap threshold, which
/// `main.rs` pins at this value.
pub const LARGE: usize = 128 * 1024;

pub struct SplitAlloc;

/// mimalloc's `arena_eager_commit` (mimalloc.h's `mi_option_e`; the crate names no constant).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Called before the first allocation (an `.init_array` entry in `main.rs`): mimalloc commits its arenas page by page as they are used,
/// not whole at reservation. On Linux it commits them eagerly by default, which made an empty
/// node 8 MiB bigger and added 2.5 bytes per stored item (PERFORMANCE.md, memory row).
pub fn configure() {
    // SAFETY: sets an allocator option; mimalloc allows it at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
}

fn large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: every call is forwarded to one of two allocators that uphold GlobalAlloc's contract,
// and a block always returns to the allocator that made it (the size picks it, see above).
unsafe impl GlobalAlloc for SplitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            System.alloc(layout)
        } else {
            MiMalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            System.alloc_zeroed(layout)
        } else {
            MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(layout.size()) {
            System.dealloc(ptr, layout)
        } else {
            MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (large(layout.size()), large(new_size)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) => MiMalloc.realloc(ptr, layout, new_size),
            _ => {
                // Crossing the threshold: a new block from the other allocator.
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grows a block from small to large and back, checking its bytes survive every move and
    /// that each size lands in the allocator the threshold names (mimalloc knows its own blocks).
    #[test]
    fn blocks_keep_their_bytes_across_the_threshold_and_free_where_they_were_made() {
        let a = SplitAlloc;
        unsafe {
            let small = Layout::from_size_align(1000, 8).unwrap();
            let p = a.alloc(small);
            assert!(!p.is_null());
            assert!(
                libmimalloc_sys::mi_is_in_heap_region(p.cast()),
                "small: mimalloc"
            );
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let p = a.realloc(p, small, LARGE + 10);
            assert!(
                !libmimalloc_sys::mi_is_in_heap_region(p.cast()),
                "large: system"
            );
            for i in 0..1000 {
                assert_eq!(*p.add(i), (i % 251) as u8);
            }
            let big = Layout::from_size_align(LARGE + 10, 8).unwrap();
            let p = a.realloc(p, big, 500);
            assert!(
                libmimalloc_sys::mi_is_in_heap_region(p.cast()),
                "small again: mimalloc"
            );
            for i in 0..500 {
                assert_eq!(*p.add(i), (i % 251) as u8);
            }
            a.dealloc(p, Layout::from_size_align(500, 8).unwrap());
            let z = a.alloc_zeroed(big);
            assert!((0..big.size()).all(|i| *z.add(i) == 0));
            a.dealloc(z, big);
        }
    }

    /// Reallocations that stay on one side keep their bytes, and zeroed small blocks are zero
    /// even where a freed block full of bytes is reused.
    #[test]
    fn same_side_reallocs_and_zeroed_small_blocks() {
        let a = SplitAlloc;
        unsafe {
            for (from, to) in [
                (64, 4000),
                (4000, 64),
                (LARGE, 4 * LARGE),
                (4 * LARGE, LARGE),
            ] {
                let l = Layout::from_size_align(from, 16).unwrap();
                let p = a.alloc(l);
                for i in 0..from {
                    *p.add(i) = (i % 253) as u8;
                }
                let q = a.realloc(p, l, to);
                assert!((0..from.min(to)).all(|i| *q.add(i) == (i % 253) as u8));
                assert_eq!(q as usize % 16, 0, "alignment kept");
                a.dealloc(q, Layout::from_size_align(to, 16).unwrap());
            }
            let l = Layout::from_size_align(256, 8).unwrap();
            for _ in 0..64 {
                let p = a.alloc(l);
                std::ptr::write_bytes(p, 0xff, 256);
                a.dealloc(p, l);
                let z = a.alloc_zeroed(l);
                assert!((0..256).all(|i| *z.add(i) == 0));
                a.dealloc(z, l);
            }
        }
    }
}
