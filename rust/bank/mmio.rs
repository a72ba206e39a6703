// SPDX-License-Identifier: GPL-2.0

//! A bank's window on the device: a write-combined CPU mapping of a whole BAR.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{bindings, device::Bound, pci, prelude::*};

/// The `struct pci_dev` behind a [`pci::Device`].
pub(crate) fn raw_pci_dev<Ctx: kernel::device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
) -> *mut bindings::pci_dev {
    // `pci::Device` is `repr(transparent)` over `Opaque<bindings::pci_dev>`, which is in turn
    // `repr(transparent)` over the C struct: both have the same address.
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// A write-combined CPU mapping of a whole BAR, with the BAR's region requested.
///
/// The Rust `pci::Bar` maps uncached; memory handed to programs as memory wants write-combining.
///
/// # Invariants
///
/// `addr` is the `pci_iomap_wc` mapping of BAR `bar` of `pdev`, `len` bytes long, and the region of
/// that BAR is requested by us; both are released on drop.
pub(crate) struct Mmio {
    pdev: *mut bindings::pci_dev,
    addr: NonNull<c_void>,
    len: usize,
    bar: i32,
}

// SAFETY: the mapping and the region may be released from any thread.
unsafe impl Send for Mmio {}
// SAFETY: `&Mmio` only allows I/O accessors, which are safe to call concurrently.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// Requests BAR `bar` of `pdev`, `len` bytes long, and maps it write-combined.
    pub(crate) fn new(pdev: &pci::Device<Bound>, bar: u32, len: u64) -> Result<Self> {
        let raw = raw_pci_dev(pdev);
        let bar = i32::try_from(bar)?;
        let len = usize::try_from(len)?;
        // SAFETY: `raw` is a bound PCI device and `bar` one of its BARs; the name is static.
        if unsafe { bindings::pci_request_region(raw, bar, c"moreram".as_char_ptr()) } != 0 {
            return Err(EBUSY);
        }
        // SAFETY: as above; a `max` of 0 maps the whole BAR.
        let Some(addr) = NonNull::new(unsafe { bindings::pci_iomap_wc(raw, bar, 0) }) else {
            // SAFETY: we requested this region just above.
            unsafe { bindings::pci_release_region(raw, bar) };
            return Err(ENOMEM);
        };
        // INVARIANT: mapped and requested just above.
        Ok(Self {
            pdev: raw,
            addr,
            len,
            bar,
        })
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub(crate) fn fill(&self, offset: usize, len: usize, byte: u8) -> Result {
        self.check(offset, len)?;
        // SAFETY: the range is inside the mapping (checked), which is live by the invariants.
        unsafe { bindings::memset_io(self.addr.as_ptr().byte_add(offset), byte.into(), len) };
        Ok(())
    }

    /// The offset of the first 64-bit word in `[offset, offset + len)` that is not `word`.
    pub(crate) fn find_not(&self, offset: usize, len: usize, word: u64) -> Result<Option<usize>> {
        self.check(offset, len)?;
        for o in (offset..offset + len).step_by(8) {
            // SAFETY: inside the mapping (checked above), 8-byte aligned.
            if unsafe { bindings::readq(self.addr.as_ptr().byte_add(o)) } != word {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> Result {
        self.check(offset, buf.len())?;
        // SAFETY: the range is inside the mapping (checked), which is live by the invariants;
        // `buf` is ours to write.
        unsafe {
            bindings::memcpy_fromio(
                buf.as_mut_ptr().cast(),
                self.addr.as_ptr().byte_add(offset),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Copies `buf` to `offset`.
    pub(crate) fn write(&self, offset: usize, buf: &[u8]) -> Result {
        self.check(offset, buf.len())?;
        // SAFETY: as in `read`.
        unsafe {
            bindings::memcpy_toio(
                self.addr.as_ptr().byte_add(offset),
                buf.as_ptr().cast(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Reads the 64-bit word at `offset`.
    pub(crate) fn read64(&self, offset: usize) -> Result<u64> {
        self.check(offset, 8)?;
        // SAFETY: the word is inside the mapping (checked), which is live by the invariants;
        // `offset` is 8-byte aligned (checked).
        Ok(unsafe { bindings::readq(self.addr.as_ptr().byte_add(offset)) })
    }

    /// Writes the 64-bit word at `offset`.
    pub(crate) fn write64(&self, offset: usize, v: u64) -> Result {
        self.check(offset, 8)?;
        // SAFETY: as in `read64`.
        unsafe { bindings::writeq(v, self.addr.as_ptr().byte_add(offset)) };
        Ok(())
    }

    /// Whether the BAR holds what is written to it, at its first and last word: a BAR of
    /// registers, or one that reads back all ones, is no memory to hand out. The device's bytes
    /// are not ours yet: what was there is put back. Returns the first mismatch as
    /// `(written, read)`.
    pub(crate) fn check_memory(&self) -> Result<Option<(u64, u64)>> {
        let last = self.len.checked_sub(8).ok_or(ENODEV)? & !7;
        for (offset, pattern) in [(0, 0x6d6f_7265_7261_6d21u64), (last, 0x216d_6172_6572_6f6d)] {
            let old = self.read64(offset)?;
            self.write64(offset, pattern)?;
            let back = self.read64(offset)?;
            self.write64(offset, old)?;
            if back != pattern {
                return Ok(Some((pattern, back)));
            }
        }
        Ok(None)
    }

    fn check(&self, offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= self.len && offset % 8 == 0 => Ok(()),
            _ => Err(EINVAL),
        }
    }
}

impl Drop for Mmio {
    fn drop(&mut self) {
        // SAFETY: by the type invariants, `addr` is our mapping of `bar` on `pdev` and the region
        // is ours; devres drops us before the device is released.
        unsafe {
            bindings::pci_iounmap(self.pdev, self.addr.as_ptr());
            bindings::pci_release_region(self.pdev, self.bar);
        }
    }
}
