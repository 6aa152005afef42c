//! Task blocks live in their own anonymous memory mappings, not on the heap.
//!
//! A block is the largest buffer of a task and lives as long as its stage. On the heap, blocks
//! below the allocator's mmap threshold stay cached in its arenas after they are freed (as holes
//! beyond the trim threshold), where the next stage's blocks cannot reuse them: the process's
//! memory bound would then hold only by luck. A mapping of its own is returned to the system the
//! moment it is dropped, and is page-aligned, which direct I/O into the block needs.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// A byte buffer in its own page-aligned anonymous mapping.
pub struct PageBuffer {
    /// Start of the mapping (dangling while nothing is mapped).
    start: NonNull<u8>,
    /// Bytes in use.
    len: usize,
    /// Bytes mapped (a multiple of the page size, or 0).
    mapped: usize,
}

// SAFETY: the buffer owns its mapping exclusively, like a `Vec<u8>` owns its allocation.
unsafe impl Send for PageBuffer {}
// SAFETY: shared access only reads, through `Deref`.
unsafe impl Sync for PageBuffer {}

impl Default for PageBuffer {
    fn default() -> Self {
        PageBuffer {
            start: NonNull::dangling(),
            len: 0,
            mapped: 0,
        }
    }
}

impl PageBuffer {
    /// Makes the buffer `len` bytes long. Its contents are unspecified: bytes kept from earlier
    /// use where the mapping is large enough, zeros where it had to be replaced. Callers
    /// overwrite every byte before reading it.
    pub fn set_len(&mut self, len: usize) -> std::io::Result<()> {
        if len > self.mapped {
            self.unmap();
            let size = len.next_multiple_of(page_size());
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            let at = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if at == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            self.start = NonNull::new(at.cast()).ok_or(std::io::ErrorKind::OutOfMemory)?;
            self.mapped = size;
        }
        self.len = len;
        Ok(())
    }

    fn unmap(&mut self) {
        if self.mapped > 0 {
            // SAFETY: `start..start + mapped` is a mapping this buffer made and still owns; no
            // borrow of it can outlive `&mut self`.
            unsafe {
                libc::munmap(self.start.as_ptr().cast(), self.mapped);
            }
        }
        // Field by field: assigning a whole `PageBuffer` would drop the old one, recursing.
        self.start = NonNull::dangling();
        self.len = 0;
        self.mapped = 0;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

impl Deref for PageBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `start` is valid for `len <= mapped` bytes (or dangling with `len == 0`),
        // mapped readable and writable, and initialized (anonymous pages read as zeros).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for PageBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for PageBuffer {
    fn drop(&mut self) {
        self.unmap();
    }
}

/// Hands the pages of freed heap memory back to the kernel (glibc's `malloc_trim`). Buffers
/// below the mmap threshold stay resident after `free` in holes of the heap that trimming its
/// top does not reach; call this where what the process holds is measured or must shrink.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_into_fresh_aligned_pages_and_keeps_contents_when_shrinking() {
        let mut buf = PageBuffer::default();
        assert!(buf.is_empty());
        buf.set_len(10).unwrap();
        assert_eq!(buf.as_ptr() as usize % page_size(), 0);
        buf.copy_from_slice(&[7; 10]);
        buf.set_len(5).unwrap();
        assert_eq!(&buf[..], &[7; 5]);
        buf.set_len(10).unwrap();
        assert_eq!(
            &buf[..],
            &[7; 10],
            "regrowing within the mapping keeps the bytes"
        );
        buf.set_len(3 * page_size() + 1).unwrap();
        assert_eq!(buf.len(), 3 * page_size() + 1);
        assert!(buf.iter().all(|&b| b == 0), "a new mapping reads as zeros");
        buf.set_len(0).unwrap();
        assert!(buf.is_empty());
    }
}
