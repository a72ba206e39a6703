// SPDX-License-Identifier: GPL-2.0

//! Debugging switches and counters, after the 3DO's memdebug: poisoning of freed VRAM, leak
//! reports, and injected allocation failures. The layers that do the work count here; debugfs
//! shows and sets it.

use kernel::sync::atomic::{Atomic, Relaxed};

use crate::shim;

/// The byte freed VRAM is filled with while memdebug is on (the kernel's `POISON_FREE`).
pub(crate) const POISON: u8 = 0x6b;

/// The switches and counters.
pub(crate) struct MemDebug {
    on: Atomic<bool>,
    poison_errors: Atomic<u64>,
    leaks: Atomic<u64>,
}

impl MemDebug {
    pub(crate) const fn new() -> Self {
        Self {
            on: Atomic::new(false),
            poison_errors: Atomic::new(0),
            leaks: Atomic::new(0),
        }
    }

    /// Whether memdebug is on.
    pub(crate) fn on(&self) -> bool {
        self.on.load(Relaxed)
    }

    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Relaxed);
    }

    /// Counts a failed poison check: freed memory was written.
    pub(crate) fn poison_error(&self) {
        self.poison_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn poison_errors(&self) -> u64 {
        self.poison_errors.load(Relaxed)
    }

    /// Counts a leak report.
    pub(crate) fn leak(&self) {
        self.leaks.fetch_add(1, Relaxed);
    }

    pub(crate) fn leaks(&self) -> u64 {
        self.leaks.load(Relaxed)
    }

    /// Whether the fault-injection framework says an allocation of `size` bytes must fail
    /// (debugfs `moreram/fail_alloc`).
    pub(crate) fn fail_alloc(&self, size: u64) -> bool {
        // SAFETY: `should_fail` on the shim's static fault attribute; no preconditions.
        unsafe { shim::moreram_should_fail_alloc(size) }
    }

    /// Whether the fault-injection framework says taking back `size` bytes of a buddy block that
    /// stay allocated, when part of an allocation goes back to its bank, must fail (debugfs
    /// `moreram/fail_release`).
    pub(crate) fn fail_release(&self, size: u64) -> bool {
        // SAFETY: `should_fail` on the shim's static fault attribute; no preconditions.
        unsafe { shim::moreram_should_fail_release(size) }
    }
}
