//! A process's model of what it holds (files, handles, mappings, private allocations) and the
//! rules of the ownership model applied to the board's records: who may read, write, own.
//!
//! Answers are three-valued: where the model cannot know (an owner exiting, a pid that may have
//! been reused, an unbind under way), both outcomes are allowed.

use crate::board::{board, Meta, PageRec, Who, ALIVE, EXITING, TRACK};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    pub fn of(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    pub fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Maybe,
        }
    }

    pub fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Maybe,
        }
    }

    /// Yes becomes Maybe.
    pub fn weaken(self) -> Tri {
        if self == Tri::Yes {
            Tri::Maybe
        } else {
            self
        }
    }
}

/// Who this process is.
#[derive(Clone, Copy, Debug)]
pub struct Me {
    pub inst: u32,
    pub pid: i32,
    pub euid: u32,
    pub admin: bool,
}

/// Whether `w` is this process.
pub fn is_me(w: Who, me: &Me) -> Tri {
    match w {
        Who::Nobody => Tri::No,
        Who::Inst(i) => Tri::of(i == me.inst),
        // A process known by number only: it is us if the number is ours and it may have been
        // given after we got it.
        Who::Pid(p) => {
            if p == me.pid {
                Tri::Maybe
            } else {
                Tri::No
            }
        }
    }
}

/// Whether the owner `w` still holds its pages: it has not let go of its last handle. A process
/// lets go when it exits, unless its handles are in a file that outlives it.
pub fn holds(w: Who) -> Tri {
    match w {
        Who::Nobody => Tri::No,
        Who::Inst(i) => match board().state(i) {
            ALIVE => Tri::Yes,
            EXITING => Tri::Maybe,
            _ if board().lingers(i) => Tri::Maybe,
            _ => Tri::No,
        },
        Who::Pid(_) => Tri::Maybe,
    }
}

/// Whether `w` is a process that can still act (write as owner): alive.
fn alive(w: Who) -> Tri {
    match w {
        Who::Inst(i) => match board().state(i) {
            ALIVE => Tri::Yes,
            EXITING => Tri::Maybe,
            _ => Tri::No,
        },
        _ => holds(w),
    }
}

/// Whether `me` may write page `r`: as its owner, or as a writer while the owner holds it.
pub fn may_write(r: &PageRec, me: &Me) -> Tri {
    let owner = r.owner();
    let held = holds(owner);
    if held == Tri::No {
        return Tri::No;
    }
    let mut w = is_me(owner, me).and(alive(owner));
    for x in r.writers() {
        w = w.or(is_me(x, me));
    }
    if held == Tri::Maybe {
        w.weaken()
    } else {
        w
    }
}

/// Whether `me` owns page `r`.
pub fn owns(r: &PageRec, me: &Me) -> Tri {
    let owner = r.owner();
    let alive = holds(owner);
    let o = is_me(owner, me);
    if alive == Tri::No {
        Tri::No
    } else if alive == Tri::Maybe {
        o.weaken()
    } else {
        o
    }
}

/// Whether page `r` has no owner any more: nobody may write it, and it goes back once nothing
/// maps it.
pub fn ownerless(r: &PageRec) -> Tri {
    match holds(r.owner()) {
        Tri::Yes => Tri::No,
        Tri::No => Tri::Yes,
        Tri::Maybe => Tri::Maybe,
    }
}

/// Whether `me` may read the allocation.
pub fn may_read(m: &Meta, pages: &[PageRec], me: &Me) -> Tri {
    if me.admin || me.euid == m.creator_euid {
        return Tri::Yes;
    }
    let mut r = Tri::No;
    for w in m.readers() {
        r = r.or(is_me(w, me));
    }
    if m.readers_full() {
        r = r.or(Tri::Maybe);
    }
    for p in pages {
        // The kernel asks whether `me` is the owner or a writer, alive or not.
        let mut w = is_me(p.owner(), me);
        for x in p.writers() {
            w = w.or(is_me(x, me));
        }
        // An owner that let go is no longer the owner.
        if holds(p.owner()) != Tri::Yes {
            w = w.weaken();
        }
        r = r.or(w);
    }
    r
}

/// The bank unbind state of a VRAM allocation: whether its pages are gone (SIGBUS).
pub fn unbound(m: &Meta) -> Tri {
    if m.vram == 0 {
        return Tri::No;
    }
    let b = &board().banks[(m.bank as usize).min(crate::board::MAX_BANKS - 1)];
    use std::sync::atomic::Ordering::Acquire;
    let started = b.started.load(Acquire);
    let done = b.done.load(Acquire);
    if m.epoch_certain == 0 {
        // Allocated while an unbind was under way: it may be of the old device or of the new
        // one. `bank_epoch` is the count of unbinds started when the ALLOC returned: one more
        // that is done surely took it away.
        return if done > m.bank_epoch {
            Tri::Yes
        } else {
            Tri::Maybe
        };
    }
    if done > m.bank_epoch {
        Tri::Yes
    } else if started > m.bank_epoch {
        Tri::Maybe
    } else {
        Tri::No
    }
}

