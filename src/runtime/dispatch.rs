//! Request/reply between cores: over the glommio channel mesh, or by direct call when the
//! two cores share one executor.
//!
//! Every executor (data cores 0..N-1, the control core N) joins one full mesh
//! of [`Msg`]. A caller registers a waiter slot, sends `Req{id}` to the target
//! core and awaits the slot; the receiving core's loop runs the op and sends
//! `Rep{id}` back, and this core's receive loop fills the slot and wakes the
//! caller. Receive loops never block on a send (a full reply channel is
//! handled by a spawned task), so two cores answering each other cannot
//! deadlock on bounded channels.
//!
//! A node with one data core whose control core shares its CPU runs both on one executor
//! ([`Link::Local`], docs/operations.md "One data core"): two threads on one CPU paid a
//! kernel context switch and a cross-thread wake-up per hop, about a third of a replica's
//! CPU (PERFORMANCE.md). There a send runs the other side's handler at once, in the caller's
//! turn; a `Later` answer runs as a task in the handler's queue. Handlers are synchronous and
//! neither side holds a `RefCell` borrow across a send, so the nested call cannot conflict.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};

use super::msg::{Msg, Op, Reply};

enum Slot {
    Free(Option<u32>),
    Waiting(Option<Waker>),
    Done(Reply),
    /// The caller went away; the late reply frees the slot.
    Abandoned,
}

/// Pending replies of this core, indexed by request id (a slab).
#[derive(Default)]
struct Pending {
    slots: Vec<Slot>,
    free: Option<u32>,
}

impl Pending {
    fn alloc(&mut self) -> u32 {
        match self.free {
            Some(i) => {
                let Slot::Free(next) = self.slots[i as usize] else {
                    unreachable!("free list points at a used slot")
                };
                self.free = next;
                self.slots[i as usize] = Slot::Waiting(None);
                i
            }
            None => {
                self.slots.push(Slot::Waiting(None));
                (self.slots.len() - 1) as u32
            }
        }
    }
    fn release(&mut self, i: u32) {
        self.slots[i as usize] = Slot::Free(self.free);
        self.free = Some(i);
    }
}

/// How a core answers a request: at once, or after async work (the control
/// core's replication and remote reads).
pub enum Handled {
    Now(Reply),
    Later(Pin<Box<dyn Future<Output = Reply>>>),
}

type Handler = (Rc<dyn Fn(Op) -> Handled>, glommio::TaskQueueHandle);

pub struct Dispatcher {
    /// None when this core's only peer shares its executor.
    senders: Option<Senders<Msg>>,
    pending: RefCell<Pending>,
    /// Logical core id (data cores 0..N-1, control N) -> mesh peer id. The
    /// mesh numbers peers in the order they joined, which is not ours.
    to_mesh: Vec<usize>,
    /// The core on this executor: its logical id and dispatcher ([`Link::Local`]).
    local: RefCell<Option<(usize, Rc<Dispatcher>)>>,
    /// How this core answers; set by [`Dispatcher::spawn_receivers`].
    handler: RefCell<Option<Handler>>,
    /// Requests of the co-located core that arrived before the handler was set.
    early: RefCell<Vec<(Rc<Dispatcher>, u32, Op)>>,
}

/// How a core reaches the others.
pub enum Link {
    /// Its own executor: join the mesh of every core and learn their mesh ids.
    Mesh(MeshBuilder<Msg, Full>, PeerMap),
    /// Shares the executor with its only peer: direct calls ([`Dispatcher::local_pair`]).
    Local(Rc<Dispatcher>),
}

impl Link {
    /// This core's dispatcher and, on the mesh, its receivers for
    /// [`Dispatcher::spawn_receivers`].
    pub async fn open(self, logical: usize) -> (Rc<Dispatcher>, Option<Receivers<Msg>>) {
        match self {
            Link::Local(d) => (d, None),
            Link::Mesh(mesh, map) => {
                // glommio 0.9's shared-channel `connect` waits for the peer without any
                // cross-thread wake-up, so the executor must not park until the join completes.
                let (senders, receivers) = super::rendezvous::without_parking(mesh.join())
                    .await
                    .expect("join core mesh");
                (
                    Dispatcher::new(senders, logical, &map).await,
                    Some(receivers),
                )
            }
        }
    }
}

/// Shared while the executors start: each writes its mesh id at its logical
/// index, then waits until every slot is known.
pub type PeerMap = std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>;

pub fn new_peer_map(n: usize) -> PeerMap {
    std::sync::Arc::new(
        (0..n)
            .map(|_| std::sync::atomic::AtomicUsize::new(usize::MAX))
            .collect(),
    )
}

/// A sent request; await it for the reply.
pub struct Ticket {
    d: Rc<Dispatcher>,
    id: u32,
    done: bool,
}

