//! The wire format: 2-byte big-endian length frames of Erlang's external
//! term format (version byte 131), decoded and encoded with `eetf`.
//!
//! Before `eetf` sees a payload, [`check`] walks it once and refuses what a
//! port request never contains and what would make the decoder misbehave on
//! hostile input: a declared size larger than the bytes left (the decoder
//! allocates first, so a 4-byte count could ask for gigabytes), nesting
//! deeper than [`MAX_DEPTH`] (the decoder recurses), compressed terms and
//! the distribution header (the decoder panics on the latter), integers
//! beyond 64 bits, and every tag outside the subset below (pids,
//! references, funs, maps…).

use eetf::{Atom, BigInteger, Binary, ByteList, FixInteger, List, Term, Tuple};

/// The largest payload either side may send (`{packet, 2}`).
pub const MAX_FRAME: usize = 65535;

/// How deeply terms may nest in a request (a request needs 4 or 5).
pub const MAX_DEPTH: usize = 32;

const VERSION: u8 = 131;

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTerm(pub String);

impl std::fmt::Display for BadTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes one frame's payload into a term.
///
/// # Errors
///
/// A payload that is not one whole term of the accepted subset.
pub fn decode(payload: &[u8]) -> Result<Term, BadTerm> {
    check(payload)?;
    let mut reader = payload;
    let term = Term::decode(&mut reader).map_err(|e| BadTerm(format!("undecodable term: {e}")))?;
    if !reader.is_empty() {
        return Err(BadTerm(format!("{} bytes after the term", reader.len())));
    }
    Ok(term)
}

/// Walks `payload` without allocating: see the module docs.
///
/// # Errors
///
/// The first problem found.
pub fn check(payload: &[u8]) -> Result<(), BadTerm> {
    match payload.first() {
        None => return Err(BadTerm("empty frame".into())),
        Some(&VERSION) => {}
        Some(v) => return Err(BadTerm(format!("version byte {v}, not 131"))),
    }
    let mut walker = Walker {
        data: payload,
        at: 1,
    };
    walker.term(0)?;
    if walker.at != payload.len() {
        return Err(BadTerm(format!(
            "{} bytes after the term",
            payload.len() - walker.at
        )));
    }
    Ok(())
}

struct Walker<'a> {
    data: &'a [u8],
    at: usize,
}

impl Walker<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], BadTerm> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| BadTerm(format!("truncated term at byte {}", self.at)))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<usize, BadTerm> {
        Ok(self.take(1)?[0] as usize)
    }

    fn u16(&mut self) -> Result<usize, BadTerm> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, BadTerm> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A count of elements of at least one byte each: no more than the
    /// bytes left.
    fn count(&self, n: usize) -> Result<usize, BadTerm> {
        if n > self.data.len() - self.at {
            return Err(BadTerm(format!(
                "a count of {n} elements with {} bytes left",
                self.data.len() - self.at
            )));
        }
        Ok(n)
    }

    fn term(&mut self, depth: usize) -> Result<(), BadTerm> {
        if depth > MAX_DEPTH {
            return Err(BadTerm(format!("terms nested deeper than {MAX_DEPTH}")));
        }
        let tag = self.u8()?;
        match tag {
            // SMALL_INTEGER, INTEGER, NEW_FLOAT
            97 => drop(self.take(1)?),
            98 => drop(self.take(4)?),
            70 => drop(self.take(8)?),
            // ATOM, ATOM_UTF8 (2-byte length); SMALL_ATOM, SMALL_ATOM_UTF8
            100 | 118 => {
                let n = self.u16()?;
                self.take(n)?;
            }
            115 | 119 => {
                let n = self.u8()?;
                self.take(n)?;
            }
            // SMALL_TUPLE, LARGE_TUPLE
            104 | 105 => {
                let n = if tag == 104 { self.u8()? } else { self.u32()? };
                for _ in 0..self.count(n)? {
                    self.term(depth + 1)?;
                }
            }
            // NIL
            106 => {}
            // STRING (bytes), BINARY
            107 => {
                let n = self.u16()?;
                self.take(n)?;
            }
            109 => {
                let n = self.u32()?;
                self.take(n)?;
            }
            // LIST: elements, then the tail
            108 => {
                let n = self.u32()?;
                for _ in 0..self.count(n)? {
                    self.term(depth + 1)?;
                }
                self.term(depth + 1)?;
            }
            // SMALL_BIG of at most 8 digit bytes (64 bits): a request's
            // numbers never need more, and printing a huge one in an error
            // message would take long.
            110 => {
                let n = self.u8()?;
                if n > 8 {
                    return Err(BadTerm(format!("an integer of {n} bytes")));
                }
                self.take(1 + n)?;
            }
            other => {
                return Err(BadTerm(format!(
                    "unsupported term (tag {other}) at byte {}",
                    self.at - 1
                )));
            }
        }
        Ok(())
    }
}

/// Reads one frame from `r`: `Ok(None)` at a clean end of file (between
/// frames).
///
/// # Errors
///
/// A read error, or end of file inside a frame (`UnexpectedEof`).
pub fn read_frame(r: &mut impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "end of input inside a frame's length",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
    r.read_exact(&mut payload).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("end of input inside a frame of {} bytes", payload.len()),
            )
        } else {
            e
        }
    })?;
    Ok(Some(payload))
}

