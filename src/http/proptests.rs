//! Property tests of the request parser and the chunked decoder (proptest): random and mutated
//! inputs must respect the invariants, not merely "not panic". proptest shrinks a failure to a
//! minimal input and prints it; its seed file makes a failure replay.

use proptest::prelude::*;

use super::chunked::{ChunkError, ChunkedDecoder};
use super::parse::{parse_head, BodyKind, Parsed, MAX_HEAD};

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

/// A request head built from pieces, sometimes cut short, sometimes padded past the head limit.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::sample::select(PIECES), 0..12),
        prop::option::weighted(0.25, any::<prop::sample::Index>()),
        prop::option::weighted(0.125, 0..3 * MAX_HEAD),
    )
        .prop_map(|(pieces, cut, pad)| {
            let mut v: Vec<u8> = pieces.concat();
            if let Some(cut) = cut {
                let n = cut.index(v.len() + 1);
                v.truncate(n);
            }
            if let Some(pad) = pad {
                v.extend(std::iter::repeat_n(b'a', pad));
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn parser_invariants(input in request()) {
        match parse_head(&input) {
            Parsed::Complete(h) => {
                // consumed <= input, head within the limit, ends with CRLFCRLF or LFLF
                prop_assert!(h.len <= input.len() && h.len <= MAX_HEAD);
                prop_assert!(
                    input[..h.len].ends_with(b"\n\n") || input[..h.len].ends_with(b"\r\n\r\n")
                );
                prop_assert!(h.path.starts_with(b"/"));
                // framing is never ambiguous
                if let BodyKind::Length(n) = h.body {
                    prop_assert!(n < 10u64.pow(19));
                }
                if h.minor == 0 {
                    prop_assert_ne!(h.body, BodyKind::Chunked);
                }
            }
            Parsed::Partial => prop_assert!(input.len() < MAX_HEAD),
            Parsed::Invalid(e) => prop_assert!(e.status == 400 || e.status == 431),
        }
    }

    #[test]
    fn chunked_garbage_never_overreads(
        input in prop::collection::vec(prop::sample::select(b"0123456789abcdefXZ;\r\n :".to_vec()), 0..64)
    ) {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        if let Ok(n) = d.feed(&input, &mut out, 1 << 20) {
            prop_assert!(n <= input.len());
            prop_assert!(out.len() <= input.len());
        }
    }
}

/// A chunked encoding of `body`: chunk sizes from `sizes` (cycled), an extension on some chunks,
/// sometimes a trailer.
fn encode_chunked(body: &[u8], sizes: &[(usize, bool)], trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    for &(size, ext) in sizes.iter().cycle() {
        if i >= body.len() {
            break;
        }
        let n = size.min(body.len() - i);
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if ext {
            out.extend_from_slice(b";ext=1");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body[i..i + n]);
        out.extend_from_slice(b"\r\n");
        i += n;
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"Trailer: v\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any body, any chunking, fed in any split: decoded exactly when within the limit, else
    /// TooLarge, never more output than the limit and never more consumed than was given.
    #[test]
    fn chunked_roundtrip_in_random_splits(
        body in prop::collection::vec(any::<u8>(), 0..200),
        sizes in prop::collection::vec((1usize..=20, prop::bool::weighted(0.33)), 1..16),
        trailer in any::<bool>(),
        limit in 0u64..250,
        splits in prop::collection::vec(1usize..=16, 1..32),
    ) {
        let wire = encode_chunked(&body, &sizes, trailer);
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut src = &wire[..];
        let mut result = Ok(());
        let mut split = splits.iter().cycle();
        while !d.is_done() && (!src.is_empty() || !pending.is_empty()) {
            let take = (*split.next().unwrap()).min(src.len());
            pending.extend_from_slice(&src[..take]);
            src = &src[take..];
            match d.feed(&pending, &mut out, limit) {
                Ok(n) => {
                    prop_assert!(n <= pending.len(), "consumed more than input");
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
        prop_assert!(out.len() as u64 <= limit, "limit not respected");
        if body.len() as u64 <= limit {
            prop_assert_eq!(result, Ok(()));
            prop_assert!(d.is_done());
            prop_assert_eq!(out, body);
        } else {
            prop_assert_eq!(result, Err(ChunkError::TooLarge));
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
