// SPDX-License-Identifier: GPL-2.0
//! The heap: jemalloc arenas whose extents are carved from tier chunks ([`crate::chunk`]).
//!
//! jemalloc 5.3 is built with the `_rjem_` prefix (it never takes over `malloc`), and each
//! placement gets an arena made by `experimental.arenas_create_ext` with our extent hooks and
//! `metadata_use_hooks = false`: jemalloc's metadata (extent records with the slab bitmaps,
//! the radix tree, thread caches) comes from its default hooks, that is anonymous system
//! memory; only user bytes are in the tier. jemalloc never keeps free lists inside freed
//! regions, so it never reads the tier to allocate or free.
//!
//! One arena, the *primary* one (the first placement used, or the one
//! [`set_primary`] names), allocates through jemalloc's per-thread caches: its hot path takes
//! no lock. The others (other placements, memory lists) bypass the caches, so that a cache
//! never hands out memory of another placement.

use crate::{
    chunk::{self, Kind, Placement, Source, Tier, ARENA_BLOCK},
    lock::Locked,
    source::{self, Kernel},
};
use moreram::sys;
use std::{
    ffi::{c_int, c_uint, c_void},
    io,
    ptr::{self, NonNull},
    sync::{
        atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, Ordering},
        OnceLock,
    },
};
use tikv_jemalloc_sys as je;

/// jemalloc's `bool` in its hooks.
type CBool = bool;

const MAX_ARENAS: usize = 4096;
/// Keys of placements with an arena of their own: any, VRAM only, system only, bank 0..32; each
/// contiguous or not.
const KEYS: usize = (3 + 32) * 2;

static STATE: AtomicU8 = AtomicU8::new(0); // 0 not yet, 1 ready, 2 failed
static INIT_ERRNO: AtomicI32 = AtomicI32::new(0);
static INIT: Locked<()> = Locked::new(());
static SOURCE: OnceLock<&'static dyn Source> = OnceLock::new();
static KERNEL: OnceLock<&'static Kernel> = OnceLock::new();

static ARENA_LOCK: Locked<()> = Locked::new(());
static ARENA_BY_KEY: [AtomicU32; KEYS] = [const { AtomicU32::new(0) }; KEYS];
/// Per jemalloc arena: its placement, encoded, with bit 31 set.
static PLACEMENT_OF: [AtomicU32; MAX_ARENAS] = [const { AtomicU32::new(0) }; MAX_ARENAS];
/// The placement of an arena being made (its hooks may run before we know its number).
static PENDING: AtomicU32 = AtomicU32::new(0);
static PRIMARY: AtomicU32 = AtomicU32::new(u32::MAX);
static WATCHING: AtomicBool = AtomicBool::new(false);

fn encode(p: Placement) -> u32 {
    let (k, b) = match p.kind {
        Kind::Any => (0, 0),
        Kind::VramOnly => (1, 0),
        Kind::SystemOnly => (2, 0),
        Kind::Bank(b) => (3, b),
    };
    (1 << 31) | k | (u32::from(p.contiguous) << 2) | ((b & 0xffff) << 8)
}

fn decode(v: u32) -> Placement {
    let kind = match v & 3 {
        0 => Kind::Any,
        1 => Kind::VramOnly,
        2 => Kind::SystemOnly,
        _ => Kind::Bank((v >> 8) & 0xffff),
    };
    Placement {
        kind,
        contiguous: v & 4 != 0,
    }
}

