// SPDX-License-Identifier: GPL-2.0

//! A bank's numbers and knobs under its PCI device's `moreram/` in sysfs. The attribute files
//! are made by the shim (7.3 has no sysfs attribute abstraction), which passes each attribute's
//! name here.

use core::ffi::CStr;
use kernel::{bindings, error::to_result, ffi::c_char, page::PAGE_SHIFT, pci, prelude::*};

use crate::shim;

/// The attributes, by the names of their files.
#[derive(Clone, Copy)]
enum Attr {
    Bank,
    Size,
    Free,
    LargestFree,
    Pooled,
    Processes,
    LowWatermark,
    MinWatermark,
    ScavengeDeadlineMs,
}

impl Attr {
    fn from_name(name: &CStr) -> Option<Self> {
        Some(match name.to_bytes() {
            b"bank" => Attr::Bank,
            b"size" => Attr::Size,
            b"free" => Attr::Free,
            b"largest_free" => Attr::LargestFree,
            b"pooled" => Attr::Pooled,
            b"processes" => Attr::Processes,
            b"low_watermark" => Attr::LowWatermark,
            b"min_watermark" => Attr::MinWatermark,
            b"scavenge_deadline_ms" => Attr::ScavengeDeadlineMs,
            _ => return None,
        })
    }
}

/// The attribute named `name` (a C string) of the bank of `dev`.
///
/// # Safety
///
/// `name` is a valid NUL-terminated string.
unsafe fn lookup(
    dev: *mut bindings::device,
    name: *const c_char,
) -> Result<(
    kernel::sync::Arc<crate::front::Tier>,
    kernel::sync::Arc<crate::bank::Bank>,
    Attr,
)> {
    // SAFETY: the caller guarantees `name`.
    let attr = Attr::from_name(unsafe { CStr::from_char_ptr(name) }).ok_or(EINVAL)?;
    let tier = super::tier().ok_or(ENODEV)?;
    let bank = tier.banks.by_device(dev).ok_or(ENODEV)?;
    Ok((tier, bank, attr))
}

/// `show` of the bank's attributes (`shim.c`).
///
/// # Safety
///
/// Called by the shim with a device and an attribute name, both valid.
#[no_mangle]
unsafe extern "C" fn moreram_bank_attr_get(
    dev: *mut bindings::device,
    name: *const c_char,
    value: *mut u64,
) -> i32 {
    // SAFETY: as the caller guarantees.
    let (tier, b, attr) = match unsafe { lookup(dev, name) } {
        Ok(found) => found,
        Err(e) => return e.to_errno(),
    };
    let w = b.watermarks();
    let v = match attr {
        Attr::Bank => u64::from(b.index()),
        Attr::Size => b.size(),
        Attr::Free => b.free(),
        Attr::LargestFree => b.largest_free(),
        Attr::Pooled => tier.pools.pooled(b.index()),
        Attr::Processes => tier.processes_in(b.index()) as u64,
        Attr::LowWatermark => w.low << PAGE_SHIFT,
        Attr::MinWatermark => w.min << PAGE_SHIFT,
        Attr::ScavengeDeadlineMs => w.deadline_ms,
    };
    // SAFETY: `value` points to the caller's variable.
    unsafe { *value = v };
    0
}

/// `store` of the bank's attributes: watermarks in bytes, the deadline in milliseconds.
///
/// # Safety
///
/// Called by the shim with a device and an attribute name, both valid.
#[no_mangle]
unsafe extern "C" fn moreram_bank_attr_set(
    dev: *mut bindings::device,
    name: *const c_char,
    value: u64,
) -> i32 {
    // SAFETY: as the caller guarantees.
    let (_, b, attr) = match unsafe { lookup(dev, name) } {
        Ok(found) => found,
        Err(e) => return e.to_errno(),
    };
    let set = match attr {
        Attr::LowWatermark => b.set_low_watermark(value),
        Attr::MinWatermark => b.set_min_watermark(value),
        Attr::ScavengeDeadlineMs => b.set_deadline_ms(value),
        _ => Err(EINVAL),
    };
    match set {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The bank's sysfs attributes, under the PCI device's `moreram/`; removed on drop.
pub(crate) struct Sysfs(*mut bindings::device);

// SAFETY: the device outlives the binding, and removing the group may happen on any thread.
unsafe impl Send for Sysfs {}

impl Sysfs {
    pub(crate) fn add(pdev: &pci::Device<kernel::device::Core<'_>>) -> Result<Self> {
        let dev: *mut bindings::device = core::ptr::from_ref(pdev.as_ref()).cast_mut().cast();
        // SAFETY: `dev` is the bound device; the group is static.
        to_result(unsafe { shim::moreram_sysfs_add(dev) })?;
        Ok(Self(dev))
    }
}

impl Drop for Sysfs {
    fn drop(&mut self) {
        // SAFETY: added in `add`; the device is still bound (we are dropped in unbind).
        unsafe { shim::moreram_sysfs_remove(self.0) };
    }
}
