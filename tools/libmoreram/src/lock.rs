// SPDX-License-Identifier: GPL-2.0
//! A small lock that `fork()` handlers can hold across the fork, and that allocates nothing.
//! It guards only cold paths (making and giving back chunks), so it spins and yields.

use std::{
    cell::{Cell, UnsafeCell},
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicBool, Ordering},
};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is inside the library, holding one of its locks: what it allocates
/// then must not come from the tier heap (the global allocator uses the C library's).
pub fn in_library() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// A value behind a spin lock.
pub struct Locked<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to the value, as a mutex does.
unsafe impl<T: Send> Sync for Locked<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Locked<T> {}

impl<T> Locked<T> {
    /// A new, free lock.
    pub const fn new(value: T) -> Self {
        Locked {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock without a guard (for `fork()` handlers).
    pub fn raw_lock(&self) {
        let mut spins = 0u32;
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    /// Lets go of a lock taken by [`raw_lock`](Self::raw_lock).
    ///
    /// # Safety
    ///
    /// The lock must be held through `raw_lock` and no guard may exist.
    pub unsafe fn raw_unlock(&self) {
        self.held.store(false, Ordering::Release);
    }

    /// Takes the lock. While any guard lives, [`in_library`] is true in this thread.
    pub fn lock(&self) -> Guard<'_, T> {
        self.raw_lock();
        DEPTH.with(|d| d.set(d.get() + 1));
        Guard { lock: self }
    }

    /// The value, for a holder of the raw lock (fork handlers).
    pub fn value_ptr(&self) -> *mut T {
        self.value.get()
    }

    /// Whether someone holds the lock now.
    pub fn is_locked(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }
}

/// Access to a [`Locked`] value; lets go on drop.
pub struct Guard<'a, T> {
    lock: &'a Locked<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` is exclusive.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
        // SAFETY: the guard took it.
        unsafe { self.lock.raw_unlock() };
    }
}
