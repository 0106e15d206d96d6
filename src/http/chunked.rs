//! Incremental decoder for `Transfer-Encoding: chunked` request bodies.
//!
//! A pure state machine: feed it whatever bytes have arrived, it appends the
//! decoded payload to `out` and says how much input it consumed. "Need more
//! input" is a normal outcome, not an error. Limits are enforced while decoding,
//! so a body that grows past `HYPERCACHE_MAX_BODY` is refused as soon as it does.

/// Chunk-size lines and the trailer block are bounded like the head.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Malformed size line or terminator: 400.
    Malformed,
    /// Decoded body exceeds the limit: 413.
    TooLarge,
    /// Trailer block over 8 KiB: 431.
    TrailersTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    Size,
    /// Reading chunk data; this many bytes remain.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailers,
    Done,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
    decoded: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            trailer_bytes: 0,
            decoded: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, appending payload to `out`. Returns bytes consumed
    /// (always <= input.len()). Stop feeding once `is_done()`.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<usize, ChunkError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok(pos),
                State::Size => {
                    let Some(line) = take_line(&input[pos..])? else {
                        return Ok(pos);
                    };
                    let size = parse_size(&input[pos..pos + line - 2])?;
                    pos += line;
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        if self.decoded.saturating_add(size) > limit {
                            return Err(ChunkError::TooLarge);
                        }
                        self.state = State::Data(size);
                    }
                }
                State::Data(left) => {
                    let avail = (input.len() - pos) as u64;
                    if avail == 0 {
                        return Ok(pos);
                    }
                    let n = avail.min(left) as usize;
                    out.extend_from_slice(&input[pos..pos + n]);
                    pos += n;
                    self.decoded += n as u64;
                    self.state = if n as u64 == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n as u64)
                    };
                }
                State::DataEnd => {
                    let rest = &input[pos..];
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&c| c != b'\r') {
                            return Err(ChunkError::Malformed);
                        }
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ChunkError::Malformed);
                    }
                    pos += 2;
                    self.state = State::Size;
                }
                State::Trailers => {
                    let rest = &input[pos..];
                    let line = match take_line(rest) {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            if self.trailer_bytes + rest.len() > MAX_TRAILERS {
                                return Err(ChunkError::TrailersTooLarge);
                            }
                            return Ok(pos);
                        }
                        Err(_) => return Err(ChunkError::TrailersTooLarge),
                    };
                    self.trailer_bytes += line;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(ChunkError::TrailersTooLarge);
                    }
                    pos += line;
                    if line == 2 {
                        self.state = State::Done;
                    } else if !rest[..line - 2].contains(&b':') {
                        // A trailer line must be a header field.
                        return Err(ChunkError::Malformed);
                    }
                }
            }
        }
    }
}

/// Length of the first CRLF-terminated line including the CRLF, or None when
/// incomplete. A bare LF or an over-long line is malformed.
fn take_line(b: &[u8]) -> Result<Option<usize>, ChunkError> {
    match b.iter().position(|&c| c == b'\n') {
        Some(i) if i > 0 && b[i - 1] == b'\r' => Ok(Some(i + 1)),
        Some(_) => Err(ChunkError::Malformed),
        None if b.len() > MAX_LINE => Err(ChunkError::Malformed),
        None => Ok(None),
    }
}

/// `1*HEXDIG [ ; ext ]` — extensions are allowed and ignored.
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let hex_end = line
        .iter()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if hex_end == 0 || hex_end > 15 {
        return Err(ChunkError::Malformed);
    }
    let rest = &line[hex_end..];
    let rest_trim = rest.iter().position(|&c| c != b' ' && c != b'\t');
    if let Some(i) = rest_trim {
        if rest[i] != b';' {
            return Err(ChunkError::Malformed);
        }
    }
    let mut v = 0u64;
    for &c in &line[..hex_end] {
        v = v * 16 + (c as char).to_digit(16).unwrap_or(0) as u64;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], limit: u64) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let n = d.feed(input, &mut out, limit)?;
        assert!(d.is_done(), "not done");
        Ok((out, n))
    }

    #[test]
    fn decodes_with_extensions_and_trailers() {
        let body = b"5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (out, n) = decode_all(body, 100).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(&body[n..], b"NEXT");
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode_all(b"zz\r\n", 10).unwrap_err(),
            ChunkError::Malformed
        );
        assert_eq!(
            decode_all(b"5\r\nhelloXX", 10).unwrap_err(),
            ChunkError::Malformed
        );
        assert_eq!(
            decode_all(b"5\nhello", 10).unwrap_err(),
            ChunkError::Malformed
        );
        assert_eq!(decode_all(b"b\r\n", 10).unwrap_err(), ChunkError::TooLarge);
        let mut big = b"0\r\n".to_vec();
        for _ in 0..1000 {
            big.extend_from_slice(b"X-Trailer: aaaaaaaaaa\r\n");
        }
        assert_eq!(
            decode_all(&big, 10).unwrap_err(),
            ChunkError::TrailersTooLarge
        );
    }

    /// Byte-at-a-time feeding gives the same result as one feed, and consumed
    /// never exceeds the input.
    #[test]
    fn incremental_equals_whole() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for &b in body.iter() {
            pending.push(b);
            let n = d.feed(&pending, &mut out, 1000).unwrap();
            assert!(n <= pending.len());
            pending.drain(..n);
        }
        assert!(d.is_done());
        assert_eq!(out, b"abc0123456789abcdef");
    }
}
