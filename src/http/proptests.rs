//! Property tests of the request parser and the chunked decoder: random and
//! mutated inputs must respect the invariants, not merely "not panic".
//! A small xorshift generator keeps them deterministic and dependency-free.

use super::chunked::{ChunkError, ChunkedDecoder};
use super::parse::{parse_head, BodyKind, Parsed, MAX_HEAD};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b"GET ",
    b"PUT ",
    b"POST ",
    b"G@T ",
    b"/v1/cache/k",
    b"?ttl=5s",
    b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b" HTTP/2\r\n",
    b"Host: x\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 05\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"X: \x01\r\n",
    b" folded\r\n",
    b"Bad Header: v\r\n",
    b"\r\n",
    b"\n",
    b"\x00",
    b"\xff",
    b"hello",
];

fn random_request(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..rng.below(12) {
        v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
    }
    if rng.below(4) == 0 {
        let n = rng.below(v.len() + 1);
        v.truncate(n);
    }
    if rng.below(8) == 0 {
        v.extend(std::iter::repeat_n(b'a', rng.below(3 * MAX_HEAD)));
    }
    v
}

#[test]
fn parser_invariants() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for _ in 0..50_000 {
        let input = random_request(&mut rng);
        match parse_head(&input) {
            Parsed::Complete(h) => {
                // consumed <= input, head within the limit, ends with CRLFCRLF or LFLF
                assert!(h.len <= input.len() && h.len <= MAX_HEAD);
                assert!(input[..h.len].ends_with(b"\n\n") || input[..h.len].ends_with(b"\r\n\r\n"));
                assert!(h.path.starts_with(b"/"));
                // framing is never ambiguous
                if let BodyKind::Length(n) = h.body {
                    assert!(n < 10u64.pow(19));
                }
                if h.minor == 0 {
                    assert_ne!(h.body, BodyKind::Chunked);
                }
            }
            Parsed::Partial => assert!(input.len() < MAX_HEAD),
            Parsed::Invalid(e) => assert!(e.status == 400 || e.status == 431),
        }
    }
}

#[test]
fn parser_prefixes_are_partial_or_invalid() {
    let full = b"PUT /v1/cache/k?ttl=1s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for cut in 0..full.len() - 5 {
        let r = parse_head(&full[..cut]);
        assert!(matches!(r, Parsed::Partial), "cut {cut}: {r:?}");
    }
    assert!(matches!(parse_head(full), Parsed::Complete(_)));
}

fn encode_chunked(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let n = (1 + rng.below(20)).min(body.len() - i);
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if rng.below(3) == 0 {
            out.extend_from_slice(b";ext=1");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body[i..i + n]);
        out.extend_from_slice(b"\r\n");
        i += n;
    }
    out.extend_from_slice(b"0\r\n");
    if rng.below(2) == 0 {
        out.extend_from_slice(b"Trailer: v\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn chunked_roundtrip_in_random_splits() {
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let body: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        let wire = encode_chunked(&mut rng, &body);
        let limit = rng.below(250) as u64;
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut src = &wire[..];
        let mut result = Ok(());
        while !d.is_done() && (!src.is_empty() || !pending.is_empty()) {
            let take = (1 + rng.below(16)).min(src.len());
            pending.extend_from_slice(&src[..take]);
            src = &src[take..];
            match d.feed(&pending, &mut out, limit) {
                Ok(n) => {
                    assert!(n <= pending.len(), "consumed more than input");
                    pending.drain(..n);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if take == 0 && !d.is_done() {
                break;
            }
        }
        assert!(out.len() as u64 <= limit, "limit not respected");
        if body.len() as u64 <= limit {
            assert_eq!(result, Ok(()));
            assert!(d.is_done());
            assert_eq!(out, body);
        } else {
            assert_eq!(result, Err(ChunkError::TooLarge));
        }
    }
}

#[test]
fn chunked_garbage_never_overreads() {
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        const ALPHABET: &[u8] = b"0123456789abcdefXZ;\r\n :";
        let input: Vec<u8> = (0..rng.below(64))
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        if let Ok(n) = d.feed(&input, &mut out, 1 << 20) {
            assert!(n <= input.len());
            assert!(out.len() <= input.len());
        }
    }
}
