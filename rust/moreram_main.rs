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
//! 1. the mm's locks, `mmap_lock` or a VMA lock (held by the kernel in `mmap` and page faults,
//!    and around `vm_ops.close`);
//! 2. `file::FILES`, the registry of open files (mutex);
//! 3. `file::MoreramFile::handles`, an open file's handles (mutex);
//! 4. `file::SHARES`, the registry of share tokens (mutex);
//! 5. `memory::Allocation::state`, an allocation's rights, mappings and pages (mutex; faults
//!    check rights and insert pages under it, and rights change and zap under it);
//!    Then `pool::POOLS`, the per-process pools (mutex; the shrinker only try-locks it);
//! 6. `bank::BANKS`, the registry of bound banks (mutex);
//! 7. `bank::Bank::revoked`, a bank's fault gate (mutex; faults insert pages under it);
//! 8. `bank::Bank::state`, a bank's allocation bookkeeping (mutex);
//! 9. the mm's `i_mmap_rwsem` and page-table locks (taken inside `unmap_mapping_range`);
//! 10. a bank's buddy allocator lock (mutex, inside [`kernel::gpu::buddy::GpuBuddy`]).
//!
//! Handles and allocations are dropped outside of 3 and 4 (freeing VRAM takes 8 and 10).
//! `file::MoreramFile::events` nests inside 2 only (scavenge requests are delivered with no other
//! lock held); `pool::SHRINKER` is taken alone.

mod bank;
mod debugfs;
mod drm;
mod file;
mod memory;
mod misc;
mod pci;
mod pool;
mod rights;
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
    /// Dropped last: the shrinker goes, then the pools.
    pools: Pools,
}

/// The pools and their shrinker, for the module's lifetime.
struct Pools;

impl Drop for Pools {
    fn drop(&mut self) {
        debugfs::exit();
        pool::unregister_shrinker();
        pool::clear();
    }
}

impl kernel::InPlaceModule for Moreram {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        bank::init();
        file::init();
        pool::init();
        try_pin_init!(Self {
            pools: {
                pool::register_shrinker()?;
                debugfs::init();
                Pools
            },
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
    params: {
        low_watermark_percent: u64 {
            default: 10,
            description: "Low watermark of a new bank, in percent of its size (pool holders are asked to scavenge below it)",
        },
        min_watermark_percent: u64 {
            default: 5,
            description: "Min watermark of a new bank, in percent of its size (pools are reclaimed at once below it)",
        },
        scavenge_deadline_ms: u64 {
            default: 1000,
            description: "Time a process has to give back pool memory when asked, in milliseconds",
        },
    },
}

#[kunit_tests(moreram_uapi)]
mod tests {
    use crate::{shim, uapi};
    use core::ffi::CStr;
    use kernel::prelude::*;

    /// The entries of a C table from `shim.c`, up to its NULL terminator.
    ///
    /// # Safety
    ///
    /// `table` must point to a static array of entries ending with one whose name is NULL, and
    /// every other name must be a static NUL-terminated string.
    unsafe fn c_table(
        table: *const uapi::LayoutEntry,
    ) -> impl Iterator<Item = (&'static CStr, usize)> {
        (0..)
            // SAFETY: we stop at the NULL-named terminator (`map_while`), so every index read is
            // inside the array, as the caller guarantees.
            .map(move |i| unsafe { &*table.add(i) })
            .map_while(|e| {
                // SAFETY: non-NULL names are static NUL-terminated strings (caller guarantee).
                (!e.name.is_null()).then(|| (unsafe { CStr::from_char_ptr(e.name) }, e.value))
            })
    }

    /// Every entry of the C table has the same value in the Rust table, and nothing is missing.
    ///
    /// # Safety
    ///
    /// As for [`c_table`].
    unsafe fn matches(c: *const uapi::LayoutEntry, rust: &[&[uapi::LayoutEntry]]) -> bool {
        let mut total = 0;
        for part in rust {
            total += part.len();
        }
        let mut n = 0;
        let mut ok = true;
        // SAFETY: guaranteed by the caller.
        for (name, value) in unsafe { c_table(c) } {
            n += 1;
            let found = rust.iter().flat_map(|p| p.iter()).find(|e| {
                // SAFETY: every name in the Rust tables is a NUL-terminated literal.
                let rust_name = unsafe { CStr::from_char_ptr(e.name) };
                rust_name == name
            });
            match found {
                None => {
                    pr_err!("{:?} is in the header but not in rust/uapi.rs\n", name);
                    ok = false;
                }
                Some(r) if r.value != value => {
                    pr_err!(
                        "{:?}: {} in rust/uapi.rs, {} in the header\n",
                        name,
                        r.value,
                        value
                    );
                    ok = false;
                }
                Some(_) => {}
            }
        }
        if n != total {
            pr_err!("rust/uapi.rs has {} entries, the header {}\n", total, n);
            ok = false;
        }
        ok
    }

    #[test]
    fn rust_layout_matches_header() {
        let c = core::ptr::addr_of!(shim::moreram_uapi_layout).cast::<uapi::LayoutEntry>();
        // SAFETY: `moreram_uapi_layout` is such a table (`shim.c`).
        assert!(unsafe { matches(c, &[uapi::RUST_LAYOUT, uapi::RUST_EVENT_LAYOUT]) });
    }

    #[test]
    fn rust_constants_match_header() {
        let c = core::ptr::addr_of!(shim::moreram_uapi_consts).cast::<uapi::LayoutEntry>();
        // SAFETY: `moreram_uapi_consts` is such a table (`shim.c`).
        assert!(unsafe { matches(c, &[uapi::RUST_CONSTS]) });
    }
}
