//! TensorFlow event files, the format TensorBoard reads: TFRecord framing (a length, its
//! masked CRC-32C, the record, its masked CRC-32C) around protobuf `Event` messages.
//! Only what scalar summaries need is written: `Event { wall_time = 1, step = 2,
//! file_version = 3, summary = 5 }`, `Summary { value = 1 }` and
//! `Summary.Value { tag = 1, simple_value = 2 }`; the reader takes those fields back
//! and skips any other.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The checksum TFRecord stores: CRC-32C, rotated and offset ("masked") so that a CRC of
/// data holding CRCs stays well mixed.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2): strings, bytes and messages.
fn delimited(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event` with the wall time, the step, and either the file version or a summary
/// of `(tag, value)` scalars.
fn event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(String, f32)]) -> Vec<u8> {
    let mut e = Vec::new();
    varint(&mut e, 1 << 3 | 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        varint(&mut e, 2 << 3);
        varint(&mut e, step as u64);
    }
    if let Some(v) = file_version {
        delimited(&mut e, 3, v.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut v = Vec::new();
            delimited(&mut v, 1, tag.as_bytes());
            varint(&mut v, 2 << 3 | 5);
            v.extend_from_slice(&value.to_le_bytes());
            delimited(&mut summary, 1, &v);
        }
        delimited(&mut e, 5, &summary);
    }
    e
}

/// Distinguishes the files one process opens within one second.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// An event file being written: `events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2` in
/// its directory, which starts with the file-version event.
pub(crate) struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` (and its parents) and a new event file in it.
    pub(crate) fn create(dir: &Path) -> Result<EventWriter> {
        let io = |path: &Path, source| Error::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty() && !h.contains('/'));
        let host = host.unwrap_or_else(|| "localhost".to_string());
        let n = OPENED.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{}.{n}.v2", std::process::id()));
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        let mut w = EventWriter { path, out: BufWriter::new(file) };
        w.record(&event(now(), 0, Some("brain.Event:2"), &[]))?;
        Ok(w)
    }

    /// Writes one event of scalars at `step` and flushes it (TensorBoard reads files as
    /// they grow).
    pub(crate) fn scalars(&mut self, step: i64, scalars: &[(String, f32)]) -> Result<()> {
        self.record(&event(now(), step, None, scalars))
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut frame = Vec::with_capacity(data.len() + 16);
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&masked_crc(&len).to_le_bytes());
        frame.extend_from_slice(data);
        frame.extend_from_slice(&masked_crc(data).to_le_bytes());
        let io = |source| Error::Io { path: self.path.display().to_string(), source };
        self.out.write_all(&frame).map_err(io)?;
        self.out.flush().map_err(|source| Error::Io { path: self.path.display().to_string(), source })
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One scalar of an event file: its step, tag and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub step: i64,
    pub tag: String,
    pub value: f32,
}

/// The scalar summaries of a TensorFlow event file (ours, or TensorFlow's with
/// `simple_value` scalars), in file order. Every record's checksums are verified: a
/// damaged or cut file is an `Err` naming the file and the offset.
pub fn read_scalars(path: impl AsRef<Path>) -> Result<Vec<Scalar>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let bad =
        |at: usize, what: &str| Error::invalid("read_scalars", format!("{}: {what} at byte {at}", path.display()));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 12).ok_or_else(|| bad(at, "a cut record header"))?;
        let (len, crc) = header.split_at(8);
        if u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) != masked_crc(len) {
            return Err(bad(at, "a record length whose checksum does not match"));
        }
        let n = u64::from_le_bytes(len.try_into().map_err(|_| bad(at, "a cut length"))?) as usize;
        let start = at + 12;
        let data = bytes.get(start..start.saturating_add(n)).ok_or_else(|| bad(at, "a cut record"))?;
        let crc = bytes.get(start + n..start + n + 4).ok_or_else(|| bad(at, "a cut record checksum"))?;
        if u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) != masked_crc(data) {
            return Err(bad(at, "a record whose checksum does not match"));
        }
        scalars_of(data, &mut out).ok_or_else(|| bad(start, "an event that is not valid protobuf"))?;
        at = start + n + 4;
    }
    Ok(out)
}

/// The fields of a protobuf message, in order: `(field number, payload)`; `None` ends
/// the walk at bytes that are not protobuf.
struct Fields<'a> {
    data: &'a [u8],
}

enum Payload<'a> {
    Varint(u64),
    /// A double (the wall time): not read, skipped.
    Fixed64,
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u32, Payload<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let field = (|| {
            let (key, k) = read_varint(self.data)?;
            let rest = &self.data[k..];
            let (payload, used) = match key & 7 {
                0 => read_varint(rest).map(|(v, n)| (Payload::Varint(v), n))?,
                1 => {
                    rest.get(..8)?;
                    (Payload::Fixed64, 8)
                }
                5 => (Payload::Fixed32(rest.get(..4)?.try_into().ok()?), 4),
                2 => {
                    let (n, k2) = read_varint(rest)?;
                    let n = usize::try_from(n).ok()?;
                    (Payload::Bytes(rest.get(k2..k2.checked_add(n)?)?), k2 + n)
                }
                _ => return None,
            };
            self.data = &rest[used..];
            Some(((key >> 3) as u32, payload))
        })();
        if field.is_none() {
            self.data = &[];
        }
        Some(field)
    }
}

/// The scalars of one `Event`, appended to `out` (`None`: not valid protobuf).
fn scalars_of(event: &[u8], out: &mut Vec<Scalar>) -> Option<()> {
    let mut step = 0;
    let mut summary = None;
    for f in (Fields { data: event }) {
        match f? {
            (2, Payload::Varint(v)) => step = v as i64,
            (5, Payload::Bytes(b)) => summary = Some(b),
            _ => {}
        }
    }
    for value in (Fields { data: summary.unwrap_or(&[]) }) {
        let (1, Payload::Bytes(v)) = value? else { continue };
        let (mut tag, mut simple) = (String::new(), None);
        for f in (Fields { data: v }) {
            match f? {
                (1, Payload::Bytes(b)) => tag = String::from_utf8_lossy(b).into_owned(),
                (2, Payload::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                _ => {}
            }
        }
        if let Some(value) = simple {
            out.push(Scalar { step, tag, value });
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_masked_castagnoli_crcs() {
        // CRC-32C's check value, then TFRecord's mask of it.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn an_event_is_the_protobuf_bytes_tensorflow_writes() {
        // Event { wall_time: 1.5, step: 3, summary { value { tag: "a", simple_value: 2.0 } } }
        let got = event(1.5, 3, None, &[("a".to_string(), 2.0)]);
        let want = [
            vec![0x09],
            1.5f64.to_le_bytes().to_vec(),
            vec![0x10, 3, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15],
            2.0f32.to_le_bytes().to_vec(),
        ]
        .concat();
        assert_eq!(got, want);
        let mut back = Vec::new();
        scalars_of(&got, &mut back).unwrap();
        assert_eq!(back, [Scalar { step: 3, tag: "a".into(), value: 2.0 }]);
        // A large step takes a multi-byte varint.
        let mut back = Vec::new();
        scalars_of(&event(0.0, 300, None, &[("b".to_string(), -1.0)]), &mut back).unwrap();
        assert_eq!(back[0].step, 300);
    }
}
