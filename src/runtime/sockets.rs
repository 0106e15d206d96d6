//! Listener sockets, bound on the main thread before any executor starts, so
//! a bind failure is reported (exit 1, ops.md §4) before anything runs, and
//! with port 0 every data core shares the one port the first bind got.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

fn bind_one(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// How long a port held by another listener is retried before start-up fails. A process killed
/// with SIGKILL releases its memory before its file descriptors, so a node restarted right after
/// `kill -9` can find its port still listening for a moment (seconds for a large cache).
const IN_USE_RETRY: Duration = Duration::from_secs(5);
const IN_USE_POLL: Duration = Duration::from_millis(20);

/// The exclusive probe bind, retried while the address is in use: this runs on the main thread
/// before any executor exists, so sleeping here blocks nothing else.
fn probe_exclusive(var: &str, text: &str, addr: SocketAddr) -> std::io::Result<Socket> {
    let deadline = Instant::now() + IN_USE_RETRY;
    let mut warned = false;
    loop {
        match bind_one(addr, false) {
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !warned {
                    log::warn!(
                        "{var}=\"{text}\" is in use; retrying for up to {IN_USE_RETRY:?} \
                         (a previous instance may still be exiting)"
                    );
                    warned = true;
                }
                std::thread::sleep(IN_USE_POLL);
            }
            r => return r,
        }
    }
}

/// Binds `n` listening sockets on `addr` with SO_REUSEPORT (one per data
/// core). Returns the raw fds and the bound address.
pub fn bind_shared(
    var: &str,
    text: &str,
    addr: SocketAddr,
    n: usize,
) -> Result<(Vec<RawFd>, SocketAddr), String> {
    let err = |e: std::io::Error| {
        format!("cannot bind {var}=\"{text}\": {e}; stop the other process or choose another port")
    };
    if addr.port() != 0 {
        // SO_REUSEPORT would let us silently share a port with another
        // server of the same user: probe with an exclusive bind first.
        drop(probe_exclusive(var, text, addr).map_err(err)?);
    }
    let first = bind_one(addr, true).map_err(err)?;
    let bound = first
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    let mut fds = vec![first.into_raw_fd()];
    for _ in 1..n {
        fds.push(bind_one(bound, true).map_err(err)?.into_raw_fd());
    }
    Ok((fds, bound))
}
