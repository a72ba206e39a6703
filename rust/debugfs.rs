// SPDX-License-Identifier: GPL-2.0

//! `moreram/` in debugfs: bank histograms, processes, and memdebug, after the 3DO's memdebug.
//!
//! The files themselves are made in `shim.c` (seq_file, fault-injection and poke plumbing); this
//! module writes their contents and gives the rest of the module the memdebug switches.

use kernel::{bindings, prelude::*, seq_file::SeqFile, seq_print};

use crate::{bank, file, pool, shim};

/// The byte freed VRAM is filled with while memdebug is on (the kernel's `POISON_FREE`).
pub(crate) const POISON: u8 = 0x6b;

/// Whether memdebug is on (`moreram/memdebug`).
pub(crate) fn memdebug() -> bool {
    // SAFETY: reads a flag.
    unsafe { shim::moreram_memdebug_on() }
}

/// Counts a failed poison check.
pub(crate) fn poison_error() {
    // SAFETY: bumps a counter.
    unsafe { shim::moreram_count_poison_error() }
}

/// Counts a leak report.
pub(crate) fn leak() {
    // SAFETY: bumps a counter.
    unsafe { shim::moreram_count_leak() }
}

/// Whether the fault-injection framework says this allocation must fail (`moreram/fail_alloc`).
pub(crate) fn fail_alloc(size: u64) -> bool {
    // SAFETY: `should_fail` on our static fault attribute.
    unsafe { shim::moreram_should_fail_alloc(size) }
}

/// Creates the files. Called once, from module init.
pub(crate) fn init() {
    // SAFETY: called once; removed by `exit`.
    unsafe { shim::moreram_debugfs_init() }
}

/// Removes the files (module exit).
pub(crate) fn exit() {
    // SAFETY: created by `init`.
    unsafe { shim::moreram_debugfs_exit() }
}

/// `moreram/banks`.
#[no_mangle]
extern "C" fn moreram_debugfs_banks(m: *mut bindings::seq_file) {
    // SAFETY: the seq_file is valid for the call.
    let m = unsafe { SeqFile::from_raw(m) };
    let Ok(banks) = bank::snapshot() else { return };
    for b in banks.iter() {
        b.debug_print(m);
    }
}

/// `moreram/processes`.
#[no_mangle]
extern "C" fn moreram_debugfs_processes(m: *mut bindings::seq_file) {
    // SAFETY: the seq_file is valid for the call.
    let m = unsafe { SeqFile::from_raw(m) };
    file::debug_print(m);
    pool::debug_print(m);
}

/// `moreram/poke`: writes `value` at byte `offset` of bank `bank`, behind everybody's back, to
/// test that memdebug notices writes to freed memory.
#[no_mangle]
extern "C" fn moreram_debugfs_poke(bank: u32, offset: u64, value: u64) -> i32 {
    let Ok(banks) = bank::snapshot() else {
        return ENOMEM.to_errno();
    };
    match banks.iter().find(|b| b.index() == bank) {
        Some(b) => match b.poke(offset, value) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        },
        None => ENODEV.to_errno(),
    }
}

/// Prints `bytes` with a binary unit.
pub(crate) fn print_size(m: &SeqFile, bytes: u64) {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        seq_print!(m, "{} MiB", bytes >> 20);
    } else {
        seq_print!(m, "{} KiB", bytes >> 10);
    }
}
