// SPDX-License-Identifier: GPL-2.0
//! `libmoreram-preload.so`: `LD_PRELOAD` it, and a program's large allocations go to the
//! moreram tier (libmoreram's heap); everything else stays with the C library.
//!
//! Policy, from the environment (read once, when the library is loaded):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MORERAM_POLICY` | `spill`: the C library serves until memory is short, then allocations of at least the threshold go to the tier; `prefer`: they go to the tier at once; `off` | `spill` |
//! | `MORERAM_THRESHOLD` | size in bytes (`4096`, `64K`, `1M`) from which an allocation may go to the tier | `65536` |
//! | `MORERAM_TIER` | `any`: VRAM, then system pages of the tier; `vram`: VRAM only (else the C library) | `any` |
//! | `MORERAM_SPILL_PERCENT` | *short of memory*: `MemAvailable`, or the memory cgroup's room below `memory.max`, under this percentage of the total | `10` |
//! | `MORERAM_SUMMARY` | `1`: print one line at exit (bytes served per tier, peak) on standard error | off |
//! | `MORERAM_SCAVENGE` | `thread`: a watcher thread answers the kernel's scavenge requests; `off` | `thread` |
//!
//! Without `/dev/moreram`, every call goes to the C library unchanged.
//!
//! Every function works before the library is initialized (the C library serves), takes no
//! lock of its own on the path the C library serves, and finds the owner of a pointer by one
//! comparison with the tier's address range. Nothing the preload itself allocates goes
//! through the functions it exports: its Rust allocator is the C library's `__libc_*`.

#![allow(clippy::missing_safety_doc)]

use moreram_heap::{heap, Kind, Placement, Tier};
use std::{
    alloc::{GlobalAlloc, Layout},
    ffi::{c_int, c_void, CStr},
    ptr,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering},
};

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

/// The preload's own allocations go straight to the C library.
struct Libc;

// SAFETY: the C library's allocator honours size and alignment (`memalign` above 16).
unsafe impl GlobalAlloc for Libc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: plain C library calls.
        unsafe {
            if l.align() <= 16 {
                __libc_malloc(l.size()).cast()
            } else {
                __libc_memalign(l.align(), l.size()).cast()
            }
        }
    }
    unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
        // SAFETY: allocated by `alloc` above.
        unsafe { __libc_free(p.cast()) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if l.align() <= 16 {
            // SAFETY: allocated by `alloc` above.
            return unsafe { __libc_realloc(p.cast(), new) }.cast();
        }
        // SAFETY: a fresh block, copied into, the old one freed.
        unsafe {
            let q = self.alloc(Layout::from_size_align_unchecked(new, l.align()));
            if !q.is_null() {
                ptr::copy_nonoverlapping(p, q, l.size().min(new));
                self.dealloc(p, l);
            }
            q
        }
    }
}

#[global_allocator]
static ALLOC: Libc = Libc;

const OFF: u8 = 0;
const SPILL: u8 = 1;
const PREFER: u8 = 2;

static POLICY: AtomicU8 = AtomicU8::new(OFF);
static THRESHOLD: AtomicUsize = AtomicUsize::new(usize::MAX);
static VRAM_ONLY: AtomicBool = AtomicBool::new(false);
static SPILL_PERCENT: AtomicU64 = AtomicU64::new(10);
static SUMMARY: AtomicBool = AtomicBool::new(false);
static WATCH: AtomicBool = AtomicBool::new(true);

/// 0 not started, 1 starting, 2 ready, 3 unavailable.
static TIER: AtomicU8 = AtomicU8::new(0);
static ARENA: AtomicU32 = AtomicU32::new(0);

/// Memory is short (spill): refreshed at most every 50 ms.
static SHORT: AtomicBool = AtomicBool::new(false);
static CHECKED_NS: AtomicU64 = AtomicU64::new(0);

static SERVED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static LIBC_SERVED: AtomicU64 = AtomicU64::new(0);

type UsableFn = unsafe extern "C" fn(*mut c_void) -> usize;
static LIBC_USABLE: AtomicUsize = AtomicUsize::new(0);

fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: NUL-terminated name; the environment outlives start-up, where this is called.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        None
    } else {
        // SAFETY: getenv returns a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(v) }.to_bytes())
    }
}

/// `4096`, `64K`, `1M`, `2G` (binary units).
fn parse_size(s: &[u8]) -> Option<usize> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let n: usize = std::str::from_utf8(&s[..digits]).ok()?.parse().ok()?;
    let shift = match &s[digits..] {
        b"" | b"B" | b"b" => 0,
        b"K" | b"k" | b"KiB" => 10,
        b"M" | b"m" | b"MiB" => 20,
        b"G" | b"g" | b"GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

extern "C" fn start() {
    let policy = match getenv(c"MORERAM_POLICY") {
        None | Some(b"spill") => SPILL,
        Some(b"prefer") => PREFER,
        _ => OFF,
    };
    let threshold = getenv(c"MORERAM_THRESHOLD")
        .and_then(parse_size)
        .unwrap_or(64 << 10);
    VRAM_ONLY.store(
        getenv(c"MORERAM_TIER") == Some(b"vram".as_slice()),
        Ordering::Relaxed,
    );
    if let Some(p) =
        getenv(c"MORERAM_SPILL_PERCENT").and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
    {
        SPILL_PERCENT.store(p, Ordering::Relaxed);
    }
    SUMMARY.store(
        getenv(c"MORERAM_SUMMARY").is_some_and(|v| v != b"0"),
        Ordering::Relaxed,
    );
    WATCH.store(
        getenv(c"MORERAM_SCAVENGE") != Some(b"off".as_slice()),
        Ordering::Relaxed,
    );
    // SAFETY: a symbol lookup; any allocation it makes is served by the C library (the policy
    // is still off).
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"malloc_usable_size".as_ptr()) };
    LIBC_USABLE.store(f as usize, Ordering::Relaxed);
    THRESHOLD.store(threshold.max(1), Ordering::Relaxed);
    POLICY.store(policy, Ordering::Release);
}

#[used]
#[link_section = ".init_array"]
static START: extern "C" fn() = start;

extern "C" fn finish() {
    if !SUMMARY.load(Ordering::Relaxed) {
        return;
    }
    let line = format!(
        "moreram: pid {}: tier served {} to VRAM, {} to system pages, peak {} live; the C library served {}\n",
        std::process::id(),
        SERVED[0].load(Ordering::Relaxed),
        SERVED[1].load(Ordering::Relaxed),
        PEAK.load(Ordering::Relaxed),
        LIBC_SERVED.load(Ordering::Relaxed),
    );
    // SAFETY: writes a buffer we own to standard error.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

#[used]
#[link_section = ".fini_array"]
static FINISH: extern "C" fn() = finish;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Reads a small file into `buf` without allocating: the bytes read.
fn read_small<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    // SAFETY: NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: ours.
    unsafe { libc::close(fd) };
    (n > 0).then(|| &buf[..n as usize])
}