fn key(p: Placement) -> io::Result<usize> {
    let k = match p.kind {
        Kind::Any => 0,
        Kind::VramOnly => 1,
        Kind::SystemOnly => 2,
        Kind::Bank(b) if b < 32 => 3 + b as usize,
        Kind::Bank(_) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    if p.contiguous && p.kind == Kind::SystemOnly {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(k * 2 + usize::from(p.contiguous))
}

fn env_usize(name: &std::ffi::CStr) -> Option<usize> {
    // SAFETY: getenv with a NUL-terminated name; the result is read at once.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(v) };
    s.to_str().ok()?.trim().parse().ok()
}

extern "C" fn fork_prepare() {
    chunk::fork_prepare();
}

extern "C" fn fork_parent() {
    chunk::fork_parent();
}

extern "C" fn fork_child() {
    chunk::fork_child();
    // The child is single-threaded now: a creation under way in another thread of the parent
    // will not finish here.
    // SAFETY: no guard of it exists in this, the only, thread.
    unsafe { ARENA_LOCK.raw_unlock() };
    if let Some(s) = SOURCE.get() {
        s.forked();
    }
    WATCHING.store(false, Ordering::Relaxed);
}

fn setup(src: Option<&'static dyn Source>) -> io::Result<()> {
    let _g = INIT.lock();
    match STATE.load(Ordering::Acquire) {
        1 => return Ok(()),
        2 => {
            return Err(io::Error::from_raw_os_error(
                INIT_ERRNO.load(Ordering::Relaxed),
            ))
        }
        _ => {}
    }
    let r = (|| -> io::Result<()> {
        let src: &'static dyn Source = match src {
            Some(s) => s,
            None => {
                let k: &'static Kernel = Box::leak(Box::new(Kernel::open()?));
                let _ = KERNEL.set(k);
                k
            }
        };
        let gb = env_usize(c"MORERAM_RESERVE_GB");
        let mb = env_usize(c"MORERAM_CHUNK_MB");
        chunk::reserve(
            gb.map_or(chunk::DEFAULT_RESERVATION, |g| g << 30),
            mb.map_or(chunk::DEFAULT_CHUNK, |m| m << 20),
        )?;
        // Registered before jemalloc starts (it registers its own on first use): ours then
        // prepare after jemalloc's, in the order jemalloc's hooks take the locks.
        // SAFETY: three functions that stay valid for the life of the process.
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
        let _ = SOURCE.set(src);
        Ok(())
    })();
    match r {
        Ok(()) => STATE.store(1, Ordering::Release),
        Err(ref e) => {
            INIT_ERRNO.store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::Relaxed);
            STATE.store(2, Ordering::Release);
        }
    }
    r
}

/// Starts the library: opens `/dev/moreram` and reserves address space. Every call does it
/// when needed; the error is kept: `ENOENT` without the device node, `ENODEV`/`ENXIO` without
/// the module, as `open(2)` says.
#[inline]
pub fn init() -> io::Result<()> {
    if STATE.load(Ordering::Acquire) == 1 {
        return Ok(());
    }
    setup(None)
}

/// Starts the library if nobody is starting it now; `false` while it is being started (by
/// this thread, from inside: a caller such as a global allocator then uses the C library) or
/// when it cannot start.
pub fn try_init() -> bool {
    match STATE.load(Ordering::Acquire) {
        1 => true,
        2 => false,
        _ => {
            if crate::lock::in_library() || INIT.is_locked() {
                return false;
            }
            setup(None).is_ok()
        }
    }
}

/// Starts the library over another memory source (the host tests' anonymous memory).
pub fn init_with(src: &'static dyn Source) -> io::Result<()> {
    setup(Some(src))
}

/// Whether the library is started and usable.
#[inline]
pub fn ready() -> bool {
    STATE.load(Ordering::Acquire) == 1
}

fn src() -> io::Result<&'static dyn Source> {
    SOURCE
        .get()
        .copied()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
}

/// The file to poll for scavenge requests (`POLLPRI`), then call [`handle_events`].
pub fn event_fd_raw() -> io::Result<i32> {
    kernel_fd()
}

/// The open `/dev/moreram` file of this process.
pub fn kernel_fd() -> io::Result<i32> {
    init()?;
    KERNEL
        .get()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?
        .fd()
}

// --- jemalloc's extent hooks -------------------------------------------------------------

unsafe extern "C" fn hook_alloc(
    _h: *mut je::extent_hooks_t,
    new_addr: *mut c_void,
    size: usize,
    align: usize,
    zero: *mut CBool,
    commit: *mut CBool,
    arena: c_uint,
) -> *mut c_void {
    if !new_addr.is_null() {
        return ptr::null_mut();
    }
    let Ok(src) = src() else {
        return ptr::null_mut();
    };
    let v = PLACEMENT_OF
        .get(arena as usize)
        .map_or(0, |a| a.load(Ordering::Acquire));
    let v = if v == 0 {
        PENDING.load(Ordering::Acquire)
    } else {
        v
    };
    match chunk::carve(src, arena, decode(v), size, align.max(4096)) {
        Ok(p) => {
            // SAFETY: jemalloc passes valid pointers to its out-parameters.
            unsafe {
                *zero = true; // carved once, from memory the kernel zeroed
                *commit = true;
            }
            p as *mut c_void
        }
        Err(_) => ptr::null_mut(),
    }
}

