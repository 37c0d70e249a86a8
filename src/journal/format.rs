//! The bytes on disk: headers and record frames, and the checks that read them back.
//! Pure functions over byte slices, so that every check can be tested without files.

use super::error::{Damage, HeaderProblem};

/// Magic bytes opening every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"WGJOURNL";
/// Magic bytes opening every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"WGSNAPSH";
/// The format version written, and the only one read.
pub(crate) const VERSION: u32 = 1;
/// magic (8) | version u32 | first position u64 | crc32 of the preceding 20 bytes.
pub(crate) const SEGMENT_HEADER_LEN: usize = 24;
/// magic (8) | version u32 | covers u64 | payload length u64 | crc32 of the preceding
/// 28 bytes and the payload.
pub(crate) const SNAPSHOT_HEADER_LEN: usize = 32;
/// length u32 | crc32 of the length's 4 bytes and the payload.
pub(crate) const FRAME_LEN: usize = 8;
/// The longest record payload: a length field above it is damage, not a record.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The checksum of a record: over its length field and its payload, so that a length
/// damaged into another plausible length is caught too.
pub(crate) fn record_crc(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Appends one record frame and its payload to `out`. The caller has checked the length.
pub(crate) fn push_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&record_crc(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) fn segment_header(first: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_magic_version(bytes: &[u8], magic: [u8; 8]) -> Result<(), HeaderProblem> {
    let mut found = [0; 8];
    found.copy_from_slice(&bytes[..8]);
    if found != magic {
        return Err(HeaderProblem::Magic { found });
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(HeaderProblem::Version {
            found: version,
            supported: VERSION,
        });
    }
    Ok(())
}

/// The first position a segment's header names.
pub(crate) fn read_segment_header(bytes: &[u8]) -> Result<u64, HeaderProblem> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(HeaderProblem::TooShort {
            len: bytes.len() as u64,
            need: SEGMENT_HEADER_LEN as u64,
        });
    }
    check_magic_version(bytes, SEGMENT_MAGIC)?;
    let stored = u32_at(bytes, 20);
    let computed = crc32fast::hash(&bytes[..20]);
    if stored != computed {
        return Err(HeaderProblem::Checksum { stored, computed });
    }
    Ok(u64_at(bytes, 12))
}

/// A whole snapshot file: header and payload.
pub(crate) fn snapshot_file(covers: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&covers.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The position a snapshot's header says it covers, after checking only the header's
/// fixed fields (not the checksum, which needs the payload).
pub(crate) fn read_snapshot_covers(header: &[u8]) -> Result<u64, HeaderProblem> {
    if header.len() < SNAPSHOT_HEADER_LEN {
        return Err(HeaderProblem::TooShort {
            len: header.len() as u64,
            need: SNAPSHOT_HEADER_LEN as u64,
        });
    }
    check_magic_version(header, SNAPSHOT_MAGIC)?;
    Ok(u64_at(header, 12))
}

/// A whole snapshot file checked: the position it covers and its payload.
pub(crate) fn read_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), HeaderProblem> {
    let covers = read_snapshot_covers(bytes)?;
    let declared = u64_at(bytes, 20);
    let actual = (bytes.len() - SNAPSHOT_HEADER_LEN) as u64;
    if declared != actual {
        return Err(HeaderProblem::Length { declared, actual });
    }
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    let stored = u32_at(bytes, 28);
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..28]);
    h.update(payload);
    let computed = h.finalize();
    if stored != computed {
        return Err(HeaderProblem::Checksum { stored, computed });
    }
    Ok((covers, payload))
}

/// Checks the record whose frame starts at `offset`; answers where it ends.
pub(crate) fn check_record(bytes: &[u8], offset: usize) -> Result<usize, Damage> {
    let rest = bytes.len().saturating_sub(offset);
    if rest < FRAME_LEN {
        return Err(Damage::ShortFrame {
            available: rest as u64,
        });
    }
    let len = u32_at(bytes, offset) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(Damage::TooLong { len: len as u64 });
    }
    let available = rest - FRAME_LEN;
    if len > available {
        return Err(Damage::Truncated {
            len: len as u64,
            available: available as u64,
        });
    }
    let stored = u32_at(bytes, offset + 4);
    let start = offset + FRAME_LEN;
    let mut lenb = [0; 4];
    lenb.copy_from_slice(&bytes[offset..offset + 4]);
    let computed = record_crc(lenb, &bytes[start..start + len]);
    if stored != computed {
        return Err(Damage::Checksum { stored, computed });
    }
    Ok(start + len)
}

/// The records of one segment's bytes, checked from `start` on.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Valid records before the first damage (or the end).
    pub(crate) records: u64,
    /// Where the valid records end.
    pub(crate) valid_len: usize,
    /// The first damaged record, if any.
    pub(crate) damage: Option<Damage>,
}

pub(crate) fn scan(bytes: &[u8], start: usize) -> Scan {
    let mut offset = start;
    let mut records = 0;
    while offset < bytes.len() {
        match check_record(bytes, offset) {
            Ok(end) => {
                offset = end;
                records += 1;
            }
            Err(damage) => {
                return Scan {
                    records,
                    valid_len: offset,
                    damage: Some(damage),
                };
            }
        }
    }
    Scan {
        records,
        valid_len: offset,
        damage: None,
    }
}

/// The first offset after `damaged` at which a whole valid record stands: proof that
/// the damage is not a torn tail. Costs one checksum per offset whose length field fits
/// in what remains; only damaged files pay it.
pub(crate) fn valid_record_after(bytes: &[u8], damaged: usize) -> Option<usize> {
    (damaged + 1..bytes.len().saturating_sub(FRAME_LEN - 1))
        .find(|&at| check_record(bytes, at).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        push_record(&mut buf, b"hello journal");
        assert_eq!(check_record(&buf, 0), Ok(buf.len()));
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[byte] ^= 1 << bit;
                assert!(check_record(&b, 0).is_err(), "flip {byte}:{bit} not caught");
            }
        }
    }

    #[test]
    fn headers_round_trip_and_refuse_damage() {
        let h = segment_header(12345);
        assert_eq!(read_segment_header(&h), Ok(12345));
        let mut bad = h;
        bad[13] ^= 1;
        assert!(matches!(
            read_segment_header(&bad),
            Err(HeaderProblem::Checksum { .. })
        ));
        let mut v2 = h;
        v2[8] = 2;
        assert!(matches!(
            read_segment_header(&v2),
            Err(HeaderProblem::Version { found: 2, .. })
        ));
        let s = snapshot_file(77, b"state");
        assert_eq!(read_snapshot(&s), Ok((77, &b"state"[..])));
        let mut t = s.clone();
        t.pop();
        assert!(matches!(
            read_snapshot(&t),
            Err(HeaderProblem::Length { .. })
        ));
        let mut c = s;
        let last = c.len() - 1;
        c[last] ^= 0x80;
        assert!(matches!(
            read_snapshot(&c),
            Err(HeaderProblem::Checksum { .. })
        ));
    }

    #[test]
    fn the_empty_payload_is_a_record_but_zeros_are_not() {
        let mut buf = Vec::new();
        push_record(&mut buf, b"");
        assert_eq!(check_record(&buf, 0), Ok(FRAME_LEN));
        assert!(matches!(
            check_record(&[0; 64], 0),
            Err(Damage::Checksum { .. })
        ));
        assert_eq!(valid_record_after(&[0; 64], 0), None);
    }
}