/// Appends `term` as one frame (length + payload) to `out`. A term whose
/// encoding exceeds [`MAX_FRAME`] is replaced by
/// `{TransId, {error, reply_too_large}}` when it is a reply, so no frame
/// is ever oversized.
pub fn push_frame(out: &mut Vec<u8>, term: &Term) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    // Encoding into a Vec cannot fail for the terms built here.
    if term.encode(&mut *out).is_err() || out.len() - start - 2 > MAX_FRAME {
        out.truncate(start);
        let trans = match term {
            Term::Tuple(t) if !t.elements.is_empty() => t.elements[0].clone(),
            _ => int(0),
        };
        let small = tuple(vec![trans, error(atom("reply_too_large"))]);
        out.extend_from_slice(&[0, 0]);
        let _ = small.encode(&mut *out);
    }
    let len = (out.len() - start - 2) as u16;
    out[start..start + 2].copy_from_slice(&len.to_be_bytes());
}

/// One frame `{0, {Tag, OsPid, Data}}` for a chunk of output (`Tag` is
/// `stdout` or `stderr`), appended to `out`.
pub fn push_output(out: &mut Vec<u8>, tag: &str, pid: u32, data: &[u8]) {
    OutputFrames::new(tag, pid).push(out, data);
}

/// Output frames of one stream of one child, made fast: `eetf` encodes
/// `{0, {Tag, OsPid, <<>>}}` once, and each chunk is that encoding with the
/// binary's length and bytes in place of the empty binary (the relay's hot
/// path: one copy of the data per frame instead of building and encoding
/// a term per 4 KiB chunk).
#[derive(Debug, Clone)]
pub struct OutputFrames {
    /// The encoding up to the binary's 4-byte length.
    prefix: Vec<u8>,
}

impl OutputFrames {
    /// The template for `tag` (`stdout` or `stderr`) of `pid`.
    pub fn new(tag: &str, pid: u32) -> OutputFrames {
        let term = tuple(vec![
            int(0),
            tuple(vec![
                atom(tag),
                int(i64::from(pid)),
                Term::from(Binary::from(&[][..])),
            ]),
        ]);
        let mut prefix = Vec::new();
        // Encoding into a Vec does not fail; an empty binary ends the
        // encoding as BINARY_EXT (109) with a zero length.
        let _ = term.encode(&mut prefix);
        debug_assert!(prefix.ends_with(&[109, 0, 0, 0, 0]));
        prefix.truncate(prefix.len().saturating_sub(4));
        OutputFrames { prefix }
    }

    /// Appends the frame of `data` (at most [`MAX_FRAME`] less the prefix:
    /// the relay's chunks are 4096 bytes).
    pub fn push(&self, out: &mut Vec<u8>, data: &[u8]) {
        let len = self.prefix.len() + 4 + data.len();
        debug_assert!(len <= MAX_FRAME);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
}

/// An atom.
pub fn atom(name: &str) -> Term {
    Term::from(Atom::from(name))
}

/// An integer (a big one beyond 32 bits).
pub fn int(v: i64) -> Term {
    match i32::try_from(v) {
        Ok(v) => Term::from(FixInteger::from(v)),
        Err(_) => Term::from(BigInteger::from(v)),
    }
}

/// A tuple.
pub fn tuple(elements: Vec<Term>) -> Term {
    Term::from(Tuple::from(elements))
}

/// A proper list.
pub fn list(elements: Vec<Term>) -> Term {
    Term::from(List::from(elements))
}

/// A string as erlexec sends it (STRING_EXT: an Erlang list of bytes).
pub fn string(s: &str) -> Term {
    if s.is_empty() {
        return Term::from(List::nil());
    }
    Term::from(ByteList::from(s))
}

/// `{error, Reason}`.
pub fn error(reason: Term) -> Term {
    tuple(vec![atom("error"), reason])
}

/// An integer term's value, when it is one.
pub fn as_int(t: &Term) -> Option<i64> {
    match t {
        Term::FixInteger(i) => Some(i64::from(i.value)),
        _ => None,
    }
}

/// An atom's name, when it is one.
pub fn as_atom(t: &Term) -> Option<&str> {
    match t {
        Term::Atom(a) => Some(&a.name),
        _ => None,
    }
}

/// The bytes of a string as the port accepts one: a binary, a byte string
/// (STRING_EXT), a list of character codes (encoded as UTF-8), or `[]`.
pub fn as_bytes(t: &Term) -> Option<Vec<u8>> {
    match t {
        Term::Binary(b) => Some(b.bytes.clone()),
        Term::ByteList(b) => Some(b.bytes.clone()),
        Term::List(l) => {
            let mut s = String::new();
            for e in &l.elements {
                let c = as_int(e).and_then(|c| u32::try_from(c).ok())?;
                s.push(char::from_u32(c)?);
            }
            Some(s.into_bytes())
        }
        _ => None,
    }
}

/// Elements of a proper list (a STRING_EXT is a list of small integers).
pub fn as_list(t: &Term) -> Option<Vec<Term>> {
    match t {
        Term::List(l) => Some(l.elements.clone()),
        Term::ByteList(b) => Some(b.bytes.iter().map(|&c| int(i64::from(c))).collect()),
        _ => None,
    }
}

/// A term for an error message, shortened so that a reply echoing it stays
/// well under a frame.
pub fn show(t: &Term) -> String {
    let mut s = t.to_string();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
