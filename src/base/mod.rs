//! The bottom layer: small helpers every other module may use and that use nothing of ours.
//! The process allocator (mimalloc for small blocks, the system's for large ones), the key hash
//! (XXH64, shared by ring placement, shard choice and scans), the wall clock, the core-local stop
//! signal and the rate limit for repeated warnings.

pub mod alloc;
pub mod clock;
pub mod hash;
pub mod stop;
pub mod warn_limit;

pub use clock::{now_ms, now_us};
