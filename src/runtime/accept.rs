//! Accept loop: one per listener per core. Enforces the connection cap and
//! spawns one task per connection into the listener's task queue; on a TLS
//! listener that task starts with the handshake, so a slow handshake never
//! holds up the accept loop. On the client listener it also evens out the
//! connections over the data cores ([`super::balance`]): a new connection may
//! be handed to a core that serves fewer, and a second task serves the ones
//! other cores hand to this one.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::local_channel::LocalReceiver;
use glommio::net::{TcpListener, TcpStream};
use glommio::TaskQueueHandle;

use super::balance::Loads;
use crate::base::stop::StopSignal;
use crate::service::conn::{serve, Service};
use crate::service::watch::Watch;
use crate::tls::Acceptor;

/// The client listener's share in spreading connections over the data cores.
pub struct Spread {
    pub loads: Arc<Loads>,
    /// This data core.
    pub me: usize,
    /// Sockets other cores handed to this one.
    pub adopted: LocalReceiver<OwnedFd>,
    /// Hands a socket to another core (`Op::Adopt` over the mesh).
    pub hand_off: Rc<dyn Fn(usize, OwnedFd)>,
}

impl Spread {
    /// Serves `stream` here, or hands it to a core with fewer connections
    /// (None). Counts it on the core that serves it.
    fn route(&self, stream: TcpStream) -> Option<TcpStream> {
        let to = self.loads.place(self.me);
        if to == self.me {
            return Some(stream);
        }
        // The socket outlives this `TcpStream`: its duplicate (close-on-exec, owned)
        // crosses the mesh.
        // SAFETY: the descriptor stays open while `stream` lives, past this borrow.
        let borrowed = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        match borrowed.try_clone_to_owned() {
            Ok(fd) => {
                drop(stream);
                (self.hand_off)(to, fd);
                None
            }
            Err(_) => {
                self.loads.moved(to, self.me);
                Some(stream)
            }
        }
    }
}

/// Spawns connection tasks for one listener on one core.
struct Spawner<S> {
    svc: Rc<S>,
    stop: StopSignal,
    cap: u64,
    open: Box<dyn Fn(i64) -> u64>,
    rejected: Box<dyn Fn()>,
    watch: Rc<Watch>,
    tls: Option<Rc<Acceptor>>,
    tq: TaskQueueHandle,
    /// The client listener's connection counts (runtime::balance).
    spread: Option<Rc<Spread>>,
}

impl<S: Service + 'static> Spawner<S> {
    /// A connection counted on this core closed or was refused here.
    fn uncount(&self) {
        if let Some(s) = &self.spread {
            s.loads.closed(s.me);
        }
    }

    /// Whether this core is at its connection cap (the connection is then
    /// refused and counted).
    fn full(&self) -> bool {
        if (self.open)(0) >= self.cap {
            (self.rejected)();
            return true;
        }
        false
    }

    fn spawn(self: &Rc<Self>, stream: TcpStream) {
        (self.open)(1);
        let me = self.clone();
        glommio::spawn_local_into(
            async move {
                serve(&*me.svc, stream, me.tls.as_deref(), &me.stop, &me.watch).await;
                (me.open)(-1);
                me.uncount();
            },
            self.tq,
        )
        .expect("spawn connection task")
        .detach();
    }
}

// One call site per listener; the arguments are that listener's settings.
#[allow(clippy::too_many_arguments)]
pub async fn accept_loop<S: Service + 'static>(
    listener: TcpListener,
    svc: Rc<S>,
    stop: StopSignal,
    cap: u64,
    open: impl Fn(i64) -> u64 + 'static,
    rejected: impl Fn() + 'static,
    tls: Option<Rc<Acceptor>>,
    tq: TaskQueueHandle,
    spread: Option<Spread>,
) {
    let watch = Rc::new(Watch::default());
    glommio::spawn_local_into(watch.clone().sweeper(stop.clone()), tq)
        .expect("spawn connection sweeper")
        .detach();
    let spread = spread.map(Rc::new);
    let spawner = Rc::new(Spawner {
        svc,
        stop: stop.clone(),
        cap,
        open: Box::new(open),
        rejected: Box::new(rejected),
        watch,
        tls,
        tq,
        spread: spread.clone(),
    });
    if let Some(s) = &spread {
        // Its own task, so the accept below is never dropped mid-flight (a
        // cancelled io_uring accept can lose a connection it already took).
        glommio::spawn_local_into(adopt_loop(s.clone(), spawner.clone()), tq)
            .expect("spawn adopt loop")
            .detach();
    }
    loop {
        let accepted = match stop.race(listener.accept()).await {
            None => break,
            Some(a) => a,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                log::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if spawner.full() {
            drop(stream);
            continue;
        }
        let stream = match &spread {
            Some(s) => match s.route(stream) {
                Some(stream) => stream,
                None => continue,
            },
            None => stream,
        };
        spawner.spawn(stream);
    }
    if let Some(s) = &spread {
        // No more hand-offs to a core that no longer serves new connections.
        s.loads.stop(s.me);
    }
    drop(listener);
}

/// Serves the connections other cores hand to this one, until the listener stops.
async fn adopt_loop<S: Service + 'static>(spread: Rc<Spread>, spawner: Rc<Spawner<S>>) {
    while let Some(Some(fd)) = spawner.stop.race(spread.adopted.recv()).await {
        // SAFETY: a connected socket another core duplicated for this one, owned from here on.
        let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
        if spawner.full() {
            spawner.uncount();
            drop(stream);
            continue;
        }
        spawner.spawn(stream);
    }
    // Stopped: close what is still queued.
    while let Some(Some(fd)) = futures_lite::future::poll_once(spread.adopted.recv()).await {
        drop(fd);
        spawner.uncount();
    }
}
