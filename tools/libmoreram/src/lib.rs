// SPDX-License-Identifier: GPL-2.0
//! libmoreram: allocate from the moreram tier, after the 3DO Portfolio OS's memory calls.
//!
//! One implementation with two faces: this Rust API (RAII types, a [`GlobalAlloc`]) and the C
//! ABI of `libmoreram.so.1` / `libmoreram.a` (`include/moreram/moreram.h`, module [`capi`]).
//!
//! - [`TierMem::alloc`]: bytes with a [`Placement`] (`AllocMem` with memory-type flags);
//!   [`TierMem::blocks`]: whole pages of an allocation of their own (`AllocMemBlocks`), whose
//!   rights can be changed ([`TierMem::control`], `ControlMem`) and shared.
//! - [`MemList`]: a memory list over chunks of its own, destroyed whole.
//! - [`TierAlloc`]: `#[global_allocator]` for a Rust program's heap.
//! - [`scavenge`], [`event_fd`], [`watch`]: the library answers the kernel's low-memory
//!   requests (`ScavengeMem`).
//!
//! Sub-page allocation is jemalloc's (arenas over chunks taken from the kernel 32 MiB at a
//! time; metadata in system RAM): see [`heap`] and [`chunk`].

#![warn(missing_docs)]

pub mod capi;
pub mod chunk;
pub mod heap;
pub mod lock;
pub mod source;

pub use chunk::{Kind, Placement, Tier};
pub use heap::{event_fd_raw as event_fd, scavenge, stats, watch, Stats};
pub use moreram::Control;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io,
    ptr::NonNull,
};

impl Placement {
    /// VRAM, else system pages.
    pub const ANY: Placement = Placement {
        kind: Kind::Any,
        contiguous: false,
    };
    /// VRAM only.
    pub const VRAM: Placement = Placement {
        kind: Kind::VramOnly,
        contiguous: false,
    };
    /// System pages only.
    pub const SYSTEM: Placement = Placement {
        kind: Kind::SystemOnly,
        contiguous: false,
    };
}

/// Tier memory: freed on drop. Dereferences to its bytes (zeroed when made with `zero` or as
/// blocks).
#[derive(Debug)]
pub struct TierMem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the memory belongs to the value, as a `Box<[u8]>`'s does; the library frees from any
// thread.
unsafe impl Send for TierMem {}
// SAFETY: `&TierMem` gives only shared access to the bytes.
unsafe impl Sync for TierMem {}

impl TierMem {
    /// `size` bytes (sub-page sizes share pages), zeroed when `zero`.
    pub fn alloc(size: usize, placement: Placement, zero: bool) -> io::Result<TierMem> {
        let ptr = heap::alloc(size, 16, placement, zero)?;
        Ok(TierMem { ptr, len: size })
    }

    /// Whole pages (`size` rounded up to 2 MiB chunks), zeroed, of one kernel allocation: the
    /// unit of rights and sharing.
    pub fn blocks(size: usize, placement: Placement) -> io::Result<TierMem> {
        let ptr = heap::block(size, placement)?;
        Ok(TierMem { ptr, len: size })
    }

    /// Imports what another process shared ([`share`](Self::share)), read-only until granted.
    pub fn import(token: u64) -> io::Result<TierMem> {
        let (ptr, len) = heap::import(token)?;
        Ok(TierMem { ptr, len })
    }

    /// The address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes usable (at least `len`).
    pub fn usable_size(&self) -> usize {
        heap::usable_size(self.ptr.as_ptr())
    }

    /// Where it lives.
    pub fn tier(&self) -> Tier {
        heap::tier_of(self.ptr.as_ptr()).unwrap_or(Tier::System)
    }

    /// Changes rights on `[offset, offset + len)` (page aligned), as Portfolio's `ControlMem`.
    pub fn control(&self, offset: usize, len: usize, ctl: Control) -> io::Result<()> {
        heap::control(self.ptr.as_ptr().wrapping_add(offset), len, ctl)
    }

    /// A token another process imports it with (any process of the user, or `named` only).
    pub fn share(&self, named: Option<i32>) -> io::Result<u64> {
        heap::share(self.ptr.as_ptr(), named)
    }
}

impl std::ops::Deref for TierMem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes at `ptr` are ours until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for TierMem {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for TierMem {
    fn drop(&mut self) {
        // SAFETY: ours, live, and not used after.
        let _ = unsafe { heap::free(self.ptr.as_ptr()) };
    }
}

/// A memory list: allocations from chunks of its own; dropping it frees them all at once.
#[derive(Debug)]
pub struct MemList {
    arena: u32,
}

/// An allocation from a [`MemList`]: given back to it on drop.
#[derive(Debug)]
pub struct ListMem<'l> {
    list: &'l MemList,
    ptr: NonNull<u8>,
    len: usize,
}

impl MemList {
    /// A new list whose chunks have `placement`.
    pub fn new(placement: Placement) -> io::Result<MemList> {
        Ok(MemList {
            arena: heap::list_create(placement)?,
        })
    }

    /// `size` bytes from the list.
    pub fn alloc(&self, size: usize) -> io::Result<ListMem<'_>> {
        let ptr = heap::alloc_in(self.arena, size, 16, false)?;
        Ok(ListMem {
            list: self,
            ptr,
            len: size,
        })
    }

    /// The list's jemalloc arena.
    pub fn arena(&self) -> u32 {
        self.arena
    }
}

impl Drop for MemList {
    fn drop(&mut self) {
        let _ = heap::list_destroy(self.arena);
    }
}

impl ListMem<'_> {
    /// The address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    /// The list it came from.
    pub fn list(&self) -> &MemList {
        self.list
    }
}

impl std::ops::Deref for ListMem<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes at `ptr` are ours until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for ListMem<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ListMem<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated from the list's arena, live, not used after.
        let _ = unsafe { heap::free(self.ptr.as_ptr()) };
    }
}

// SAFETY: lists allocate and free without thread caches, under jemalloc's own locks.
unsafe impl Send for MemList {}
// SAFETY: as above.
unsafe impl Sync for MemList {}

/// A global allocator over the tier: `#[global_allocator] static A: TierAlloc =
/// TierAlloc::new(Placement::ANY);`. Falls back to the C library's allocator without the
/// device, and for what the library allocates for itself.
pub struct TierAlloc {
    placement: Placement,
}

impl TierAlloc {
    /// An allocator that puts the heap in `placement`.
    pub const fn new(placement: Placement) -> Self {
        TierAlloc { placement }
    }

    fn tier_ok(&self) -> bool {
        !lock::in_library() && heap::try_init()
    }
}

// SAFETY: memory comes from jemalloc (size and alignment honoured) or from `System`; each is
// given back to the one it came from, told apart by address.
unsafe impl GlobalAlloc for TierAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.tier_ok() {
            if let Ok(p) = heap::alloc(layout.size(), layout.align(), self.placement, false) {
                return p.as_ptr();
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.tier_ok() {
            if let Ok(p) = heap::alloc(layout.size(), layout.align(), self.placement, true) {
                return p.as_ptr();
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if heap::owns(p) {
            // SAFETY: ours by address, and the caller gives it up.
            let _ = unsafe { heap::free(p) };
        } else {
            // SAFETY: not ours, so `System`'s.
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if heap::owns(p) {
            // SAFETY: ours by address; on success the old pointer is given up.
            return unsafe { heap::realloc(p, new, layout.align()) }
                .map_or(std::ptr::null_mut(), NonNull::as_ptr);
        }
        // SAFETY: `System`'s, passed on.
        unsafe { System.realloc(p, layout, new) }
    }
}

#[cfg(test)]
mod tests;
