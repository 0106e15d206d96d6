//! HTTP/1.1 on httparse: parsing, framing, chunked bodies, responses, path and form decoding.
//! Knows bytes and HTTP, nothing about callers or caching (the connection loop that uses it is
//! [`crate::service`]).

pub mod chunked;
pub mod date;
pub mod keys;
pub mod parse;
#[cfg(test)]
mod proptests;
pub mod response;
