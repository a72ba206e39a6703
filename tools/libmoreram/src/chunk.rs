// SPDX-License-Identifier: GPL-2.0
//! Chunks: tier memory taken from the kernel in large pieces, mapped inside one address-space
//! reservation of the library's, and found again by address in O(1).
//!
//! - At start-up the library reserves a large range of address space (`PROT_NONE`,
//!   `MAP_NORESERVE`: nothing is committed). Every tier mapping it makes goes inside it with
//!   `MAP_FIXED`, so "is this pointer ours" is one comparison, with no lock.
//! - The range is cut into granules of [`GRANULE`] bytes; a table (system RAM, never the tier)
//!   holds for each granule the arena, tier and bank of the chunk over it: `tier_of` and the
//!   arena of a pointer are one load.
//! - The records of chunks (handle, file, bytes still in use) are in a map under one lock,
//!   taken only when a chunk is made, carved or given back: never for a `malloc` or `free`
//!   that jemalloc serves from what it holds.
//! - A chunk goes back to the kernel (`munmap` by replacing it with reservation again, then
//!   `MORERAM_IOC_FREE`) when every byte carved from it was given back.

use crate::lock::Locked;
use std::{
    collections::BTreeMap,
    io,
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
};

/// Granularity of the address table and of chunk addresses and sizes: 2 MiB.
pub const GRANULE_SHIFT: u32 = 21;
/// Bytes in a granule.
pub const GRANULE: usize = 1 << GRANULE_SHIFT;
/// Default size of the address-space reservation: 1 TiB (`MORERAM_RESERVE_GB` changes it).
pub const DEFAULT_RESERVATION: usize = 1 << 40;
/// Default size of a heap chunk: 32 MiB, or the request when it is larger.
pub const DEFAULT_CHUNK: usize = 32 << 20;

/// The arena number stored for page-granular blocks and imports (not jemalloc's).
pub const ARENA_BLOCK: u32 = 0xffff;

/// Where memory may go: the library's version of the kernel's placement flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// VRAM, else system pages.
    Any,
    /// VRAM only.
    VramOnly,
    /// System pages only.
    SystemOnly,
    /// VRAM of this bank only.
    Bank(u32),
}

/// A placement: where, and whether physically contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// Where.
    pub kind: Kind,
    /// In one physically contiguous block of VRAM (each chunk is).
    pub contiguous: bool,
}

/// The tier memory is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// VRAM of a bank.
    Vram(u32),
    /// System pages.
    System,
}

/// Where tier memory comes from: the kernel ([`crate::source::Kernel`]), or in the host tests
/// anonymous memory.
pub trait Source: Send + Sync {
    /// Maps `len` bytes (a multiple of [`GRANULE`]) of new, zeroed tier memory at `addr`, which
    /// is reserved address space of the library's (`MAP_FIXED` over it). Returns the handle
    /// and file it was made through, and the tier it got.
    fn map(&self, addr: usize, len: usize, placement: Placement) -> io::Result<(Handle, Tier)>;
    /// Forgets an allocation whose mapping is already gone.
    fn free(&self, handle: Handle);
    /// After `fork()`, in the child: the handles made before belong to the parent's file.
    fn forked(&self) {}
}

/// An allocation of the kernel: its file descriptor and handle there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    /// The file it was made through (-1 in tests).
    pub fd: i32,
    /// The handle in that file.
    pub handle: u32,
    /// The `mmap` offset of its first page.
    pub mmap_offset: u64,
}

/// One chunk: a kernel allocation mapped at a granule boundary of the reservation.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    /// Bytes, a multiple of [`GRANULE`].
    pub len: usize,
    /// Its allocation.
    pub handle: Handle,
    /// Its tier.
    pub tier: Tier,
    /// The jemalloc arena it serves, or [`ARENA_BLOCK`].
    pub arena: u32,
    /// Bytes carved from its start so far (heap chunks; blocks are carved whole).
    pub carved: usize,
    /// Bytes carved and not given back.
    pub live: usize,
    /// The fork generation it was made in: a child never frees its parent's handles.
    pub generation: u32,
    /// Mapped read-only (an import).
    pub readonly: bool,
}

struct Chunks {
    /// Chunks by start address.
    map: BTreeMap<usize, Chunk>,
    /// Free address ranges of the reservation, by start.
    holes: BTreeMap<usize, usize>,
    /// Per arena: the chunk it carves from now.
    open: BTreeMap<u32, usize>,
}