impl Future for Ticket {
    type Output = Reply;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let id = self.id;
        let mut p = self.d.pending.borrow_mut();
        let slot = &mut p.slots[id as usize];
        match slot {
            Slot::Done(_) => {
                let Slot::Done(reply) = std::mem::replace(slot, Slot::Free(None)) else {
                    unreachable!()
                };
                p.release(id);
                drop(p);
                self.done = true;
                Poll::Ready(reply)
            }
            Slot::Waiting(w) => {
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            Slot::Free(_) | Slot::Abandoned => unreachable!("ticket polled after completion"),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned: mark the slot so the late reply is discarded, and
            // free it once it arrives (see `complete`).
            let mut p = self.d.pending.borrow_mut();
            if let Slot::Done(_) = p.slots[self.id as usize] {
                p.release(self.id);
            } else {
                p.slots[self.id as usize] = Slot::Abandoned;
            }
        }
    }
}

impl Dispatcher {
    /// Publishes this core's mesh id and waits for every other core's.
    pub async fn new(senders: Senders<Msg>, logical: usize, map: &PeerMap) -> Rc<Dispatcher> {
        use std::sync::atomic::Ordering;
        map[logical].store(senders.peer_id(), Ordering::Release);
        super::rendezvous::spin_until(|| {
            map.iter().all(|m| m.load(Ordering::Acquire) != usize::MAX)
        })
        .await;
        let to_mesh = map.iter().map(|m| m.load(Ordering::Acquire)).collect();
        Rc::new(Dispatcher::bare(Some(senders), to_mesh))
    }

    fn bare(senders: Option<Senders<Msg>>, to_mesh: Vec<usize>) -> Dispatcher {
        Dispatcher {
            senders,
            pending: RefCell::new(Pending::default()),
            to_mesh,
            local: RefCell::new(None),
            handler: RefCell::new(None),
            early: RefCell::new(Vec::new()),
        }
    }

    /// Two cores on one executor, logical ids `a` and `b`, each reaching the other by direct
    /// call. They refer to each other for the life of the process.
    pub fn local_pair(a: usize, b: usize) -> (Rc<Dispatcher>, Rc<Dispatcher>) {
        let da = Rc::new(Dispatcher::bare(None, Vec::new()));
        let db = Rc::new(Dispatcher::bare(None, Vec::new()));
        *da.local.borrow_mut() = Some((b, db.clone()));
        *db.local.borrow_mut() = Some((a, da.clone()));
        (da, db)
    }

    fn local_peer(&self, to: usize) -> Option<Rc<Dispatcher>> {
        match &*self.local.borrow() {
            Some((id, d)) if *id == to => Some(d.clone()),
            _ => None,
        }
    }

    /// A request from the co-located core `from`: run the handler now; a `Later` answer
    /// completes `from`'s ticket from a task in the handler's queue.
    fn accept_local(&self, from: Rc<Dispatcher>, id: u32, op: Op) {
        let Some((handle, tq)) = self.handler.borrow().clone() else {
            self.early.borrow_mut().push((from, id, op));
            return;
        };
        match handle(op) {
            Handled::Now(reply) => from.complete(id, reply),
            Handled::Later(fut) => drop(
                glommio::spawn_local_into(
                    async move {
                        let reply = fut.await;
                        from.complete(id, reply);
                    },
                    tq,
                )
                .expect("spawn local job")
                .detach(),
            ),
        }
    }

    /// Sends `op` to core `to`; the returned ticket resolves to its reply.
    pub async fn send(self: &Rc<Self>, to: usize, op: Op) -> Ticket {
        let id = self.pending.borrow_mut().alloc();
        let ticket = Ticket {
            d: self.clone(),
            id,
            done: false,
        };
        if let Some(peer) = self.local_peer(to) {
            peer.accept_local(self.clone(), id, op);
            // The other core's work just ran in this task's turn, and a loop of calls (an
            // anti-entropy pull applies key by key) would never leave the CPU: yield when due,
            // as a hop to another thread used to.
            glommio::yield_if_needed().await;
            return ticket;
        }
        let senders = self
            .senders
            .as_ref()
            .expect("a core without a mesh sends only locally");
        if senders
            .send_to(self.to_mesh[to], Msg::Req { id, op })
            .await
            .is_err()
        {
            // Only at process teardown: the peer is gone.
            panic!("core {to} is gone: the mesh channel closed");
        }
        ticket
    }

    pub async fn call(self: &Rc<Self>, to: usize, op: Op) -> Reply {
        // A co-located core's job runs right here, in the caller's task: no task, ticket and
        // wake-up per call (one per replicated PUT on a one-core node). Dropping the caller
        // drops the job, as it would drop the wait for its answer; what a job hands to other
        // tasks (the outbox's queued writes and their hints) goes on without it.
        if let Some(peer) = self.local_peer(to) {
            let handler = peer.handler.borrow().clone();
            if let Some((handle, _)) = handler {
                let reply = match handle(op) {
                    Handled::Now(reply) => reply,
                    Handled::Later(fut) => fut.await,
                };
                // As in `send`: a loop of local calls must still leave the CPU when due.
                glommio::yield_if_needed().await;
                return reply;
            }
        }
        self.send(to, op).await.await
    }

