// SPDX-License-Identifier: GPL-2.0

//! Declarations of `rust/shim.c`: C inline functions and macros bindgen cannot see, and the UAPI
//! layout as the C compiler computes it from the header.

use kernel::bindings;

use crate::uapi::LayoutEntry;

// `struct pci_dev` holds types bindgen marks as not FFI-safe; only pointers to it cross here.
#[allow(improper_ctypes)]
extern "C" {
    /// Domain, bus number and devfn of `pdev`.
    pub(crate) fn moreram_pci_location(
        pdev: *mut bindings::pci_dev,
        domain: *mut u32,
        bus: *mut u8,
        devfn: *mut u8,
    );

    /// `pci_resource_flags(pdev, bar)`.
    pub(crate) fn moreram_pci_bar_flags(
        pdev: *mut bindings::pci_dev,
        bar: kernel::ffi::c_int,
    ) -> kernel::ffi::c_ulong;

    /// Sizes and offsets of the UAPI structs, from `include/uapi/linux/moreram.h`. Ends with an
    /// entry whose name is NULL.
    pub(crate) static moreram_uapi_layout: [LayoutEntry; 0];

    /// The header's constants (ioctl numbers, flags, limits), by name; NULL-terminated too.
    pub(crate) static moreram_uapi_consts: [LayoutEntry; 0];
}