static BASE: AtomicUsize = AtomicUsize::new(0);
static LEN: AtomicUsize = AtomicUsize::new(0);
static TABLE: AtomicUsize = AtomicUsize::new(0);
static CHUNK_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_CHUNK);
/// Fork generation: bumped in the child.
pub static GENERATION: AtomicU32 = AtomicU32::new(0);
/// Bytes of chunks held now, per tier: VRAM, system.
pub static HELD: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

static CHUNKS: Locked<Option<Chunks>> = Locked::new(None);

/// Reserves the address space and the table. Called once, before any other function here.
pub fn reserve(len: usize, chunk: usize) -> io::Result<()> {
    let len = len.max(GRANULE * 64) & !(GRANULE - 1);
    // One extra granule to align the start.
    let raw_len = len + GRANULE;
    // SAFETY: a fresh anonymous mapping at an address the kernel picks.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            raw_len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = (raw as usize + GRANULE - 1) & !(GRANULE - 1);
    let entries = len >> GRANULE_SHIFT;
    // SAFETY: as above; the table is zero-filled anonymous memory, pages touched on use.
    let table = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            entries * 4,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if table == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        // SAFETY: the reservation just made, used by nobody.
        unsafe { libc::munmap(raw, raw_len) };
        return Err(e);
    }
    let mut holes = BTreeMap::new();
    holes.insert(base, len);
    *CHUNKS.lock() = Some(Chunks {
        map: BTreeMap::new(),
        holes,
        open: BTreeMap::new(),
    });
    CHUNK_SIZE.store(chunk.max(GRANULE) & !(GRANULE - 1), Ordering::Relaxed);
    TABLE.store(table as usize, Ordering::Relaxed);
    LEN.store(len, Ordering::Relaxed);
    BASE.store(base, Ordering::Release);
    Ok(())
}

/// Whether `p` is in the reservation: memory of the library's (or nothing). Lock-free.
#[inline]
pub fn owns(p: usize) -> bool {
    p.wrapping_sub(BASE.load(Ordering::Relaxed)) < LEN.load(Ordering::Relaxed)
}

/// Granule entry: bit 31 valid, bit 30 VRAM, bits 16..24 bank, bits 0..16 arena.
#[inline]
fn entry(p: usize) -> u32 {
    if !owns(p) {
        return 0;
    }
    let i = (p - BASE.load(Ordering::Relaxed)) >> GRANULE_SHIFT;
    let t = TABLE.load(Ordering::Relaxed) as *const AtomicU32;
    // SAFETY: `owns` bounds `i` by the table's length; the table lives for the process.
    unsafe { (*t.add(i)).load(Ordering::Acquire) }
}

fn set_entries(start: usize, len: usize, v: u32) {
    let t = TABLE.load(Ordering::Relaxed) as *const AtomicU32;
    let first = (start - BASE.load(Ordering::Relaxed)) >> GRANULE_SHIFT;
    for i in first..first + (len >> GRANULE_SHIFT) {
        // SAFETY: the range is inside the reservation, so inside the table.
        unsafe { (*t.add(i)).store(v, Ordering::Release) };
    }
}

fn encode(arena: u32, tier: Tier) -> u32 {
    let t = match tier {
        Tier::Vram(b) => (1 << 30) | ((b & 0xff) << 16),
        Tier::System => 0,
    };
    (1 << 31) | t | (arena & 0xffff)
}

/// The arena of a pointer of ours (jemalloc's, or [`ARENA_BLOCK`]), if it is in a live chunk.
#[inline]
pub fn arena_of(p: usize) -> Option<u32> {
    let e = entry(p);
    (e != 0).then_some(e & 0xffff)
}

/// The tier of a pointer of ours, if it is in a live chunk. Lock-free.
#[inline]
pub fn tier_of(p: usize) -> Option<Tier> {
    let e = entry(p);
    if e == 0 {
        None
    } else if e & (1 << 30) != 0 {
        Some(Tier::Vram((e >> 16) & 0xff))
    } else {
        Some(Tier::System)
    }
}

fn tier_index(t: Tier) -> usize {
    match t {
        Tier::Vram(_) => 0,
        Tier::System => 1,
    }
}

fn take_hole(c: &mut Chunks, len: usize, align: usize) -> Option<usize> {
    let align = align.max(GRANULE);
    let (&start, &hlen) = c.holes.iter().find(|(&s, &l)| {
        let a = (s + align - 1) & !(align - 1);
        a + len <= s + l
    })?;
    c.holes.remove(&start);
    let a = (start + align - 1) & !(align - 1);
    if a > start {
        c.holes.insert(start, a - start);
    }
    if a + len < start + hlen {
        c.holes.insert(a + len, start + hlen - (a + len));
    }
    Some(a)
}

