//! Request/reply over the glommio channel mesh.
//!
//! Every executor (data cores 0..N-1, the control core N) joins one full mesh
//! of [`Msg`]. A caller registers a waiter slot, sends `Req{id}` to the target
//! core and awaits the slot; the receiving core's loop runs the op and sends
//! `Rep{id}` back, and this core's receive loop fills the slot and wakes the
//! caller. Receive loops never block on a send (a full reply channel is
//! handled by a spawned task), so two cores answering each other cannot
//! deadlock on bounded channels.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use glommio::channels::channel_mesh::{Receivers, Senders};

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

pub struct Dispatcher {
    senders: Senders<Msg>,
    pending: RefCell<Pending>,
    /// Logical core id (data cores 0..N-1, control N) -> mesh peer id. The
    /// mesh numbers peers in the order they joined, which is not ours.
    to_mesh: Vec<usize>,
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
        Rc::new(Dispatcher {
            senders,
            pending: RefCell::new(Pending::default()),
            to_mesh,
        })
    }

    /// Sends `op` to core `to`; the returned ticket resolves to its reply.
    pub async fn send(self: &Rc<Self>, to: usize, op: Op) -> Ticket {
        let id = self.pending.borrow_mut().alloc();
        let ticket = Ticket {
            d: self.clone(),
            id,
            done: false,
        };
        if self
            .senders
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

    /// Spawns one receive loop per peer. `handle` runs requests addressed to
    /// this core and returns the reply.
    pub fn spawn_receivers(
        self: &Rc<Self>,
        mut receivers: Receivers<Msg>,
        handle: Rc<dyn Fn(Op) -> Handled>,
        tq: glommio::TaskQueueHandle,
    ) {
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
        if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg))) =
            self.senders.try_send_to(to, Msg::Rep { id, reply })
        {
            let me = self.clone();
            glommio::spawn_local(async move {
                let _ = me.senders.send_to(to, msg).await;
            })
            .detach();
        }
    }
}