unsafe extern "C" fn hook_dalloc(
    _h: *mut je::extent_hooks_t,
    addr: *mut c_void,
    size: usize,
    _committed: CBool,
    _arena: c_uint,
) -> CBool {
    if let Ok(src) = src() {
        chunk::uncarve(src, addr as usize, size);
    }
    false
}

unsafe extern "C" fn hook_destroy(
    h: *mut je::extent_hooks_t,
    addr: *mut c_void,
    size: usize,
    committed: CBool,
    arena: c_uint,
) {
    // SAFETY: the same contract as dalloc.
    unsafe { hook_dalloc(h, addr, size, committed, arena) };
}

unsafe extern "C" fn hook_commit(
    _h: *mut je::extent_hooks_t,
    _addr: *mut c_void,
    _size: usize,
    _offset: usize,
    _length: usize,
    _arena: c_uint,
) -> CBool {
    false // never decommitted: always committed
}

unsafe extern "C" fn hook_split(
    _h: *mut je::extent_hooks_t,
    _addr: *mut c_void,
    _size: usize,
    _size_a: usize,
    _size_b: usize,
    _committed: CBool,
    _arena: c_uint,
) -> CBool {
    false
}

unsafe extern "C" fn hook_merge(
    _h: *mut je::extent_hooks_t,
    a: *mut c_void,
    _size_a: usize,
    b: *mut c_void,
    _size_b: usize,
    _committed: CBool,
    _arena: c_uint,
) -> CBool {
    !chunk::same_chunk(a as usize, b as usize)
}

/// Decommit and purge are left out: tier pages cannot be decommitted, and jemalloc then keeps
/// them; whole extents go back through `dalloc`.
static HOOKS: je::extent_hooks_t = je::extent_hooks_t {
    alloc: Some(hook_alloc),
    dalloc: Some(hook_dalloc),
    destroy: Some(hook_destroy),
    commit: Some(hook_commit),
    decommit: None,
    purge_lazy: None,
    purge_forced: None,
    split: Some(hook_split),
    merge: Some(hook_merge),
};

#[repr(C)]
struct ArenaConfig {
    hooks: *mut je::extent_hooks_t,
    metadata_use_hooks: bool,
}

