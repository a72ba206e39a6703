// SPDX-License-Identifier: GPL-2.0

//! A memory shrinker over an object that can give memory back (the 7.3 kernel crate has no
//! shrinker abstraction; binder's `page_range.rs` has its own, as this is).

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, ffi::c_ulong, prelude::*, str::CStr, sync::Arc};

/// Something the kernel may ask to give memory back under pressure.
pub(crate) trait Shrink: Send + Sync {
    /// How many objects could be freed now.
    fn count(&self) -> u64;
    /// Frees up to `n` objects; returns how many were, or `None` to say "not now" (the shrinker
    /// must not wait for a lock that memory reclaim may already hold).
    fn scan(&self, n: u64) -> Option<u64>;
}

/// A registered shrinker that asks `T`; unregistered on drop.
///
/// # Invariants
///
/// `raw` is a registered shrinker whose callbacks are [`count_objects::<T>`] and
/// [`scan_objects::<T>`], and whose `private_data` is a reference to a `T` taken with
/// [`Arc::into_raw`], released on drop after the shrinker is freed.
pub(crate) struct Shrinker<T: Shrink> {
    raw: NonNull<bindings::shrinker>,
    _data: PhantomData<Arc<T>>,
}

// SAFETY: the shrinker may be freed on any thread, and `T` is `Send + Sync`.
unsafe impl<T: Shrink> Send for Shrinker<T> {}
// SAFETY: `&Shrinker` gives access to nothing.
unsafe impl<T: Shrink> Sync for Shrinker<T> {}

impl<T: Shrink> Shrinker<T> {
    /// Registers a shrinker named `name` that asks `data`. Each reclaim pass may trim half of
    /// what `count` says: the objects cost no I/O to make again.
    pub(crate) fn register(name: &'static CStr, data: Arc<T>) -> Result<Self> {
        // SAFETY: the format is a plain static string with no conversion.
        let raw = unsafe { bindings::shrinker_alloc(0, name.as_char_ptr()) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        let private = Arc::into_raw(data);
        // SAFETY: `raw` is a freshly allocated, unregistered shrinker we own; once registered, its
        // callbacks may run at once, and find everything they need set.
        unsafe {
            let s = raw.as_ptr();
            (*s).count_objects = Some(count_objects::<T>);
            (*s).scan_objects = Some(scan_objects::<T>);
            (*s).private_data = private.cast_mut().cast();
            (*s).seeks = 0;
            bindings::shrinker_register(s);
        }
        // INVARIANT: registered just above with those callbacks and that reference.
        Ok(Self {
            raw,
            _data: PhantomData,
        })
    }
}

impl<T: Shrink> Drop for Shrinker<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariants); `shrinker_free` waits for running callbacks, and
        // none runs afterwards.
        let private = unsafe {
            let private = (*self.raw.as_ptr()).private_data;
            bindings::shrinker_free(self.raw.as_ptr());
            private
        };
        // SAFETY: the reference taken in `register` (type invariants), used by nobody now.
        drop(unsafe { Arc::from_raw(private.cast::<T>()) });
    }
}

/// The object a shrinker asks.
///
/// # Safety
///
/// `s` is a shrinker registered by [`Shrinker::register`] for `T`, not freed yet.
unsafe fn data<'a, T: Shrink>(s: *mut bindings::shrinker) -> &'a T {
    // SAFETY: `private_data` holds a reference to a `T` until the shrinker is freed, and the mm
    // calls us only before that (`shrinker_free` waits).
    unsafe { &*(*s).private_data.cast::<T>() }
}

/// # Safety
///
/// Called by the mm with a shrinker registered by [`Shrinker::register`] for `T`.
unsafe extern "C" fn count_objects<T: Shrink>(
    s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: as the caller guarantees.
    match unsafe { data::<T>(s) }.count() {
        0 => bindings::SHRINK_EMPTY as c_ulong,
        n => n as c_ulong,
    }
}

/// # Safety
///
/// Called by the mm with a shrinker registered by [`Shrinker::register`] for `T` and a valid
/// `shrink_control`.
unsafe extern "C" fn scan_objects<T: Shrink>(
    s: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: the mm passes a valid shrink_control.
    let want = unsafe { (*sc).nr_to_scan } as u64;
    // SAFETY: as the caller guarantees.
    match unsafe { data::<T>(s) }.scan(want) {
        Some(n) => n as c_ulong,
        None => bindings::SHRINK_STOP as c_ulong,
    }
}
