// SPDX-License-Identifier: GPL-2.0
//! The C face: `include/moreram/moreram.h`.
//!
//! Error convention, for every function: a failure sets `errno` to the kernel's (or the
//! library's) error number; calls returning a pointer return `NULL`, calls returning `int` or
//! `int64_t` return `-errno`. Nothing here panics: each body only calls functions that return
//! errors.

#![allow(missing_docs)]

use crate::{
    chunk::{Kind, Placement, Tier},
    heap, Control,
};
use std::{ffi::c_void, io, ptr};

pub const MORERAM_MEM_VRAM: u32 = 0x1;
pub const MORERAM_MEM_SYSTEM: u32 = 0x2;
pub const MORERAM_MEM_BANK: u32 = 0x4;
pub const MORERAM_MEM_CONTIGUOUS: u32 = 0x8;
pub const MORERAM_MEM_ZERO: u32 = 0x10;
const BANK_SHIFT: u32 = 16;
const KNOWN: u32 = 0x1f | (0xff << BANK_SHIFT);

fn set_errno(e: &io::Error) -> i32 {
    let n = e.raw_os_error().unwrap_or(libc::EIO);
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = n };
    n
}

fn ptr_or_null<T>(r: io::Result<*mut T>) -> *mut T {
    r.unwrap_or_else(|e| {
        set_errno(&e);
        ptr::null_mut()
    })
}

fn int(r: io::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| -set_errno(&e))
}

/// Decodes `MORERAM_MEM_*` flags: the placement, and whether to zero.
pub fn placement(flags: u32) -> io::Result<(Placement, bool)> {
    let einval = || io::Error::from_raw_os_error(libc::EINVAL);
    if flags & !KNOWN != 0 {
        return Err(einval());
    }
    let bank = flags >> BANK_SHIFT;
    let kind = match flags & (MORERAM_MEM_VRAM | MORERAM_MEM_SYSTEM | MORERAM_MEM_BANK) {
        0 => Kind::Any,
        MORERAM_MEM_VRAM => Kind::VramOnly,
        MORERAM_MEM_SYSTEM => Kind::SystemOnly,
        MORERAM_MEM_BANK => Kind::Bank(bank),
        _ => return Err(einval()),
    };
    if bank != 0 && flags & MORERAM_MEM_BANK == 0 {
        return Err(einval());
    }
    let contiguous = flags & MORERAM_MEM_CONTIGUOUS != 0;
    if contiguous && kind == Kind::SystemOnly {
        return Err(einval());
    }
    Ok((
        Placement { kind, contiguous },
        flags & MORERAM_MEM_ZERO != 0,
    ))
}

#[no_mangle]
pub extern "C" fn moreram_init() -> i32 {
    int(heap::init().map(|()| 0))
}

#[no_mangle]
pub extern "C" fn moreram_alloc(size: usize, flags: u32) -> *mut c_void {
    moreram_alloc_aligned(size, 16, flags)
}

#[no_mangle]
pub extern "C" fn moreram_alloc_aligned(size: usize, align: usize, flags: u32) -> *mut c_void {
    ptr_or_null((|| {
        let (p, zero) = placement(flags)?;
        Ok(heap::alloc(size, align.max(1), p, zero)?.as_ptr().cast())
    })())
}

/// # Safety
/// `p` is NULL or a live pointer of the library's; anything else is ignored (`EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn moreram_free(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: the caller's promise.
        if let Err(e) = unsafe { heap::free(p.cast()) } {
            set_errno(&e);
        }
    }
}

/// # Safety
/// `p` is NULL or a live heap pointer of the library's.
#[no_mangle]
pub unsafe extern "C" fn moreram_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return moreram_alloc(size, 0);
    }
    if size == 0 {
        // SAFETY: the caller's promise.
        unsafe { moreram_free(p) };
        return ptr::null_mut();
    }
    // SAFETY: the caller's promise.
    ptr_or_null(unsafe { heap::realloc(p.cast(), size, 16) }.map(|q| q.as_ptr().cast()))
}

#[no_mangle]
pub extern "C" fn moreram_usable_size(p: *const c_void) -> usize {
    heap::usable_size(p.cast())
}

