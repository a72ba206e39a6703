// SPDX-License-Identifier: GPL-2.0

//! moreram: a GPU's memory, seen through its PCI BAR, as a memory tier for programs.
//!
//! Each bound PCI device contributes its largest memory BAR as a *bank*, managed by the kernel's
//! GPU buddy allocator and announced as a DRM device. Programs reach the tier through the misc
//! device `/dev/moreram`; the user ABI is `include/uapi/linux/moreram.h`.
//!
//! # Lock order
//!
//! Locks are taken only in this order (a lock may be skipped, never taken out of order):
//!
//! 1. `bank::BANKS`, the registry of bound banks (mutex);
//! 2. a bank's buddy allocator lock (mutex, inside [`kernel::gpu::buddy::GpuBuddy`]).

mod bank;
mod drm;
mod misc;
mod pci;
mod shim;
mod uapi;

use kernel::prelude::*;

/// The module: `/dev/moreram` and the PCI driver.
///
/// Fields drop in order: `/dev/moreram` disappears before the devices unbind. The module cannot
/// be unloaded while a file is open (the file operations pin it).
#[pin_data]
struct Moreram {
    #[pin]
    misc: misc::Registration,
    #[pin]
    pci: kernel::driver::Registration<kernel::pci::Adapter<pci::MoreramPci>>,
}

impl kernel::InPlaceModule for Moreram {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        bank::init();
        try_pin_init!(Self {
            misc <- misc::Registration::register(),
            pci <- kernel::driver::Registration::new(c"moreram", module),
        })
    }
}

module! {
    type: Moreram,
    name: "moreram",
    authors: ["The moreram authors"],
    description: "GPU memory seen through a PCI BAR, as a memory tier for programs",
    license: "GPL",
}

#[kunit_tests(moreram_uapi)]
mod tests {
    use crate::{shim, uapi};
    use core::ffi::CStr;
    use kernel::prelude::*;

    /// The entries of the C layout table, up to its NULL terminator.
    fn c_layout() -> impl Iterator<Item = (&'static CStr, usize)> {
        let base = core::ptr::addr_of!(shim::moreram_uapi_layout).cast::<uapi::LayoutEntry>();
        (0..)
            // SAFETY: the C table is a static array terminated by an entry with a NULL name; we
            // stop at that entry (`map_while`), so every index read is inside the array.
            .map(move |i| unsafe { &*base.add(i) })
            .map_while(|e| {
                // SAFETY: non-NULL names in the table are static NUL-terminated literals.
                (!e.name.is_null()).then(|| (unsafe { CStr::from_char_ptr(e.name) }, e.value))
            })
    }

    #[test]
    fn rust_layout_matches_header() {
        let mut n = 0;
        for (name, value) in c_layout() {
            let rust = uapi::RUST_LAYOUT.iter().find(|e| {
                // SAFETY: every name in `RUST_LAYOUT` is a NUL-terminated literal.
                let rust_name = unsafe { CStr::from_char_ptr(e.name) };
                rust_name == name
            });
            if rust.is_none() {
                pr_err!("{:?} is in the header but not in rust/uapi.rs\n", name);
            }
            assert!(rust.is_some());
            if let Some(r) = rust {
                if r.value != value {
                    pr_err!(
                        "{:?}: {} in rust/uapi.rs, {} in the header\n",
                        name,
                        r.value,
                        value
                    );
                }
                assert_eq!(r.value, value);
            }
            n += 1;
        }
        assert_eq!(n, uapi::RUST_LAYOUT.len());
    }

    #[test]
    fn ioctl_numbers_match_header() {
        // SAFETY: the statics are initialised constants in `shim.c`.
        let (banks, v1) = unsafe {
            (
                shim::moreram_uapi_ioc_banks,
                shim::moreram_uapi_bank_info_size_v1,
            )
        };
        assert_eq!(uapi::IOC_BANKS, banks);
        assert_eq!(uapi::BANK_INFO_SIZE_V1 as u32, v1);
    }
}