/// An allocation the model knows: on the board (shared with other processes), or private.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ARef {
    pub uid: u64,
    /// The board entry, for shared allocations.
    pub slot: Option<usize>,
}

/// A private allocation: too large for the board, or the board was full.
pub struct Priv {
    pub meta: Meta,
    pub pages: Vec<PageRec>,
}

/// An allocation's record, locked if on the board.
pub enum View<'a> {
    Shared(crate::board::Locked<'static>),
    Private(&'a mut Priv),
}

impl View<'_> {
    pub fn meta(&self) -> &Meta {
        match self {
            View::Shared(l) => &l.meta,
            View::Private(p) => &p.meta,
        }
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            View::Shared(l) => &mut l.meta,
            View::Private(p) => &mut p.meta,
        }
    }

    pub fn pages(&self) -> &[PageRec] {
        match self {
            View::Shared(l) => &l.pages[..(l.meta.npages as usize).min(TRACK)],
            View::Private(p) => &p.pages,
        }
    }

    pub fn pages_mut(&mut self) -> &mut [PageRec] {
        match self {
            View::Shared(l) => {
                let n = (l.meta.npages as usize).min(TRACK);
                &mut l.pages[..n]
            }
            View::Private(p) => &mut p.pages,
        }
    }

    /// Notes a change to the record (board entries only), for a failure's report.
    pub fn note(&mut self, text: &str) {
        if let View::Shared(l) = self {
            let uid = l.meta.uid;
            l.hist.note(uid, text);
        }
    }

    /// The changes noted, oldest first.
    pub fn history(&self) -> Vec<String> {
        match self {
            View::Shared(l) => l.hist.of(l.meta.uid),
            View::Private(_) => Vec::new(),
        }
    }

    pub fn split(&mut self) -> (&mut Meta, &mut [PageRec]) {
        match self {
            View::Shared(l) => {
                let n = (l.meta.npages as usize).min(TRACK);
                let d = &mut **l;
                (&mut d.meta, &mut d.pages[..n])
            }
            View::Private(p) => (&mut p.meta, &mut p.pages),
        }
    }
}

/// The record of allocation `a` among private allocations `privs` or on the board.
pub fn view_in(privs: &mut HashMap<u64, Priv>, a: ARef) -> Option<View<'_>> {
    match a.slot {
        Some(slot) => {
            let l = board().entries[slot].lock();
            if l.meta.uid != a.uid {
                return None;
            }
            Some(View::Shared(l))
        }
        None => privs.get_mut(&a.uid).map(View::Private),
    }
}

/// A handle of a file.
/// `HandleM::flags` of a handle whose ALLOC flags this process does not know (an import).
pub const FLAGS_UNKNOWN: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct HandleM {
    pub h: u32,
    pub a: ARef,
    /// The instance that holds it (only it may FREE it).
    pub holder: u32,
    pub npages: u64,
    pub offset: u64,
    pub vram: bool,
    pub bank: u32,
    pub flags: u32,
    /// Not for random operations (the hog's allocation): only counted by TIER.
    pub opaque: bool,
}

/// An open file of /dev/moreram, as this process knows it.
#[derive(Clone, Debug)]
pub struct FileM {
    pub id: u32,
    /// This process's descriptors of it.
    pub fds: Vec<i32>,
    pub nonblock: bool,
    /// Opened through a second device node.
    pub alt: bool,
    /// Other processes may allocate or free through it at any time (the supervisor's file).
    pub crowded: bool,
    /// Opened read-only: no writable mapping.
    pub rdonly: bool,
    /// The file belongs to another process that keeps it open: closing ours releases nothing.
    pub foreign: bool,
    /// The instance whose life bounds the file's (this process, the parent, the supervisor):
    /// handles made in it, and their tokens, live as long as it keeps the file.
    pub owner_inst: u32,
    pub handles: Vec<HandleM>,
    /// The largest handle seen: handles are never reused, so a new one is larger.
    pub max_handle: u32,
    /// Handles the kernel may have made that we never learned (ALLOC/IMPORT that failed to copy
    /// out; issue 10, item 13).
    pub leaked: u32,
    /// A handle of this file was freed while a sibling of the same allocation stayed.
    pub sibling_freed: bool,
    /// Offsets of allocations of this file that are gone (a stale mmap offset is EINVAL unless
    /// a live allocation took it again).
    pub stale_offsets: Vec<u64>,
}