fn field(text: &[u8], name: &[u8]) -> Option<u64> {
    let at = text.windows(name.len()).position(|w| w == name)?;
    let rest = &text[at + name.len()..];
    let rest = &rest[rest.iter().position(|c| c.is_ascii_digit())?..];
    let end = rest
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn number(text: &[u8]) -> Option<u64> {
    let end = text
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(text.len());
    std::str::from_utf8(&text[..end]).ok()?.parse().ok()
}

/// Whether memory is short now: `MemAvailable` under the percentage of `MemTotal`, or the
/// memory cgroup's room under the percentage of its `memory.max`.
fn memory_short() -> bool {
    let pct = SPILL_PERCENT.load(Ordering::Relaxed);
    let mut buf = [0u8; 2048];
    if let Some(t) = read_small(c"/proc/meminfo", &mut buf) {
        if let (Some(total), Some(avail)) = (field(t, b"MemTotal:"), field(t, b"MemAvailable:")) {
            if avail * 100 < total * pct {
                return true;
            }
        }
    }
    // cgroup v2: "0::/path".
    let mut cg = [0u8; 512];
    let Some(line) = read_small(c"/proc/self/cgroup", &mut cg) else {
        return false;
    };
    let Some(at) = line.windows(3).position(|w| w == b"0::") else {
        return false;
    };
    let path = &line[at + 3..];
    let path = &path[..path.iter().position(|&c| c == b'\n').unwrap_or(path.len())];
    let mut name = [0u8; 700];
    let mut read_num = |file: &[u8]| -> Option<u64> {
        let prefix = b"/sys/fs/cgroup";
        let len = prefix.len() + path.len() + 1 + file.len();
        if len + 1 > name.len() {
            return None;
        }
        name[..prefix.len()].copy_from_slice(prefix);
        name[prefix.len()..prefix.len() + path.len()].copy_from_slice(path);
        name[prefix.len() + path.len()] = b'/';
        name[prefix.len() + path.len() + 1..len].copy_from_slice(file);
        name[len] = 0;
        let c = CStr::from_bytes_until_nul(&name).ok()?;
        let mut b = [0u8; 64];
        number(read_small(c, &mut b)?)
    };
    match (read_num(b"memory.max"), read_num(b"memory.current")) {
        (Some(max), Some(cur)) => max.saturating_sub(cur) * 100 < max * pct,
        _ => false,
    }
}

#[cold]
fn refresh_short() -> bool {
    let now = now_ns();
    let last = CHECKED_NS.load(Ordering::Relaxed);
    if now.saturating_sub(last) > 50_000_000
        && CHECKED_NS
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        SHORT.store(memory_short(), Ordering::Relaxed);
    }
    SHORT.load(Ordering::Relaxed)
}

#[cold]
fn start_tier() -> bool {
    if TIER
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return TIER.load(Ordering::Acquire) == 2;
    }
    let placement = Placement {
        kind: if VRAM_ONLY.load(Ordering::Relaxed) {
            Kind::VramOnly
        } else {
            Kind::Any
        },
        contiguous: false,
    };
    let ok = heap::init()
        .and_then(|()| heap::set_primary(placement))
        .and_then(|()| heap::arena_for(placement));
    match ok {
        Ok(a) => {
            ARENA.store(a, Ordering::Relaxed);
            TIER.store(2, Ordering::Release);
            true
        }
        Err(_) => {
            TIER.store(3, Ordering::Release);
            false
        }
    }
}

/// Whether an allocation of `size` goes to the tier now.
#[inline(always)]
fn to_tier(size: usize) -> bool {
    let policy = POLICY.load(Ordering::Relaxed);
    if policy == OFF || size < THRESHOLD.load(Ordering::Relaxed) {
        return false;
    }
    if policy == SPILL && !refresh_short() {
        return false;
    }
    match TIER.load(Ordering::Acquire) {
        2 => true,
        0 => start_tier(),
        _ => false,
    }
}

#[cold]
fn tier_alloc(size: usize, align: usize, zero: bool) -> *mut c_void {
    let Ok(p) = heap::alloc_in(ARENA.load(Ordering::Relaxed), size, align, zero) else {
        return ptr::null_mut();
    };
    let p = p.as_ptr();
    let usable = heap::usable_size(p) as u64;
    let i = match heap::tier_of(p) {
        Some(Tier::Vram(_)) => 0,
        _ => 1,
    };
    SERVED[i].fetch_add(usable, Ordering::Relaxed);
    let live = LIVE.fetch_add(usable, Ordering::Relaxed) + usable;
    PEAK.fetch_max(live, Ordering::Relaxed);
    if WATCH.load(Ordering::Relaxed) && !heap::watching() {
        let _ = heap::watch();
    }
    p.cast()
}