fn give_hole(c: &mut Chunks, start: usize, len: usize) {
    let (mut s, mut l) = (start, len);
    if let Some((&ps, &pl)) = c.holes.range(..s).next_back() {
        if ps + pl == s {
            c.holes.remove(&ps);
            s = ps;
            l += pl;
        }
    }
    if let Some(&nl) = c.holes.get(&(start + len)) {
        c.holes.remove(&(start + len));
        l += nl;
    }
    c.holes.insert(s, l);
}

/// Puts reservation back over `[start, start + len)`: the tier mapping there goes.
fn unmap(start: usize, len: usize) {
    // SAFETY: the range is inside our reservation and no longer handed out; MAP_FIXED replaces
    // the tier mapping with reserved, inaccessible address space.
    unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
}

/// Makes a new chunk of at least `len` bytes aligned to `align`, for `arena`. Caller holds the
/// lock (passes its contents).
fn new_chunk(
    c: &mut Chunks,
    src: &dyn Source,
    len: usize,
    align: usize,
    arena: u32,
    placement: Placement,
) -> io::Result<usize> {
    let len = (len + GRANULE - 1) & !(GRANULE - 1);
    let start =
        take_hole(c, len, align).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
    match src.map(start, len, placement) {
        Ok((handle, tier)) => {
            c.map.insert(
                start,
                Chunk {
                    len,
                    handle,
                    tier,
                    arena,
                    carved: 0,
                    live: 0,
                    generation: GENERATION.load(Ordering::Relaxed),
                    readonly: false,
                },
            );
            HELD[tier_index(tier)].fetch_add(len, Ordering::Relaxed);
            set_entries(start, len, encode(arena, tier));
            Ok(start)
        }
        Err(e) => {
            give_hole(c, start, len);
            Err(e)
        }
    }
}

fn release(c: &mut Chunks, src: &dyn Source, start: usize) {
    let Some(ch) = c.map.remove(&start) else {
        return;
    };
    if c.open.get(&ch.arena) == Some(&start) {
        c.open.remove(&ch.arena);
    }
    set_entries(start, ch.len, 0);
    unmap(start, ch.len);
    if ch.generation == GENERATION.load(Ordering::Relaxed) {
        src.free(ch.handle);
    }
    HELD[tier_index(ch.tier)].fetch_sub(ch.len, Ordering::Relaxed);
    give_hole(c, start, ch.len);
}

/// Carves `size` bytes aligned to `align` for jemalloc's arena `arena`, from the arena's open
/// chunk or a new one. Never reuses carved bytes: jemalloc keeps what it reuses.
pub fn carve(
    src: &dyn Source,
    arena: u32,
    placement: Placement,
    size: usize,
    align: usize,
) -> io::Result<usize> {
    let mut g = CHUNKS.lock();
    let c = g
        .as_mut()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    if let Some(&start) = c.open.get(&arena) {
        let ch = c.map.get_mut(&start).expect("open chunk is in the map");
        let at = (start + ch.carved + align - 1) & !(align - 1);
        if at + size <= start + ch.len {
            ch.carved = at + size - start;
            ch.live += size;
            return Ok(at);
        }
        let idle = ch.live == 0;
        c.open.remove(&arena);
        if idle {
            release(c, src, start);
        }
    }
    let want = size.max(CHUNK_SIZE.load(Ordering::Relaxed));
    let start = new_chunk(c, src, want, align, arena, placement)?;
    let ch = c.map.get_mut(&start).expect("just made");
    ch.carved = size;
    ch.live = size;
    if ch.carved < ch.len {
        c.open.insert(arena, start);
    }
    Ok(start)
}

/// jemalloc gave back `[p, p + size)`: when its chunk has nothing carved left, the chunk goes.
pub fn uncarve(src: &dyn Source, p: usize, size: usize) {
    let mut g = CHUNKS.lock();
    let Some(c) = g.as_mut() else {
        return;
    };
    let Some((&start, ch)) = c.map.range_mut(..=p).next_back() else {
        return;
    };
    if p >= start + ch.len {
        return;
    }
    ch.live = ch.live.saturating_sub(size);
    let open = c.open.get(&ch.arena) == Some(&start);
    if ch.live == 0 && !open {
        release(c, src, start);
    }
}

/// Whether `[a, a + la)` and `[b, b + lb)` lie in one chunk (jemalloc may merge them).
pub fn same_chunk(a: usize, b: usize) -> bool {
    let g = CHUNKS.lock();
    let Some(c) = g.as_ref() else {
        return false;
    };
    let find = |p: usize| c.map.range(..=p).next_back().map(|(&s, _)| s);
    find(a).is_some() && find(a) == find(b)
}

