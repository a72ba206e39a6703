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

    /// `page_to_pfn(page)`.
    pub(crate) fn moreram_page_to_pfn(page: *mut bindings::page) -> usize;

    /// A new reference to the calling process's thread-group `struct pid`.
    pub(crate) fn moreram_current_tgid() -> *mut bindings::pid;

    /// A new reference to the `struct pid` of the thread group `nr` in the caller's pid
    /// namespace, or NULL.
    pub(crate) fn moreram_find_tgid(nr: i32) -> *mut bindings::pid;

    /// `get_pid(pid)`.
    pub(crate) fn moreram_get_pid(pid: *mut bindings::pid) -> *mut bindings::pid;

    /// `pid_vnr(pid)`: the number in the caller's pid namespace, 0 if not visible.
    pub(crate) fn moreram_pid_nr(pid: *mut bindings::pid) -> i32;

    /// Whether the process is gone or exiting (`PF_EXITING`).
    pub(crate) fn moreram_pid_exiting(pid: *mut bindings::pid) -> bool;

    /// Adds the bank's attributes under `dev`'s `moreram/` in sysfs.
    pub(crate) fn moreram_sysfs_add(dev: *mut bindings::device) -> kernel::ffi::c_int;

    /// Removes them; waits for running `show`/`store` calls.
    pub(crate) fn moreram_sysfs_remove(dev: *mut bindings::device);

    /// Allocates and registers the DRM device of a bank, a child of `parent`; an `ERR_PTR` on
    /// failure.
    pub(crate) fn moreram_drm_register(parent: *mut bindings::device) -> *mut bindings::drm_device;

    /// Unplugs it and drops our reference.
    pub(crate) fn moreram_drm_unregister(drm: *mut bindings::drm_device);

    /// Creates `moreram/` in debugfs (see `shim.c`).
    pub(crate) fn moreram_debugfs_init();

    /// Removes it.
    pub(crate) fn moreram_debugfs_exit();

    /// Whether `moreram/memdebug` is on.
    pub(crate) fn moreram_memdebug_on() -> bool;

    /// Counts a poison check that failed (`moreram/poison_errors`).
    pub(crate) fn moreram_count_poison_error();

    /// Counts a leak report (`moreram/leaks`).
    pub(crate) fn moreram_count_leak();

    /// `should_fail()` on `moreram/fail_alloc` (the kernel's fault-injection framework).
    pub(crate) fn moreram_should_fail_alloc(size: u64) -> bool;

    /// `get_random_u64()`.
    pub(crate) fn moreram_random_u64() -> u64;

    /// Sizes and offsets of the UAPI structs, from `include/uapi/linux/moreram.h`. Ends with an
    /// entry whose name is NULL.
    pub(crate) static moreram_uapi_layout: [LayoutEntry; 0];

    /// The header's constants (ioctl numbers, flags, limits), by name; NULL-terminated too.
    pub(crate) static moreram_uapi_consts: [LayoutEntry; 0];
}