#[cold]
fn tier_free(p: *mut c_void) {
    // SAFETY: errno is this thread's; `free` must not change it.
    let errno = unsafe { *libc::__errno_location() };
    LIVE.fetch_sub(heap::usable_size(p.cast()) as u64, Ordering::Relaxed);
    // SAFETY: a live pointer of the tier heap by address, given up by the caller.
    let _ = unsafe { heap::free(p.cast()) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

#[inline(always)]
fn count_libc(size: usize) {
    if SUMMARY.load(Ordering::Relaxed) {
        LIBC_SERVED.fetch_add(size as u64, Ordering::Relaxed);
    }
}

fn set_errno(e: c_int) {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
}

fn libc_usable(p: *mut c_void) -> usize {
    let f = LIBC_USABLE.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: the C library's `malloc_usable_size`, found at start.
        return unsafe { std::mem::transmute::<usize, UsableFn>(f)(p) };
    }
    // Before start (or without dlsym): the C library's chunk header, as glibc reads it.
    // SAFETY: `p` is a live block of the C library's, preceded by its size word.
    let word = unsafe { *(p as *const usize).sub(1) };
    let mmapped = word & 2 != 0;
    (word & !7) - if mmapped { 16 } else { 8 }
}

#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    if to_tier(size) {
        let p = tier_alloc(size, 16, false);
        if !p.is_null() {
            return p;
        }
    }
    count_libc(size);
    // SAFETY: the C library's.
    unsafe { __libc_malloc(size) }
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if heap::owns(p.cast()) {
        tier_free(p);
    } else if !p.is_null() {
        // SAFETY: not the tier's: the C library's.
        unsafe { __libc_free(p) }
    }
}

#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: as `free`.
    unsafe { free(p) }
}

#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    if to_tier(total) {
        let p = tier_alloc(total, 16, true);
        if !p.is_null() {
            return p;
        }
    }
    count_libc(total);
    // SAFETY: the C library's.
    unsafe { __libc_calloc(n, size) }
}

#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as malloc.
        return unsafe { malloc(size) };
    }
    if size == 0 {
        // SAFETY: as free; glibc's realloc(p, 0) frees and returns NULL.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    if heap::owns(p.cast()) {
        let old = heap::usable_size(p.cast());
        // SAFETY: a live tier pointer, given up on success.
        if let Ok(q) = unsafe { heap::realloc(p.cast(), size, 16) } {
            let new = heap::usable_size(q.as_ptr());
            LIVE.fetch_add(new as u64, Ordering::Relaxed);
            LIVE.fetch_sub(old as u64, Ordering::Relaxed);
            return q.as_ptr().cast();
        }
        // The tier is full: move it to the C library.
        // SAFETY: a fresh block, copied into; the tier block freed after.
        let q = unsafe { __libc_malloc(size) };
        if q.is_null() {
            return q;
        }
        // SAFETY: both live, `min` bytes in each.
        unsafe { ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast(), old.min(size)) };
        tier_free(p);
        return q;
    }
    if to_tier(size) {
        let old = libc_usable(p);
        if size > old {
            let q = tier_alloc(size, 16, false);
            if !q.is_null() {
                // SAFETY: `old` bytes of the C library's block, into a larger new one.
                unsafe {
                    ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast(), old);
                    __libc_free(p);
                }
                return q;
            }
        }
    }
    count_libc(size);
    // SAFETY: the C library's block.
    unsafe { __libc_realloc(p, size) }
}

#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: as realloc.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// Aligned allocation of either allocator; `align` a power of two.
fn aligned(align: usize, size: usize) -> *mut c_void {
    if to_tier(size) {
        let p = tier_alloc(size, align, false);
        if !p.is_null() {
            return p;
        }
    }
    count_libc(size);
    // SAFETY: the C library's.
    unsafe { __libc_memalign(align, size) }
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align % size_of::<*mut c_void>() != 0 {
        return libc::EINVAL;
    }
    let p = aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's out-parameter.
    unsafe { *out = p };
    0
}

#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // glibc rounds an alignment that is not a power of two up to one.
    let align = align.max(1).checked_next_power_of_two().unwrap_or(0);
    if align == 0 {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

fn page() -> usize {
    4096
}

#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(page(), size)
}

#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(rounded) = size.max(1).checked_add(page() - 1) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    aligned(page(), rounded & !(page() - 1))
}

#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else if heap::owns(p.cast()) {
        heap::usable_size(p.cast())
    } else {
        libc_usable(p)
    }
}
