//! `GET /cluster/events`: Server-Sent Events (ops.md §1.7).
//!
//! The head and the opening snapshots are written by `start` into the normal
//! response buffer; `run` then owns the socket and sends one `heartbeat` event
//! per second (and `members` events on membership changes) until the client
//! goes away or the management listener stops.

use std::io::Write;
use std::time::Duration;

use crate::tls::stream::Stream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::views::{heartbeat_json, members_json};
use crate::control::ControlCtx;
use crate::http::response::Responder;

fn event(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let _ = write!(out, "event: {name}\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// Frames `payload` as one chunk (HTTP/1.1) or raw bytes (HTTP/1.0).
fn frame(payload: &[u8], http10: bool) -> Vec<u8> {
    if http10 {
        return payload.to_vec();
    }
    let mut out = format!("{:x}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

fn snapshot_events(ctl: &ControlCtx, members: bool) -> Vec<u8> {
    let mut p = Vec::new();
    let mut data = Vec::new();
    if members {
        members_json(ctl, &mut data);
        event(&mut p, "members", &data);
        data.clear();
    }
    heartbeat_json(ctl, &mut data);
    event(&mut p, "heartbeat", &data);
    p
}

/// Registers a subscriber before the snapshots are taken, so no change in
/// between is lost (ops.md §1.7).
pub fn subscribe(ctl: &ControlCtx) -> glommio::channels::local_channel::LocalReceiver<()> {
    let (tx, rx) = glommio::channels::local_channel::new_bounded(64);
    ctl.subscribers.borrow_mut().push(tx);
    rx
}

pub fn start(ctl: &ControlCtx, http10: bool, r: &mut Responder<'_>) {
    r.status = 200;
    let mut date = [0u8; 29];
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::http::date::imf_fixdate(secs, &mut date);
    let out = &mut *r.out;
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nDate: ");
    out.extend_from_slice(&date);
    out.extend_from_slice(
        b"\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
    );
    if http10 {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    } else {
        out.extend_from_slice(b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n");
    }
    let mut first = b"retry: 5000\n\n".to_vec();
    first.extend_from_slice(&snapshot_events(ctl, true));
    out.extend_from_slice(&frame(&first, http10));
}

pub async fn run(
    ctl: &ControlCtx,
    stream: &mut Stream,
    http10: bool,
    rx: glommio::channels::local_channel::LocalReceiver<()>,
) {
    let _ = stream.tcp().set_read_timeout(None);
    let mut probe = [0u8; 256];
    let mut next_beat = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        // Wait for the next heartbeat, a membership change, the client
        // closing, or the listener stopping.
        let beat_in = next_beat.saturating_duration_since(std::time::Instant::now());
        let tick = async {
            futures_lite::future::or(
                async {
                    glommio::timer::sleep(beat_in).await;
                    Some(false)
                },
                async { rx.recv().await.map(|_| true) },
            )
            .await
        };
        let closed = async {
            // Anything the client sends is ignored; EOF or an error ends the stream.
            loop {
                match stream.read(&mut probe).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => continue,
                }
            }
        };
        let closed = async {
            closed.await;
            None
        };
        let what = ctl
            .stop
            .race(futures_lite::future::or(tick, closed))
            .await
            .flatten();
        let payload = match what {
            // Membership changed (or a subscriber fell 64 events behind: the
            // channel closed and recv returned None → end the stream).
            Some(true) => {
                let mut p = Vec::new();
                let mut data = Vec::new();
                members_json(ctl, &mut data);
                event(&mut p, "members", &data);
                p
            }
            Some(false) => {
                next_beat += Duration::from_secs(1);
                snapshot_events(ctl, false)
            }
            None => break,
        };
        let sent = stream.write_all(&frame(&payload, http10)).await;
        if sent.is_err() || stream.flush_tls().await.is_err() {
            return;
        }
    }
    if !http10 {
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let _ = stream.flush_tls().await;
    }
}