    fn complete(&self, id: u32, reply: Reply) {
        let mut p = self.pending.borrow_mut();
        let slot = &mut p.slots[id as usize];
        match std::mem::replace(slot, Slot::Done(reply)) {
            Slot::Waiting(Some(w)) => w.wake(),
            Slot::Abandoned => p.release(id),
            _ => {}
        }
    }

    /// Sets `handle` as the way this core answers requests, and spawns one receive loop per
    /// mesh peer. `Later` answers run in `tq`.
    pub fn spawn_receivers(
        self: &Rc<Self>,
        receivers: Option<Receivers<Msg>>,
        handle: Rc<dyn Fn(Op) -> Handled>,
        tq: glommio::TaskQueueHandle,
    ) {
        *self.handler.borrow_mut() = Some((handle.clone(), tq));
        let early = std::mem::take(&mut *self.early.borrow_mut());
        for (from, id, op) in early {
            self.accept_local(from, id, op);
        }
        let Some(mut receivers) = receivers else {
            return;
        };
        for (peer, rx) in receivers.streams() {
            let me = self.clone();
            let handle = handle.clone();
            glommio::spawn_local_into(
                async move {
                    while let Some(msg) = rx.recv().await {
                        match msg {
                            Msg::Req { id, op } => match handle(op) {
                                Handled::Now(reply) => me.reply(peer, id, reply),
                                Handled::Later(fut) => {
                                    let me = me.clone();
                                    glommio::spawn_local_into(
                                        async move {
                                            let reply = fut.await;
                                            me.reply(peer, id, reply);
                                        },
                                        tq,
                                    )
                                    .expect("spawn mesh job")
                                    .detach();
                                }
                            },
                            Msg::Rep { id, reply } => me.complete(id, reply),
                        }
                    }
                },
                tq,
            )
            .expect("spawn mesh receiver")
            .detach();
        }
    }

    fn reply(self: &Rc<Self>, to: usize, id: u32, reply: Reply) {
        let senders = self.senders.as_ref().expect("mesh replies need the mesh");
        if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg))) =
            senders.try_send_to(to, Msg::Rep { id, reply })
        {
            let me = self.clone();
            glommio::spawn_local(async move {
                let senders = me.senders.as_ref().expect("mesh replies need the mesh");
                let _ = senders.send_to(to, msg).await;
            })
            .detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl std::future::Future<Output = ()> + 'static) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(64 << 10)
            .make()
            .expect("executor (needs io_uring)")
            .run(f);
    }

    fn count(r: Reply) -> u64 {
        match r {
            Reply::Count(n) => n,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    /// Answers Op::Connections with `n` at once, Op::CloseListener with `n + 1` after a yield.
    fn handler(n: u64) -> Rc<dyn Fn(Op) -> Handled> {
        Rc::new(move |op| match op {
            Op::Connections => Handled::Now(Reply::Count(n)),
            _ => Handled::Later(Box::pin(async move {
                futures_lite::future::yield_now().await;
                Reply::Count(n + 1)
            })),
        })
    }

    #[test]
    fn co_located_cores_answer_each_other_by_direct_call() {
        run(async {
            let (data, control) = Dispatcher::local_pair(0, 1);
            let tq = glommio::executor().current_task_queue();
            data.spawn_receivers(None, handler(10), tq);
            control.spawn_receivers(None, handler(20), tq);
            assert_eq!(count(data.call(1, Op::Connections).await), 20);
            assert_eq!(count(control.call(0, Op::Connections).await), 10);
            assert_eq!(
                count(data.call(1, Op::CloseListener).await),
                21,
                "a later answer"
            );
            assert!(
                data.pending.borrow().slots.is_empty(),
                "a direct call takes no ticket"
            );
            // Many in flight at once, completed out of order, each to its own ticket.
            let mut tickets = Vec::new();
            for i in 0..50 {
                let op = if i % 2 == 0 {
                    Op::Connections
                } else {
                    Op::CloseListener
                };
                tickets.push((i, control.send(0, op).await));
            }
            for (i, t) in tickets.into_iter().rev() {
                assert_eq!(count(t.await), if i % 2 == 0 { 10 } else { 11 });
            }
        });
    }

    #[test]
    fn a_request_sent_before_the_handler_is_set_is_answered_once_it_is() {
        run(async {
            let (data, control) = Dispatcher::local_pair(0, 1);
            let tq = glommio::executor().current_task_queue();
            let early = data.send(1, Op::Connections).await;
            let abandoned = data.send(1, Op::CloseListener).await;
            drop(abandoned);
            control.spawn_receivers(None, handler(5), tq);
            assert_eq!(count(early.await), 5);
            // The abandoned request's late answer (its task ran before this ticket's) frees
            // its slot: nothing is left waiting.
            assert_eq!(count(data.send(1, Op::CloseListener).await.await), 6);
            let p = data.pending.borrow();
            assert!(p.slots.iter().all(|s| matches!(s, Slot::Free(_))));
        });
    }
}