/// `MORERAM_IN_VRAM` (1) with `*bank` set, `MORERAM_IN_SYSTEM` (2), or `-ENOENT`.
///
/// # Safety
/// `bank` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn moreram_where(p: *const c_void, bank: *mut u32) -> i32 {
    match heap::tier_of(p.cast()) {
        Some(Tier::Vram(b)) => {
            if !bank.is_null() {
                // SAFETY: the caller's promise.
                unsafe { *bank = b };
            }
            1
        }
        Some(Tier::System) => 2,
        None => -set_errno(&io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

/// Opaque to C: the list's arena number plus one, as a pointer.
#[repr(C)]
pub struct moreram_list {
    _private: [u8; 0],
}

fn list_arena(l: *const moreram_list) -> io::Result<u32> {
    match l as usize {
        0 => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        n => Ok((n - 1) as u32),
    }
}

#[no_mangle]
pub extern "C" fn moreram_list_create(flags: u32) -> *mut moreram_list {
    ptr_or_null((|| {
        let (p, _) = placement(flags)?;
        let a = heap::list_create(p)?;
        Ok((a as usize + 1) as *mut moreram_list)
    })())
}

#[no_mangle]
pub extern "C" fn moreram_list_alloc(l: *mut moreram_list, size: usize) -> *mut c_void {
    ptr_or_null(list_arena(l).and_then(|a| Ok(heap::alloc_in(a, size, 16, false)?.as_ptr().cast())))
}

/// # Safety
/// `p` is NULL or a live allocation of list `l`.
#[no_mangle]
pub unsafe extern "C" fn moreram_list_free(l: *mut moreram_list, p: *mut c_void) {
    if p.is_null() {
        return;
    }
    match list_arena(l) {
        Ok(a) if crate::chunk::arena_of(p as usize) == Some(a) => {
            // SAFETY: the caller's promise, checked against the table.
            let _ = unsafe { heap::free(p.cast()) };
        }
        _ => {
            set_errno(&io::Error::from_raw_os_error(libc::EINVAL));
        }
    }
}

#[no_mangle]
pub extern "C" fn moreram_list_destroy(l: *mut moreram_list) -> i32 {
    int(list_arena(l).and_then(heap::list_destroy).map(|()| 0))
}

#[no_mangle]
pub extern "C" fn moreram_alloc_blocks(size: usize, flags: u32) -> *mut c_void {
    ptr_or_null((|| {
        let (p, _) = placement(flags)?;
        Ok(heap::block(size, p)?.as_ptr().cast())
    })())
}

#[no_mangle]
pub extern "C" fn moreram_give(p: *mut c_void, len: usize, pid: i32) -> i32 {
    int(heap::control(p.cast(), len, Control::Give(pid)).map(|()| 0))
}

#[no_mangle]
pub extern "C" fn moreram_grant_write(p: *mut c_void, len: usize, pid: i32) -> i32 {
    int(heap::control(p.cast(), len, Control::GrantWrite(pid)).map(|()| 0))
}

#[no_mangle]
pub extern "C" fn moreram_revoke_write(p: *mut c_void, len: usize, pid: i32) -> i32 {
    let c = if pid == 0 {
        Control::RevokeWriteAll
    } else {
        Control::RevokeWrite(pid)
    };
    int(heap::control(p.cast(), len, c).map(|()| 0))
}

/// # Safety
/// `token` is writable.
#[no_mangle]
pub unsafe extern "C" fn moreram_share(p: *const c_void, pid: i32, token: *mut u64) -> i32 {
    if token.is_null() {
        return -set_errno(&io::Error::from_raw_os_error(libc::EINVAL));
    }
    int(heap::share(p.cast(), (pid != 0).then_some(pid)).map(|t| {
        // SAFETY: the caller's promise, checked non-NULL.
        unsafe { *token = t };
        0
    }))
}

/// # Safety
/// `size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn moreram_import(token: u64, size: *mut usize) -> *mut c_void {
    ptr_or_null(heap::import(token).map(|(p, len)| {
        if !size.is_null() {
            // SAFETY: the caller's promise.
            unsafe { *size = len };
        }
        p.as_ptr().cast()
    }))
}

#[no_mangle]
pub extern "C" fn moreram_event_fd() -> i32 {
    int(heap::event_fd_raw())
}

#[no_mangle]
pub extern "C" fn moreram_handle_events() -> i32 {
    int(heap::handle_events().map(|n| n as i32))
}

#[no_mangle]
pub extern "C" fn moreram_scavenge() -> i64 {
    heap::scavenge().map_or_else(|e| -i64::from(set_errno(&e)), |b| b as i64)
}

#[no_mangle]
pub extern "C" fn moreram_watch() -> i32 {
    int(heap::watch().map(|()| 0))
}

/// The C `struct moreram_stats`.
#[repr(C)]
pub struct moreram_stats {
    pub vram_held: u64,
    pub system_held: u64,
    pub chunks: u64,
    pub pool_vram: u64,
    pub pool_system: u64,
    pub reserved: [u64; 3],
}

/// # Safety
/// `s` points to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn moreram_stats(s: *mut moreram_stats, size: usize) -> i32 {
    if s.is_null() || size < 40 {
        return -set_errno(&io::Error::from_raw_os_error(libc::EINVAL));
    }
    int(heap::stats().map(|st| {
        let v = moreram_stats {
            vram_held: st.vram_held,
            system_held: st.system_held,
            chunks: st.chunks,
            pool_vram: st.pool_vram,
            pool_system: st.pool_system,
            reserved: [0; 3],
        };
        let n = size.min(size_of::<moreram_stats>());
        // SAFETY: `n` bytes fit in both.
        unsafe { ptr::copy_nonoverlapping(ptr::from_ref(&v).cast::<u8>(), s.cast(), n) };
        0
    }))
}
