//! Owned HDF5 identifiers and error capture.

use crate::locked;
use hdf5_sys::h5i::{hid_t, H5Idec_ref, H5Iis_valid};

/// An HDF5 identifier we own: released (under the lock) when dropped.
#[derive(Debug)]
pub struct Hid(hid_t);

impl Hid {
    /// Takes ownership of `id`, or reports the HDF5 error that made it invalid. Call with the
    /// lock held, right after the call that returned `id`.
    pub fn new(id: hid_t) -> Result<Hid, String> {
        if id < 0 {
            return Err(last_error());
        }
        Ok(Hid(id))
    }

    pub fn id(&self) -> hid_t {
        self.0
    }
}

impl Drop for Hid {
    fn drop(&mut self) {
        let id = self.0;
        // SAFETY: under the library lock; both calls take the id by value. `H5Iis_valid`
        // guards against ids the library already closed (e.g. a file closed by libnetcdf),
        // and we hold exactly one reference, taken when the id was created or handed to us.
        locked(|| unsafe {
            if H5Iis_valid(id) > 0 {
                H5Idec_ref(id);
            }
        });
    }
}

/// The current thread's HDF5 error stack as one line: the outermost description and the
/// innermost cause (call with the lock held, right after the failing call).
pub(crate) fn last_error() -> String {
    let error = match hdf5::Error::query() {
        Ok(e) | Err(e) => e,
    };
    match error.stack() {
        Some(stack) if !stack.is_empty() => stack.description().to_string(),
        _ => error.to_string(),
    }
}

/// Turns an HDF5 status (negative = failure) into a `Result` carrying HDF5's message. Call
/// with the lock held.
pub fn check<T: Into<i64> + Copy>(value: T) -> Result<T, String> {
    if value.into() < 0 {
        Err(last_error())
    } else {
        Ok(value)
    }
}