fn mallctl_errno(r: c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

fn create_arena(p: Placement) -> io::Result<u32> {
    init()?;
    let mut cfg = ArenaConfig {
        hooks: ptr::from_ref(&HOOKS).cast_mut(),
        metadata_use_hooks: false,
    };
    let mut ind: c_uint = 0;
    let mut sz = size_of::<c_uint>();
    let _g = ARENA_LOCK.lock();
    PENDING.store(encode(p), Ordering::Release);
    // SAFETY: the mallctl takes an `arena_config_t` (hooks, metadata_use_hooks) and returns
    // the new arena's number; the hooks are a static and stay valid.
    let r = unsafe {
        je::mallctl(
            c"experimental.arenas_create_ext".as_ptr(),
            ptr::from_mut(&mut ind).cast(),
            &mut sz,
            ptr::from_mut(&mut cfg).cast(),
            size_of::<ArenaConfig>(),
        )
    };
    mallctl_errno(r)?;
    if ind as usize >= MAX_ARENAS {
        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
    }
    PLACEMENT_OF[ind as usize].store(encode(p), Ordering::Release);
    Ok(ind)
}

/// The arena of a placement, made on first use.
pub fn arena_for(p: Placement) -> io::Result<u32> {
    let k = key(p)?;
    init()?;
    let a = ARENA_BY_KEY[k].load(Ordering::Acquire);
    if a != 0 {
        return Ok(a - 1);
    }
    let _g = INIT.lock(); // one creation per key
    let a = ARENA_BY_KEY[k].load(Ordering::Acquire);
    if a != 0 {
        return Ok(a - 1);
    }
    let ind = create_arena(p)?;
    ARENA_BY_KEY[k].store(ind + 1, Ordering::Release);
    let _ = PRIMARY.compare_exchange(u32::MAX, ind, Ordering::AcqRel, Ordering::Acquire);
    Ok(ind)
}

/// Makes `p`'s arena the one served through thread caches. Only before any allocation: once
/// set, the primary arena never changes (`EBUSY`).
pub fn set_primary(p: Placement) -> io::Result<()> {
    let k = key(p)?;
    init()?;
    if ARENA_BY_KEY[k].load(Ordering::Acquire) == 0 {
        let _g = INIT.lock();
        if ARENA_BY_KEY[k].load(Ordering::Acquire) == 0 {
            let ind = create_arena(p)?;
            PRIMARY
                .compare_exchange(u32::MAX, ind, Ordering::AcqRel, Ordering::Acquire)
                .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
            ARENA_BY_KEY[k].store(ind + 1, Ordering::Release);
            return Ok(());
        }
    }
    let ind = ARENA_BY_KEY[k].load(Ordering::Acquire) - 1;
    match PRIMARY.load(Ordering::Acquire) {
        x if x == ind => Ok(()),
        _ => Err(io::Error::from_raw_os_error(libc::EBUSY)),
    }
}

#[inline]
fn tcache(arena: u32) -> c_int {
    if arena == PRIMARY.load(Ordering::Relaxed) {
        0
    } else {
        je::MALLOCX_TCACHE_NONE
    }
}

#[inline]
fn flags(arena: u32, align: usize, zero: bool) -> c_int {
    let mut f = je::MALLOCX_ARENA(arena as usize) | tcache(arena);
    if align > 16 {
        f |= je::MALLOCX_ALIGN(align);
    }
    if zero {
        f |= je::MALLOCX_ZERO;
    }
    f
}

/// Allocates `size` bytes aligned to `align` (a power of two) in arena `arena`.
#[inline]
pub fn alloc_in(arena: u32, size: usize, align: usize, zero: bool) -> io::Result<NonNull<u8>> {
    if !align.is_power_of_two() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a valid arena of ours and valid flags; size 0 is made 1 (mallocx needs > 0).
    let p = unsafe { je::mallocx(size.max(1), flags(arena, align, zero)) };
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Allocates `size` bytes with a placement.
pub fn alloc(size: usize, align: usize, p: Placement, zero: bool) -> io::Result<NonNull<u8>> {
    alloc_in(arena_for(p)?, size, align, zero)
}

/// Whether `p` is memory of the library's (a heap allocation or a block). Lock-free, O(1).
#[inline]
pub fn owns(p: *const u8) -> bool {
    chunk::owns(p as usize)
}

/// Frees memory of the library's; `EINVAL` for anything else (nothing is done then).
///
/// # Safety
///
/// `p` must be a live allocation of the library's, not used after.
pub unsafe fn free(p: *mut u8) -> io::Result<()> {
    match chunk::arena_of(p as usize) {
        Some(ARENA_BLOCK) => chunk::free_block(src()?, p as usize),
        // SAFETY: the caller vouches `p` is a live allocation, of arena `a` by the table.
        Some(a) => {
            unsafe { je::dallocx(p.cast(), tcache(a)) };
            Ok(())
        }
        None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// Resizes a heap allocation, in its arena (`EINVAL` for a block or a foreign pointer).
///
/// # Safety
///
/// `p` must be a live heap allocation of the library's; on success it is not used after.
pub unsafe fn realloc(p: *mut u8, size: usize, align: usize) -> io::Result<NonNull<u8>> {
    match chunk::arena_of(p as usize) {
        Some(ARENA_BLOCK) | None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        Some(a) => {
            // SAFETY: the caller vouches for `p`, of arena `a`.
            let q = unsafe { je::rallocx(p.cast(), size.max(1), flags(a, align, false)) };
            NonNull::new(q.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
        }
    }
}

/// Bytes usable at `p`, a live allocation of the library's (0 for anything else).
pub fn usable_size(p: *const u8) -> usize {
    match chunk::arena_of(p as usize) {
        None => 0,
        Some(ARENA_BLOCK) => chunk::find(p as usize, 1).map_or(0, |(c, off)| c.len - off),
        // SAFETY: `p` is in a live heap chunk; the caller passes an allocation's start.
        Some(_) => unsafe { je::sallocx(p.cast(), 0) },
    }
}

/// The tier of memory of the library's.
pub fn tier_of(p: *const u8) -> Option<Tier> {
    chunk::tier_of(p as usize)
}

// --- memory lists --------------------------------------------------------------------------

/// A memory list (Portfolio's `MemList`): an arena over chunks of its own.
pub fn list_create(p: Placement) -> io::Result<u32> {
    key(p)?;
    create_arena(p)
}

/// Destroys a list and everything allocated from it; its chunks go back to the kernel.
pub fn list_destroy(arena: u32) -> io::Result<()> {
    let src = src()?;
    let mut mib = [0usize; 3];
    let mut len = 3;
    // SAFETY: a static name and a MIB buffer of `len` entries.
    mallctl_errno(unsafe {
        je::mallctlnametomib(c"arena.0.destroy".as_ptr(), mib.as_mut_ptr(), &mut len)
    })?;
    mib[1] = arena as usize;
    // SAFETY: a MIB from jemalloc with the arena's number; no values in or out.
    mallctl_errno(unsafe {
        je::mallctlbymib(
            mib.as_ptr(),
            len,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            0,
        )
    })?;
    if let Some(a) = PLACEMENT_OF.get(arena as usize) {
        a.store(0, Ordering::Release);
    }
    chunk::close_arena(src, arena);
    Ok(())
}

// --- blocks, rights, sharing ------------------------------------------------------------------

/// Page-granular memory, whole pages of one allocation of its own, zeroed.
pub fn block(size: usize, p: Placement) -> io::Result<NonNull<u8>> {
    init()?;
    if size == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let a = chunk::block(src()?, size, p)?;
    NonNull::new(a as *mut u8).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// A change of rights on a range of the library's memory, as [`moreram::Control`].
pub fn control(p: *const u8, len: usize, ctl: moreram::Control) -> io::Result<()> {
    let page = 4096;
    if p as usize % page != 0 || len % page != 0 || len == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let (c, off) = chunk::find(p as usize, len)?;
    let (cmd, pid) = match ctl {
        moreram::Control::GrantWrite(pid) => (sys::MORERAM_CTL_GRANT_WRITE, pid),
        moreram::Control::RevokeWrite(pid) => (sys::MORERAM_CTL_REVOKE_WRITE, pid),
        moreram::Control::RevokeWriteAll => (sys::MORERAM_CTL_REVOKE_WRITE, 0),
        moreram::Control::Give(pid) => (sys::MORERAM_CTL_GIVE, pid),
    };
    let req = sys::moreram_control {
        handle: c.handle.handle,
        cmd,
        offset: off as u64,
        length: len as u64,
        pid,
        ..Default::default()
    };
    sys::control(source::borrow(c.handle.fd), &req)
}

/// A token to import the allocation holding `p` (any process of the user, or only `named`).
pub fn share(p: *const u8, named: Option<i32>) -> io::Result<u64> {
    let (c, _) = chunk::find(p as usize, 1)?;
    let mut req = sys::moreram_share {
        handle: c.handle.handle,
        flags: if named.is_some() {
            sys::MORERAM_SHARE_NAMED
        } else {
            0
        },
        pid: named.unwrap_or(0),
        ..Default::default()
    };
    sys::share(source::borrow(c.handle.fd), &mut req)?;
    Ok(req.token)
}

/// Imports a shared allocation and maps it read-only: its address and size. Freed (unmapped,
/// handle forgotten) by [`free`].
pub fn import(token: u64) -> io::Result<(NonNull<u8>, usize)> {
    let fd = kernel_fd()?;
    let mut req = sys::moreram_import {
        token,
        ..Default::default()
    };
    sys::import(source::borrow(fd), &mut req)?;
    let len = req.size as usize;
    let handle = chunk::Handle {
        fd,
        handle: req.handle,
        mmap_offset: req.mmap_offset,
    };
    let tier = source::tier(req.tier, req.bank);
    let r = chunk::adopt(
        len,
        |addr, len| {
            source::map_fixed(fd, addr, len, req.mmap_offset, libc::PROT_READ)?;
            Ok((handle, tier))
        },
        true,
    );
    match r {
        Ok(a) => Ok((NonNull::new(a as *mut u8).expect("in the reservation"), len)),
        Err(e) => {
            let _ = sys::free(
                source::borrow(fd),
                &sys::moreram_handle {
                    handle: req.handle,
                    ..Default::default()
                },
            );
            Err(e)
        }
    }
}

// --- scavenging -----------------------------------------------------------------------------

/// Gives back every wholly free chunk (to the kernel: `FREE`), then the process's pool
/// (`SCAVENGE`). Returns the bytes given back.
pub fn scavenge() -> io::Result<u64> {
    init()?;
    let src = src()?;
    let before: usize = chunk::HELD.iter().map(|h| h.load(Ordering::Relaxed)).sum();
    // SAFETY: `arena.4096.purge` (all arenas) takes and returns nothing.
    let r = unsafe {
        je::mallctl(
            c"arena.4096.purge".as_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            0,
        )
    };
    mallctl_errno(r)?;
    for (i, a) in PLACEMENT_OF.iter().enumerate() {
        if a.load(Ordering::Relaxed) != 0 {
            chunk::close_arena(src, i as u32);
        }
    }
    let after: usize = chunk::HELD.iter().map(|h| h.load(Ordering::Relaxed)).sum();
    let mut pool = 0;
    if let Some(k) = KERNEL.get() {
        let mut req = sys::moreram_scavenge::default();
        sys::scavenge(source::borrow(k.fd()?), &mut req)?;
        pool = req.vram + req.system;
    }
    Ok(before.saturating_sub(after) as u64 + pool)
}

/// Reads every pending scavenge request of the event file and, if there was one, scavenges.
/// Returns the number of requests.
pub fn handle_events() -> io::Result<u32> {
    let fd = kernel_fd()?;
    let mut n = 0;
    loop {
        let mut ev = sys::moreram_event::default();
        match sys::read_event(source::borrow(fd), &mut ev) {
            Ok(_) => n += 1,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    if n > 0 {
        scavenge()?;
    }
    Ok(n)
}

/// Starts the watcher thread: it waits for scavenge requests and answers them. Idempotent
/// (a forked child starts its own on its next call).
pub fn watch() -> io::Result<()> {
    let fd = kernel_fd()?;
    if WATCHING.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let r = std::thread::Builder::new()
        .name("moreram-scavenge".into())
        .spawn(move || loop {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN | libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, -1) };
            if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
            if handle_events().is_err() {
                // SAFETY: no preconditions; back off before polling again.
                unsafe { libc::usleep(10_000) };
            }
        });
    if let Err(e) = r {
        WATCHING.store(false, Ordering::Release);
        return Err(e);
    }
    Ok(())
}

/// Whether a watcher thread runs in this process.
pub fn watching() -> bool {
    WATCHING.load(Ordering::Relaxed)
}

/// The process's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of VRAM chunks the library holds.
    pub vram_held: u64,
    /// Bytes of system-page chunks the library holds.
    pub system_held: u64,
    /// Chunks held.
    pub chunks: u64,
    /// Bytes of VRAM in the process's pool (kernel).
    pub pool_vram: u64,
    /// Bytes of system pages in the process's pool (kernel).
    pub pool_system: u64,
}

/// The process's numbers: what the library holds, and the kernel's pool.
pub fn stats() -> io::Result<Stats> {
    init()?;
    let (chunks, _) = chunk::count();
    let mut s = Stats {
        vram_held: chunk::HELD[0].load(Ordering::Relaxed) as u64,
        system_held: chunk::HELD[1].load(Ordering::Relaxed) as u64,
        chunks: chunks as u64,
        ..Default::default()
    };
    if let Some(k) = KERNEL.get() {
        let mut req = sys::moreram_tier::default();
        sys::tier(source::borrow(k.fd()?), &mut req)?;
        s.pool_vram = req.pool_vram;
        s.pool_system = req.pool_system;
    }
    Ok(s)
}