/// The chunks of an arena that nothing uses any more go (after a purge, or its destruction).
pub fn close_arena(src: &dyn Source, arena: u32) {
    let mut g = CHUNKS.lock();
    let Some(c) = g.as_mut() else {
        return;
    };
    if let Some(start) = c.open.remove(&arena) {
        if c.map.get(&start).is_some_and(|ch| ch.live == 0) {
            release(c, src, start);
        }
    }
}

/// A page-granular block: a chunk of its own, carved whole. Returns its address.
pub fn block(src: &dyn Source, size: usize, placement: Placement) -> io::Result<usize> {
    let mut g = CHUNKS.lock();
    let c = g
        .as_mut()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    let start = new_chunk(c, src, size, GRANULE, ARENA_BLOCK, placement)?;
    let ch = c.map.get_mut(&start).expect("just made");
    ch.carved = ch.len;
    ch.live = ch.len;
    Ok(start)
}

/// Maps an existing allocation (an import) at a free place; the chunk is a block.
pub fn adopt(
    len: usize,
    map: impl FnOnce(usize, usize) -> io::Result<(Handle, Tier)>,
    readonly: bool,
) -> io::Result<usize> {
    let mut g = CHUNKS.lock();
    let c = g
        .as_mut()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    let glen = (len + GRANULE - 1) & !(GRANULE - 1);
    let start =
        take_hole(c, glen, GRANULE).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
    match map(start, len) {
        Ok((handle, tier)) => {
            c.map.insert(
                start,
                Chunk {
                    len: glen,
                    handle,
                    tier,
                    arena: ARENA_BLOCK,
                    carved: glen,
                    live: glen,
                    generation: GENERATION.load(Ordering::Relaxed),
                    readonly,
                },
            );
            HELD[tier_index(tier)].fetch_add(glen, Ordering::Relaxed);
            set_entries(start, glen, encode(ARENA_BLOCK, tier));
            Ok(start)
        }
        Err(e) => {
            unmap(start, glen);
            give_hole(c, start, glen);
            Err(e)
        }
    }
}

/// Frees the block starting at `p`; `EINVAL` if `p` is not the start of a block.
pub fn free_block(src: &dyn Source, p: usize) -> io::Result<()> {
    let mut g = CHUNKS.lock();
    let c = g
        .as_mut()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    match c.map.get(&p) {
        Some(ch) if ch.arena == ARENA_BLOCK => {
            release(c, src, p);
            Ok(())
        }
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// The chunk holding `[p, p + len)`, with `p`'s offset in it: for rights and sharing.
pub fn find(p: usize, len: usize) -> io::Result<(Chunk, usize)> {
    let g = CHUNKS.lock();
    let c = g
        .as_ref()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let (&start, ch) = c
        .map
        .range(..=p)
        .next_back()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    if p + len > start + ch.len {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    Ok((*ch, p - start))
}

/// Chunks held now: `(count, bytes)`.
pub fn count() -> (usize, usize) {
    let g = CHUNKS.lock();
    g.as_ref()
        .map(|c| (c.map.len(), c.map.values().map(|ch| ch.len).sum()))
        .unwrap_or((0, 0))
}

/// Around `fork()`: the chunk lock is held across it, so the child finds it consistent.
pub fn fork_prepare() {
    CHUNKS.raw_lock();
}

/// After `fork()` in the parent.
pub fn fork_parent() {
    // SAFETY: taken by `fork_prepare` in this thread.
    unsafe { CHUNKS.raw_unlock() };
}

/// After `fork()` in the child: a new generation; the inherited handles are the parent's.
///
/// Where the kernel did not copy a chunk's mapping into the child (`VM_DONTCOPY`), its range
/// would be a hole in the reservation that the kernel could fill with anybody's mapping, which
/// [`owns`] would then claim: reserved, inaccessible address space goes back over it. Where the
/// kernel copies mappings, they are left as they are.
pub fn fork_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the lock is held since `fork_prepare`, by this thread, the child's only one.
    if let Some(c) = unsafe { &*CHUNKS.value_ptr() } {
        for (&start, ch) in &c.map {
            // SAFETY: msync of a range of our reservation only asks whether it is mapped.
            let unmapped =
                unsafe { libc::msync(start as *mut libc::c_void, ch.len, libc::MS_ASYNC) } != 0;
            if unmapped {
                unmap(start, ch.len);
            }
        }
    }
    // SAFETY: taken by `fork_prepare` in the thread that forked, the child's only thread.
    unsafe { CHUNKS.raw_unlock() };
}
