//! Start-up checks that must happen before any executor exists (ops.md §4):
//! kernel version, io_uring availability and the locked-memory limit. Each
//! failure is one line that names the cause and the fix.

/// Bytes of I/O buffer each executor registers (ops.md §7.3): the server does
/// no storage DMA, so the 64 KiB minimum is enough.
pub const IO_MEMORY: usize = 64 << 10;
/// Locked memory an executor needs beyond `IO_MEMORY` (ring structures on
/// kernels that account them to memlock), a conservative estimate.
const PER_EXECUTOR_EXTRA: u64 = 64 << 10;
/// glommio refuses to start below this limit.
const REACTOR_MIN: u64 = 512 << 10;

pub fn memlock_needed(executors: usize) -> u64 {
    (executors as u64 * (IO_MEMORY as u64 + PER_EXECUTOR_EXTRA)).max(REACTOR_MIN)
}

fn kernel_release() -> Option<(u32, u32, String)> {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let rel: String = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor, rel))
}

const IO_URING_FIX: &str = "needs Linux >= 5.8 with io_uring enabled; under Docker allow io_uring_setup, io_uring_enter and io_uring_register with a seccomp profile (see docs/operations.md)";

/// Tries `io_uring_setup` once and closes the ring.
fn probe_io_uring() -> Result<(), String> {
    let mut params = [0u8; 120]; // struct io_uring_params
                                 // SAFETY: io_uring_setup writes into `params`, which is large enough.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: fd is a descriptor we just created.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// Runs every check; Err is the line to print (exit 1).
pub fn check(executors: usize) -> Result<(), String> {
    if let Some((major, minor, rel)) = kernel_release() {
        if (major, minor) < (5, 8) {
            return Err(format!(
                "io_uring is not available (kernel {rel} is older than 5.8): {IO_URING_FIX}"
            ));
        }
    }
    if let Err(e) = probe_io_uring() {
        return Err(format!(
            "io_uring is not available (io_uring_setup: {e}): {IO_URING_FIX}"
        ));
    }
    let need = memlock_needed(executors);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
        && lim.rlim_cur < need
    {
        return Err(format!(
            "locked-memory limit too low: RLIMIT_MEMLOCK is {} bytes, need {need}; raise it with ulimit -l, docker run --ulimit memlock=-1:-1 or compose ulimits.memlock",
            lim.rlim_cur
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_cores_fit_in_8_mib() {
        assert!(memlock_needed(17) <= 8 << 20);
        assert_eq!(memlock_needed(1), 512 << 10);
    }
}
