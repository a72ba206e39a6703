// SPDX-License-Identifier: GPL-2.0

//! Declarations of `shim.c`: what the 7.3 Rust abstractions cannot do yet. Each function's
//! comment in `shim.c` names the abstraction it stands in for.

use kernel::{bindings, ffi::c_char};

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

    /// `page_to_pfn(page)`.
    pub(crate) fn moreram_page_to_pfn(page: *mut bindings::page) -> usize;

    /// `get_pid(pid)`.
    pub(crate) fn moreram_get_pid(pid: *mut bindings::pid) -> *mut bindings::pid;

    /// `current->mm` (see shim.c for why not `CurrentTask::mm()`).
    pub(crate) fn moreram_current_mm() -> *mut bindings::mm_struct;

    /// A new inode of the module's pseudo filesystem (an `ERR_PTR` on failure), whose address
    /// space every open of `/dev/moreram` maps through.
    pub(crate) fn moreram_inode_new() -> *mut bindings::inode;

    /// Drops it.
    pub(crate) fn moreram_inode_free(inode: *mut bindings::inode);

    /// Adds the bank's attributes under `dev`'s `moreram/` in sysfs.
    pub(crate) fn moreram_sysfs_add(dev: *mut bindings::device) -> kernel::ffi::c_int;

    /// Removes them; waits for running `show`/`store` calls.
    pub(crate) fn moreram_sysfs_remove(dev: *mut bindings::device);

    /// Allocates and registers the DRM device of a bank, a child of `parent`; an `ERR_PTR` on
    /// failure.
    pub(crate) fn moreram_drm_register(parent: *mut bindings::device) -> *mut bindings::drm_device;

    /// Unplugs it and drops our reference.
    pub(crate) fn moreram_drm_unregister(drm: *mut bindings::drm_device);

    /// Adds the `fail_alloc` and `fail_release` fault-injection files to the debugfs directory
    /// `dir` (at the root).
    pub(crate) fn moreram_fail_alloc_debugfs(dir: *const c_char);

    /// `should_fail()` on the `fail_alloc` fault attribute.
    pub(crate) fn moreram_should_fail_alloc(size: u64) -> bool;

    /// `should_fail()` on the `fail_release` fault attribute.
    pub(crate) fn moreram_should_fail_release(size: u64) -> bool;
}
