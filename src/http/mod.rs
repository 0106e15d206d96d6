//! HTTP/1.1 on httparse: parsing, framing, responses and the connection loop.
//! Knows bytes and HTTP, nothing about caching.

pub mod answers;
pub mod chunked;
pub mod conn;
pub mod date;
pub mod keys;
pub mod parse;
#[cfg(test)]
mod proptests;
pub mod response;
pub mod watch;
