//! The size a NetCDF-3 file (CDF-1, CDF-2, CDF-5) must have according to its header.
//!
//! libnetcdf reads past the end of a truncated NetCDF-3 file as fill values without an error,
//! so a truncated file would be converted silently. Parsing the header (the format is small
//! and fixed, see the NetCDF "classic format specification") tells how long the file must be.

use std::io::Read;
use std::path::Path;

struct Header<'a> {
    bytes: &'a [u8],
    at: usize,
    /// CDF-5 uses 8-byte counts and lengths.
    wide: bool,
    /// CDF-2 and CDF-5 use 8-byte offsets.
    wide_offsets: bool,
}

const NC_DIMENSION: u32 = 10;
const NC_VARIABLE: u32 = 11;
const NC_ATTRIBUTE: u32 = 12;

impl Header<'_> {
    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(u64::from_be_bytes(b.try_into().ok()?))
    }

    /// A count or length: 4 bytes, 8 in CDF-5.
    fn count(&mut self) -> Option<u64> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn offset(&mut self) -> Option<u64> {
        if self.wide_offsets {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn skip_padded(&mut self, n: u64) -> Option<()> {
        let n = usize::try_from(n.div_ceil(4) * 4).ok()?;
        if self.at + n > self.bytes.len() {
            return None;
        }
        self.at += n;
        Some(())
    }

    fn name(&mut self) -> Option<()> {
        let n = self.count()?;
        self.skip_padded(n)
    }

    /// A list tag and its element count (0 for ABSENT).
    fn list(&mut self, tag: u32) -> Option<u64> {
        let t = self.u32()?;
        let n = self.count()?;
        if t == 0 && n == 0 {
            return Some(0);
        }
        (t == tag).then_some(n)
    }

    fn attributes(&mut self) -> Option<()> {
        for _ in 0..self.list(NC_ATTRIBUTE)? {
            self.name()?;
            let size = type_size(self.u32()?)?;
            let n = self.count()?;
            self.skip_padded(n.checked_mul(size)?)?;
        }
        Some(())
    }
}

fn type_size(nc_type: u32) -> Option<u64> {
    Some(match nc_type {
        1 | 2 | 7 => 1,   // byte, char, ubyte
        3 | 8 => 2,       // short, ushort
        4 | 5 | 9 => 4,   // int, float, uint
        6 | 10 | 11 => 8, // double, int64, uint64
        _ => return None,
    })
}

/// The byte length the header of the NetCDF-3 file at `path` requires, `None` when it cannot
/// tell (streaming record count, unreadable header).
pub(crate) fn expected_size(path: &Path) -> std::io::Result<Option<u64>> {
    let mut f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    // Headers are small; 16 MiB covers files with thousands of variables and attributes.
    f.by_ref().take(16 << 20).read_to_end(&mut bytes)?;
    Ok(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 4 || &bytes[..3] != b"CDF" {
        return None;
    }
    let version = bytes[3];
    let mut h = Header {
        bytes,
        at: 4,
        wide: version == 5,
        wide_offsets: version != 1,
    };
    let numrecs = h.count()?;
    if (!h.wide && numrecs == u64::from(u32::MAX)) || numrecs == u64::MAX {
        return None; // streaming
    }
    let mut dims = Vec::new();
    for _ in 0..h.list(NC_DIMENSION)? {
        h.name()?;
        dims.push(h.count()?);
    }
    h.attributes()?;
    struct Var {
        record: bool,
        bytes: u64,
        begin: u64,
    }
    let mut vars = Vec::new();
    for _ in 0..h.list(NC_VARIABLE)? {
        h.name()?;
        let ndims = h.count()?;
        let mut ids = Vec::new();
        for _ in 0..ndims {
            ids.push(usize::try_from(h.count()?).ok()?);
        }
        h.attributes()?;
        let size = type_size(h.u32()?)?;
        let _vsize = h.count()?;
        let begin = h.offset()?;
        let record = ids.first().is_some_and(|&d| dims.get(d) == Some(&0));
        let mut n = size;
        for (i, &d) in ids.iter().enumerate() {
            if record && i == 0 {
                continue;
            }
            n = n.checked_mul(*dims.get(d)?)?;
        }
        vars.push(Var {
            record,
            bytes: n,
            begin,
        });
    }
    let records: Vec<&Var> = vars.iter().filter(|v| v.record).collect();
    // Record variables are padded to 4 bytes each, except when there is only one.
    let recsize: u64 = if records.len() == 1 {
        records[0].bytes
    } else {
        records.iter().map(|v| v.bytes.div_ceil(4) * 4).sum()
    };
    let mut end = h.at as u64;
    for v in &vars {
        let last = if v.record {
            if numrecs == 0 {
                continue;
            }
            v.begin + (numrecs - 1) * recsize + v.bytes
        } else {
            v.begin + v.bytes
        };
        end = end.max(last);
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_header() {
        assert_eq!(parse(b"CDF"), None);
        assert_eq!(parse(b"HDF\x01\0\0\0\0"), None);
        // CDF-1, no records, no dimensions, attributes or variables.
        let empty = [
            b'C', b'D', b'F', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(parse(&empty), Some(32));
    }
}
