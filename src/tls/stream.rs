//! The byte stream of one accepted connection: the socket itself, or TLS over it.
//!
//! An enum rather than a boxed trait object so the plaintext GET path stays a direct
//! call (one predictable branch per read or write) and nothing is allocated per
//! request. TLS reads go through [`Prefixed`], which replays the bytes the server
//! read to tell a TLS handshake from plaintext HTTP (`handshake.rs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

/// A socket whose first few bytes were already read: they are returned first.
///
/// During the handshake writes are held in memory until flushed. rustls' last-gasp
/// alert after a failed handshake (`protocol_version`, `no_application_protocol`,
/// `certificate_required`) is written once and never retried; on glommio's io_uring
/// socket that first write is usually still pending when the handshake future gives
/// up, so the client would see a bare close. Held, the alert is flushed by
/// `handshake.rs` after the failure.
pub struct Prefixed {
    head: Vec<u8>,
    pos: usize,
    hold: Option<Vec<u8>>,
    pub inner: TcpStream,
}

impl Prefixed {
    pub fn new(inner: TcpStream, head: Vec<u8>) -> Prefixed {
        Prefixed {
            head,
            pos: 0,
            hold: Some(Vec::new()),
            inner,
        }
    }

    /// Writes what is held and stops holding (handshake over, either way).
    pub async fn release(&mut self) -> io::Result<()> {
        if let Some(h) = self.hold.take() {
            if !h.is_empty() {
                self.inner.write_all(&h).await?;
            }
        }
        Ok(())
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.pos < self.head.len() && !buf.is_empty() {
            let pos = self.pos;
            let n = (self.head.len() - pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[pos..pos + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                self.head = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(h) = &mut self.hold {
            h.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    /// rustls writes a flight (ServerHello, ChangeCipherSpec, an encrypted alert) as one
    /// vectored write; the default would hold only its first part.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(h) = &mut self.hold {
            let mut n = 0;
            for b in bufs {
                h.extend_from_slice(b);
                n += b.len();
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(h) = &mut this.hold {
            while !h.is_empty() {
                match Pin::new(&mut this.inner).poll_write(cx, h) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        h.drain(..n);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

pub type ServerTls = futures_rustls::server::TlsStream<Prefixed>;

/// A pooled peer connection (the dist client).
pub type PeerStream = Stream<futures_rustls::client::TlsStream<TcpStream>>;

/// What a connection task reads and writes: an accepted connection by default, or with
/// `T` the client-side TLS stream, a peer connection.
pub enum Stream<T = ServerTls> {
    Plain(TcpStream),
    Tls(Box<T>),
}

impl<T: AsyncWrite + Unpin> Stream<T> {
    /// Sends what is buffered. TLS buffers records inside rustls until flushed; a
    /// plaintext socket has nothing to flush.
    pub async fn flush_tls(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(t) => t.flush().await,
        }
    }
}

impl Stream {
    /// Ends the connection: a TLS `close_notify`, then the socket's shutdown.
    pub async fn finish(&mut self) {
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both).await;
            }
            Stream::Tls(t) => {
                let _ = t.close().await;
                let _ = t.get_ref().0.inner.shutdown(std::net::Shutdown::Both).await;
            }
        }
    }

    /// The socket underneath (timeouts, peer address).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.get_ref().0.inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stream<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(t) => Pin::new(&mut **t).poll_close(cx),
        }
    }
}