/// A mapping (one VMA) this process made.
#[derive(Clone, Debug)]
pub struct MapM {
    pub addr: usize,
    pub len: usize,
    pub file: u32,
    pub a: ARef,
    /// Page of the allocation at `addr`.
    pub first: u64,
    pub prot: i32,
    pub maywrite: bool,
    /// Inside this thread's reserved region (may be replaced by a PROT_NONE overlay).
    pub in_region: bool,
    pub alt: bool,
    /// Of an allocation made with `MORERAM_ALLOC_FORK_COPY`: a forked child has a copy. `Maybe`
    /// for an imported handle (IMPORT does not say how the allocation was made).
    pub fork_copy: Tri,
    /// `madvise(MADV_DONTFORK)` succeeded on some of it: a child may not have it.
    pub dontfork: bool,
}

impl MapM {
    pub fn npages(&self) -> u64 {
        (self.len / 4096) as u64
    }
}

/// A range of address space reserved PROT_NONE, where mappings are placed with MAP_FIXED, so
/// that an address whose mapping went can be probed (it must fault) without another thread's
/// mapping landing there.
pub struct Region {
    /// Free ranges (reserved, PROT_NONE): (start, len).
    free: Vec<(usize, usize)>,
}

impl Region {
    pub fn new(len: usize) -> Region {
        // SAFETY: a fresh anonymous reservation; nothing is committed.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "reserve region");
        Region {
            free: vec![(p as usize, len)],
        }
    }

    /// Takes `len` bytes of reserved space, at a random fitting place.
    pub fn take(&mut self, len: usize, pick: u64) -> Option<usize> {
        let fits: Vec<usize> = (0..self.free.len())
            .filter(|&i| self.free[i].1 >= len)
            .collect();
        if fits.is_empty() {
            return None;
        }
        let i = fits[pick as usize % fits.len()];
        let (s, l) = self.free[i];
        // From the start or the end of the free range.
        if pick & 1 == 0 {
            self.free[i] = (s + len, l - len);
            if l == len {
                self.free.remove(i);
            }
            Some(s)
        } else {
            self.free[i] = (s, l - len);
            if l == len {
                self.free.remove(i);
            }
            Some(s + l - len)
        }
    }

    /// Gives back `[addr, addr + len)`, which is reserved again (PROT_NONE) by the caller.
    pub fn give(&mut self, addr: usize, len: usize) {
        self.free.push((addr, len));
        self.free.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.free.len());
        for &(s, l) in &self.free {
            if let Some(last) = merged.last_mut() {
                if last.0 + last.1 == s {
                    last.1 += l;
                    continue;
                }
            }
            merged.push((s, l));
        }
        self.free = merged;
    }

    /// Puts a PROT_NONE reservation over `[addr, addr + len)`: whatever was mapped there goes.
    pub fn overlay(addr: usize, len: usize) -> bool {
        // SAFETY: replaces our own mapping at an address we manage.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        p as usize == addr
    }
}

/// Everything a process (or thread) knows of what it holds.
pub struct Model {
    pub me: Me,
    pub files: Vec<FileM>,
    pub maps: Vec<MapM>,
    pub privs: HashMap<u64, Priv>,
    pub region: Region,
}

impl Model {
    pub fn new(me: Me, region_len: usize) -> Model {
        Model {
            me,
            files: Vec::new(),
            maps: Vec::new(),
            privs: HashMap::new(),
            region: Region::new(region_len),
        }
    }

    pub fn file(&self, id: u32) -> Option<&FileM> {
        self.files.iter().find(|f| f.id == id)
    }

    pub fn file_mut(&mut self, id: u32) -> Option<&mut FileM> {
        self.files.iter_mut().find(|f| f.id == id)
    }

    /// How many handles this process holds, across its files, of allocation `a`.
    pub fn my_handles(&self, a: ARef) -> usize {
        self.files
            .iter()
            .flat_map(|f| f.handles.iter())
            .filter(|h| h.a == a && h.holder == self.me.inst)
            .count()
    }

    /// Whether any file of this process still refers to `a`, or a mapping of it.
    pub fn refers(&self, a: ARef) -> bool {
        self.files
            .iter()
            .flat_map(|f| f.handles.iter())
            .any(|h| h.a == a)
            || self.maps.iter().any(|m| m.a == a)
    }

    /// Mappings (VMAs) of `a` this process has.
    pub fn vmas_of(&self, a: ARef) -> u32 {
        self.maps.iter().filter(|m| m.a == a).count() as u32
    }
}
