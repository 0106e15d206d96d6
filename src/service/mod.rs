//! The HTTP service layer the client, management and dist listeners share: the connection loop
//! (`conn`: plaintext or TLS, framing, pipelining, keep-alive, read-ahead, the [`conn::Service`]
//! trait each listener implements), the answers every listener gives the same way (`answers`:
//! 401 with its challenge, 405 with `Allow`, 503 while draining) and the per-connection timeouts
//! (`watch`). It knows HTTP and who is calling (`auth`), not routes or caching.

pub mod answers;
pub mod conn;
pub mod watch;
