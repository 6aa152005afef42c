//! How NetCDF sources are opened and targets written.

use crate::error::NetcdfError;
use netcdf_sys as sys;
use std::fmt;
use std::os::raw::c_int;
use std::str::FromStr;

/// The file format to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetcdfFormat {
    /// NetCDF-4 (HDF5 storage): chunking, compression, groups, all numeric types.
    #[default]
    Netcdf4,
    /// NetCDF-4 restricted to the classic data model (no groups, classic types only).
    Netcdf4Classic,
    /// NetCDF-3 classic (CDF-1): no compression, classic types, 2 GiB variable limits.
    Classic,
    /// NetCDF-3 64-bit offset (CDF-2).
    Offset64,
    /// CDF-5 (64-bit data): NetCDF-3 with unsigned and 64-bit integers.
    Cdf5,
}

impl NetcdfFormat {
    /// The `nc_create` mode flags.
    pub(crate) fn cmode(self) -> c_int {
        match self {
            NetcdfFormat::Netcdf4 => sys::NC_NETCDF4,
            NetcdfFormat::Netcdf4Classic => sys::NC_NETCDF4 | sys::NC_CLASSIC_MODEL,
            NetcdfFormat::Classic => 0,
            NetcdfFormat::Offset64 => sys::NC_64BIT_OFFSET,
            NetcdfFormat::Cdf5 => sys::NC_64BIT_DATA,
        }
    }

    /// True for the formats stored in HDF5 (chunked, compressed, written by raw chunks).
    pub fn is_hdf5(self) -> bool {
        matches!(self, NetcdfFormat::Netcdf4 | NetcdfFormat::Netcdf4Classic)
    }

    /// True when unsigned and 64-bit integer types exist.
    pub fn has_extended_types(self) -> bool {
        matches!(self, NetcdfFormat::Netcdf4 | NetcdfFormat::Cdf5)
    }

    /// True when `string` attributes (lists of strings) exist.
    pub fn has_strings(self) -> bool {
        self == NetcdfFormat::Netcdf4
    }

    /// True when variables may live in groups.
    pub fn has_groups(self) -> bool {
        self == NetcdfFormat::Netcdf4
    }

    /// True when several dimensions may be unlimited, anywhere in a variable's dimensions.
    pub fn has_free_unlimited(self) -> bool {
        self == NetcdfFormat::Netcdf4
    }

    /// The format of an open file (`nc_inq_format`).
    pub(crate) fn from_nc(format: c_int) -> Option<NetcdfFormat> {
        Some(match format {
            sys::NC_FORMAT_NETCDF4 => NetcdfFormat::Netcdf4,
            sys::NC_FORMAT_NETCDF4_CLASSIC => NetcdfFormat::Netcdf4Classic,
            sys::NC_FORMAT_CLASSIC => NetcdfFormat::Classic,
            sys::NC_FORMAT_64BIT_OFFSET => NetcdfFormat::Offset64,
            sys::NC_FORMAT_CDF5 => NetcdfFormat::Cdf5,
            _ => return None,
        })
    }
}

impl FromStr for NetcdfFormat {
    type Err = NetcdfError;
    fn from_str(s: &str) -> Result<Self, NetcdfError> {
        match s.trim().to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
            "netcdf4" | "nc4" | "4" => Ok(NetcdfFormat::Netcdf4),
            "netcdf4-classic" | "nc4-classic" => Ok(NetcdfFormat::Netcdf4Classic),
            "classic" | "netcdf3" | "nc3" | "3" | "cdf1" => Ok(NetcdfFormat::Classic),
            "64bit-offset" | "offset64" | "cdf2" => Ok(NetcdfFormat::Offset64),
            "cdf5" | "64bit-data" => Ok(NetcdfFormat::Cdf5),
            other => Err(NetcdfError::Option(format!(
                "unknown NetCDF format `{other}`; use netcdf4, netcdf4-classic, classic, 64bit-offset or cdf5"
            ))),
        }
    }
}

impl fmt::Display for NetcdfFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetcdfFormat::Netcdf4 => "netcdf4",
            NetcdfFormat::Netcdf4Classic => "netcdf4-classic",
            NetcdfFormat::Classic => "classic",
            NetcdfFormat::Offset64 => "64bit-offset",
            NetcdfFormat::Cdf5 => "cdf5",
        })
    }
}

/// Compression of NetCDF-4 variables: the codec type HDF5 and NetCDF-4 share (`zlib:L`,
/// `gzip:L`, `zstd:L` (readers need the zstd plugin), `none`; see [`H5Codec`]).
pub type NcCodec = rechunker_h5::H5Codec;

/// Options of [`crate::NetcdfTarget`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcdfWriteOptions {
    /// The file format; `None`: netcdf4, or, when `codec` is `None` too, the flavour of the
    /// NetCDF source (see [`NetcdfWriteOptions::keeps_source`]).
    pub format: Option<NetcdfFormat>,
    /// Compression (NetCDF-4 formats only; classic formats store raw data); `None`:
    /// [`NcCodec::default`], or, when `format` is `None` too, each NetCDF source variable's
    /// own filters.
    pub codec: Option<NcCodec>,
    /// Byte shuffle before compression (with a codec; kept filters bring their own).
    pub shuffle: bool,
    /// Dimensions to make unlimited besides those the arrays' metadata mark
    /// ([`ArrayMeta::unlimited_dims`](rechunker_core::ArrayMeta::unlimited_dims), which a
    /// NetCDF source fills in). Classic formats allow one, which must be the first dimension
    /// of every variable that uses it; otherwise it is written with a fixed length.
    pub unlimited_dims: Vec<String>,
    /// Reopen an unfinished `PATH.partial` (a resumed run) instead of starting it anew.
    pub resume: bool,
}

impl Default for NetcdfWriteOptions {
    fn default() -> Self {
        NetcdfWriteOptions {
            format: None,
            codec: None,
            shuffle: true,
            unlimited_dims: Vec::new(),
            resume: false,
        }
    }
}

impl NetcdfWriteOptions {
    /// Neither a format nor a codec given: a NetCDF source's flavour and each variable's
    /// filters are kept (what `NativeEncoding` of format `"netcdf"` carries).
    pub fn keeps_source(&self) -> bool {
        self.format.is_none() && self.codec.is_none()
    }
}

/// How to open a source.
#[derive(Clone, Debug, Default)]
pub struct NetcdfReadOptions {
    /// Skip variables of unsupported types (char, string, user-defined) with a warning
    /// instead of failing.
    pub skip_unsupported: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        assert_eq!(
            "zlib:4".parse::<NcCodec>().unwrap(),
            NcCodec::Deflate { level: 4 }
        );
        assert_eq!(
            "deflate:1".parse::<NcCodec>().unwrap(),
            NcCodec::Deflate { level: 1 }
        );
        assert_eq!(
            "zstd".parse::<NcCodec>().unwrap(),
            NcCodec::Zstd { level: 3 }
        );
        assert_eq!("none".parse::<NcCodec>().unwrap(), NcCodec::None);
        assert!("zlib:12".parse::<NcCodec>().is_err());
        assert_eq!(
            "NETCDF4_CLASSIC".parse::<NetcdfFormat>().unwrap(),
            NetcdfFormat::Netcdf4Classic
        );
        assert_eq!(
            "classic".parse::<NetcdfFormat>().unwrap(),
            NetcdfFormat::Classic
        );
        assert!("netcdf5".parse::<NetcdfFormat>().is_err());
    }
}
