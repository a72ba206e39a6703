// SPDX-License-Identifier: GPL-2.0

//! The DRM device registered for each bank.
//!
//! It makes a bank visible where GPU tools look (`/dev/dri/card*`, `/sys/class/drm`), and its
//! fdinfo says how much of the bank the process that opened the file owns. Memory is allocated
//! through `/dev/moreram`; the DRM device has no ioctls of its own.
//!
//! The device is registered by the C shim: the 7.3 Rust DRM abstraction fixes `show_fdinfo` to
//! `None` in constant tables, which would leave the DRM files without fdinfo.

use core::ptr::NonNull;
use kernel::{bindings, device::Core, error::from_err_ptr, pci, prelude::*};

use crate::{process::Process, shim};

/// A registered DRM device; unplugged on drop.
///
/// # Invariants
///
/// `0` is a registered DRM device on which we hold the reference `drm_dev_alloc` gave.
pub(crate) struct DrmDevice(NonNull<bindings::drm_device>);

// SAFETY: unplugging and putting a DRM device may happen on any thread.
unsafe impl Send for DrmDevice {}

impl DrmDevice {
    /// Registers the DRM device of the bank of `pdev`.
    pub(crate) fn register(pdev: &pci::Device<Core<'_>>) -> Result<Self> {
        let parent: *mut bindings::device = core::ptr::from_ref(pdev.as_ref()).cast_mut().cast();
        // SAFETY: `parent` is a bound device; the shim returns a registered device or an error.
        let drm = from_err_ptr(unsafe { shim::moreram_drm_register(parent) })?;
        // INVARIANT: registered just above, with our reference.
        NonNull::new(drm).map(Self).ok_or(ENOMEM)
    }
}

impl Drop for DrmDevice {
    fn drop(&mut self) {
        // SAFETY: registered by `register` (type invariants); this drops our reference.
        unsafe { shim::moreram_drm_unregister(self.0.as_ptr()) };
    }
}

/// fdinfo of the DRM files (`shim.c`): the bytes of the bank of `parent` that `pid` owns.
/// Returns the bank index, or -1 if `parent` is no bank.
///
/// # Safety
///
/// Called by the shim with a valid device, a valid `struct pid` or NULL, and a valid `owned`.
#[no_mangle]
unsafe extern "C" fn moreram_drm_usage(
    parent: *mut bindings::device,
    pid: *mut bindings::pid,
    owned: *mut u64,
) -> i32 {
    let Some(tier) = super::tier() else { return -1 };
    let Some(b) = tier.banks.by_device(parent) else {
        return -1;
    };
    // SAFETY: `pid` is NULL or valid for the call (caller).
    let bytes = unsafe { Process::from_pid(pid) }.map_or(0, |p| tier.owned_in(b.index(), &p));
    // SAFETY: `owned` points to the caller's variable.
    unsafe { *owned = bytes };
    b.index() as i32
}
