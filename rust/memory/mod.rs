// SPDX-License-Identifier: GPL-2.0

//! Allocations and their mappings: the pages of one tier, who owns and may write each of them,
//! where they are mapped, and how pages go back when nobody owns or maps them any more.
//!
//! An allocation knows nothing of files: the front holds it through handles, and user mappings
//! hold it through their VMAs (`mapping.rs`). Pages it lets go of while their former owner lives
//! go to whatever [`Supply`] the layer above registered in the [`Space`] (the pools), which also
//! provides the pages of the copies a fork makes (see [`Allocation::fork_copy`]).
//!
//! # Locks
//!
//! [`Allocation::state`] is taken after the front's locks and before the pools' and the banks'
//! (releasing pages credits pools and frees bank blocks under it). Faults check rights and insert
//! pages under it, and rights change and zap under it, so no page can stay mapped on old rights.

pub(crate) mod mapping;
pub(crate) mod pages;
pub(crate) mod rights;

use core::ptr::NonNull;
use kernel::{
    bindings,
    bitmap::BitmapVec,
    error::from_err_ptr,
    maple_tree::{AllocErrorKind, MapleTreeAlloc},
    new_mutex,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, MutexGuard,
    },
    task::Kuid,
};

use crate::{
    bank::{layout::is_set, Bank, ZapRange},
    process::Process,
    shim,
    uapi::Tier,
};
use pages::{Pages, TierPage};
use rights::Runs;

/// What allocations need of the layer above (the pools): where the pages they let go of go while
/// their former owner lives, and where the pages of a copy made at fork come from.
pub(crate) trait Supply: Send + Sync {
    /// `pages` pages of `bank`, which were `owner`'s, go back to the bank (`give_back` frees
    /// them there) and to `owner`'s pool, at once: nobody may take them in between, so a pool
    /// never holds more of a bank than it has free. `give_back`'s error is returned.
    fn vram(
        &self,
        owner: &Process,
        bank: &Bank,
        pages: u64,
        give_back: &mut dyn FnMut() -> Result,
    ) -> Result;
    /// `page`, a system page no page table maps, was `owner`'s.
    fn page(&self, owner: &Process, page: TierPage);
    /// `npages` zeroed pages for a copy of pages of `like` made at fork (by the current process,
    /// whose memory cgroup they are charged to), to be mapped at `range` of `space`: VRAM of the
    /// same bank if it can be had, else system pages.
    fn fork_pages(
        &self,
        space: &Arc<Space>,
        like: &Pages,
        npages: u64,
        range: ZapRange,
    ) -> Result<Pages>;
}

/// Where allocations live: the address space every open of `/dev/moreram` maps through, the
/// offsets in it, and what allocations hold together.
///
/// # Invariants
///
/// `inode` is an inode from `moreram_inode_new`, freed on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Space {
    inode: NonNull<bindings::inode>,
    /// The page offsets of live allocations, each followed by a guard page. An allocation's
    /// offsets are handed out again only once it is gone, and so are no longer mapped anywhere:
    /// zapping one allocation's range never touches another's mappings.
    #[pin]
    pgoffs: MapleTreeAlloc<KBox<u64>>,
    /// Bytes of system pages held by allocations.
    system_used: Atomic<u64>,
    supply: Arc<dyn Supply>,
}

// SAFETY: the inode is only handed to the VFS and the mm, which may use it from any thread; the
// rest is `Send` and `Sync`.
unsafe impl Send for Space {}
// SAFETY: as above.
unsafe impl Sync for Space {}

/// Offsets must stay representable as a byte `loff_t`.
const MAX_PGOFF: usize = (i64::MAX as usize) >> PAGE_SHIFT;

impl Space {
    pub(crate) fn new(supply: Arc<dyn Supply>) -> Result<Arc<Self>> {
        // SAFETY: no preconditions; freed in `drop`.
        let inode = from_err_ptr(unsafe { shim::moreram_inode_new() })?;
        // INVARIANT: from `moreram_inode_new`; the initialiser frees it if it fails after this.
        let inode = NonNull::new(inode).ok_or(ENOMEM)?;
        Arc::pin_init(
            try_pin_init!(Space {
                inode,
                pgoffs <- MapleTreeAlloc::new(),
                system_used: Atomic::new(0),
                supply,
            }? Error),
            GFP_KERNEL,
        )
        .inspect_err(|_| {
            // SAFETY: the inode is ours and nobody else has seen it.
            unsafe { shim::moreram_inode_free(inode.as_ptr()) }
        })
    }

    /// The address space every open of `/dev/moreram` maps through.
    pub(crate) fn mapping(&self) -> *mut bindings::address_space {
        // SAFETY: `inode` is valid while `self` lives (type invariants).
        unsafe { (*self.inode.as_ptr()).i_mapping }
    }

    /// Page offsets for an allocation of `npages` pages, free until the returned lease drops.
    pub(crate) fn lease_pgoff(self: &Arc<Self>, npages: u64) -> Result<PgoffLease> {
        // One guard page between allocations: a mapping can never run into the next one.
        let span = usize::try_from(npages)?.checked_add(1).ok_or(EINVAL)?;
        let pgoff = self
            .pgoffs
            .alloc_range(
                span,
                KBox::new(npages, GFP_KERNEL_ACCOUNT)?,
                1..MAX_PGOFF,
                GFP_KERNEL_ACCOUNT,
            )
            .map_err(|e| match e.cause {
                AllocErrorKind::Busy => ENOSPC,
                AllocErrorKind::AllocError(_) => ENOMEM,
                _ => EINVAL,
            })?;
        Ok(PgoffLease {
            space: self.clone(),
            pgoff: pgoff as u64,
        })
    }

    /// Bytes of system pages held by allocations.
    pub(crate) fn system_used(&self) -> u64 {
        self.system_used.load(Relaxed)
    }

    fn system_used_add(&self, bytes: u64) {
        self.system_used.fetch_add(bytes, Relaxed);
    }

    fn system_used_sub(&self, bytes: u64) {
        self.system_used.fetch_sub(bytes, Relaxed);
    }
}

#[pinned_drop]
impl PinnedDrop for Space {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: from `moreram_inode_new` (type invariants); no file or VMA uses it any more,
        // as each holds the space.
        unsafe { shim::moreram_inode_free(self.inode.as_ptr()) };
    }
}

/// Page offsets held by an allocation; handed back on drop.
pub(crate) struct PgoffLease {
    space: Arc<Space>,
    pgoff: u64,
}

impl PgoffLease {
    /// Where the mappings of an allocation of `npages` pages at these offsets are.
    pub(crate) fn range(&self, npages: u64) -> ZapRange {
        ZapRange {
            mapping: self.space.mapping(),
            pgoff: self.pgoff,
            npages,
        }
    }
}

impl Drop for PgoffLease {
    fn drop(&mut self) {
        drop(self.space.pgoffs.erase(self.pgoff as usize));
    }
}

/// A process holding handles to an allocation.
struct Holder {
    process: Process,
    handles: u32,
}

/// A mapping (VMA) of an allocation: its id and the pages it covers.
struct MappedRange {
    id: u64,
    start: u64,
    end: u64,
}

/// What changes during an allocation's life; under [`Allocation::state`].
pub(crate) struct State {
    pub(crate) pages: Pages,
    /// Owner and writers of every page.
    pub(crate) rights: Runs<Process>,
    /// Processes the allocation was shared with by name; they may read it whatever their user.
    pub(crate) readers: KVec<Process>,
    holders: KVec<Holder>,
    maps: KVec<MappedRange>,
    next_map: u64,
    /// Pages given back: ownerless and unmapped.
    released: BitmapVec,
}

impl State {
    /// Whether page `index` has been given back.
    pub(crate) fn is_released(&self, index: u64) -> bool {
        is_set(&self.released, index)
    }

    /// Whether some page of `[start, end)` has been given back.
    pub(crate) fn any_released(&self, start: u64, end: u64) -> bool {
        (start..end).any(|p| self.is_released(p))
    }

    /// Whether `p` holds a handle to the allocation.
    pub(crate) fn holds(&self, p: &Process) -> bool {
        self.holders.iter().any(|h| h.process == *p)
    }

    /// Whether page `index` is ownerless, mapped by nobody, and not given back yet.
    fn unused(&self, index: u64) -> bool {
        self.rights.at(index).is_some_and(|r| r.owner.is_none())
            && !self.maps.iter().any(|m| m.start <= index && index < m.end)
            && !self.is_released(index)
    }
}

/// One allocation.
#[pin_data]
pub(crate) struct Allocation {
    size: u64,
    /// The ABI flags it was made with.
    flags: u32,
    tier: Tier,
    /// Where its user mappings are: its offsets in the space's address space, which lives as
    /// long as the allocation.
    range: ZapRange,
    /// The effective user of the process that allocated it.
    euid: Kuid,
    /// Number of VMAs that map it.
    mappings: Atomic<u32>,
    /// Everything that changes ([`State`]). Taken after the front's locks and before the pools'
    /// and the banks'; see the module documentation.
    #[pin]
    state: Mutex<State>,
    /// The offsets; dropped last, once nothing maps the allocation and its pages are gone. The
    /// copies made at fork share them: their mappings are where the original's were.
    lease: Arc<PgoffLease>,
}

// SAFETY: `range` only passes its pointer to `unmap_mapping_range`, which may run on any thread;
// the rest is `Send` or under the mutex.
unsafe impl Send for Allocation {}
// SAFETY: as above.
unsafe impl Sync for Allocation {}

impl Allocation {
    /// An allocation of `npages` pages, `pages`, zeroed, mapped at the offsets of `lease`, owned
    /// by `owner`, which holds one handle to it.
    pub(crate) fn new(
        lease: PgoffLease,
        pages: Pages,
        npages: u64,
        flags: u32,
        owner: Process,
    ) -> Result<Arc<Self>> {
        let range = lease.range(npages);
        let mut holders = KVec::new();
        holders.push(
            Holder {
                process: owner.clone(),
                handles: 1,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let tier = pages.tier();
        let state = State {
            pages,
            rights: Runs::new(npages, Some(owner))?,
            readers: KVec::new(),
            holders,
            maps: KVec::new(),
            next_map: 1,
            released: BitmapVec::new(usize::try_from(npages)?, GFP_KERNEL_ACCOUNT)?,
        };
        Arc::pin_init(
            try_pin_init!(Allocation {
                size: npages << PAGE_SHIFT,
                flags,
                tier,
                range,
                euid: Kuid::current_euid(),
                mappings: Atomic::new(0),
                state <- new_mutex!(state),
                lease: Arc::new(lease, GFP_KERNEL_ACCOUNT)?,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// A copy of pages `[start, end)`, made when a process forks with a mapping of them (an
    /// allocation made with `MORERAM_ALLOC_FORK_COPY`; called by the forking process, which is
    /// charged for it): what the pages hold now, in new pages that nobody owns until [`Self::adopt`] gives them to the child.
    /// Pages given back here are given back in the copy too. The copy has no handle and is
    /// mapped where the pages are (the child's VMA keeps the original's offsets), so that
    /// zapping either zaps both.
    ///
    /// Every mapping of the pages is zapped and the allocation's lock held throughout, so no
    /// write lands during the copy: the forking process's own faults wait for the fork, which
    /// holds its VMAs, and everybody else's wait for the lock.
    pub(crate) fn fork_copy(&self, start: u64, end: u64) -> Result<Arc<Self>> {
        if start >= end || end > self.npages() {
            return Err(EINVAL);
        }
        let npages = end - start;
        let range = ZapRange {
            mapping: self.range.mapping,
            pgoff: self.range.pgoff + start,
            npages,
        };
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let buf: &mut [u8; PAGE_SIZE] = (&mut buf[..]).try_into().map_err(|_| EINVAL)?;
        let mut released = BitmapVec::new(usize::try_from(npages)?, GFP_KERNEL_ACCOUNT)?;
        let st = self.state.lock();
        let space = &self.lease.space;
        let pages = space.supply.fork_pages(space, &st.pages, npages, range)?;
        self.zap(start, end);
        for i in 0..npages {
            if st.is_released(start + i) {
                released.set_bit(usize::try_from(i)?);
                continue;
            }
            st.pages.read_page(start + i, buf)?;
            pages.write_page(i, buf)?;
        }
        drop(st);
        let tier = pages.tier();
        let state = State {
            pages,
            rights: Runs::new(npages, None)?,
            readers: KVec::new(),
            holders: KVec::new(),
            maps: KVec::new(),
            next_map: 1,
            released,
        };
        Arc::pin_init(
            try_pin_init!(Allocation {
                size: npages << PAGE_SHIFT,
                flags: self.flags,
                tier,
                range,
                euid: Kuid::current_euid(),
                mappings: Atomic::new(0),
                state <- new_mutex!(state),
                lease: self.lease.clone(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The child a copy was made for faulted on it: it owns every page, unless some process
    /// already does.
    pub(crate) fn adopt(&self, child: &Process) {
        let mut st = self.state.lock();
        let n = self.npages();
        if st
            .rights
            .all(0, n, |r| r.owner.is_none() && r.former.is_none())
        {
            let _ = st
                .rights
                .update(0, n, |_| Ok(()), |r| r.owner = Some(child.clone()));
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn npages(&self) -> u64 {
        self.range.npages
    }

    /// First page of the allocation in the mmap offset space.
    pub(crate) fn pgoff(&self) -> u64 {
        self.range.pgoff
    }

    /// The ABI flags it was made with.
    pub(crate) fn flags(&self) -> u32 {
        self.flags
    }

    pub(crate) fn tier(&self) -> Tier {
        self.tier
    }

    /// The user that allocated it.
    pub(crate) fn euid(&self) -> Kuid {
        self.euid
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Zaps every user mapping of pages `[start, end)`, in every process: their next access
    /// faults and is checked again.
    pub(crate) fn zap(&self, start: u64, end: u64) {
        // The address space is the space's, which the lease keeps alive.
        self.range.zap(start, end);
    }

    /// One more handle held by `p`.
    pub(crate) fn hold(&self, p: &Process) -> Result {
        let mut st = self.state.lock();
        if let Some(h) = st.holders.iter_mut().find(|h| h.process == *p) {
            h.handles += 1;
            return Ok(());
        }
        st.holders.push(
            Holder {
                process: p.clone(),
                handles: 1,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(())
    }

    /// A handle held by `p` went away. When it was `p`'s last, `p` lets go of the pages it owns:
    /// they become ownerless, nobody may write them any more, and they go back as soon as
    /// nothing maps them.
    pub(crate) fn unhold(&self, p: &Process) {
        let mut st = self.state.lock();
        let Some(i) = st.holders.iter().position(|h| h.process == *p) else {
            return;
        };
        st.holders[i].handles -= 1;
        if st.holders[i].handles > 0 {
            return;
        }
        let _ = st.holders.remove(i);
        self.let_go(&mut st, p);
    }

    /// The child a copy made at fork is for let go of it (its mapping went): as if it had freed
    /// its last handle.
    pub(crate) fn let_go_copy(&self, child: &Process) {
        let mut st = self.state.lock();
        self.let_go(&mut st, child);
    }

    /// `p` lets go of the pages it owns: they become ownerless, nobody may write them any more,
    /// and they go back as soon as nothing maps them.
    fn let_go(&self, st: &mut State, p: &Process) {
        let n = self.npages();
        let owned = st.rights.any(0, n, |r| r.owned_by(p));
        let let_go = st.rights.update(
            0,
            n,
            |_| Ok(()),
            |r| {
                if r.owned_by(p) {
                    r.owner = None;
                    r.writers.clear();
                    r.former = Some(p.clone());
                }
            },
        );
        if let_go.is_ok() {
            if owned {
                // Nobody may write ownerless pages: writable page-table entries go, and the next
                // write faults and is refused. Pages still mapped stay readable until unmapped.
                self.zap(0, n);
            }
            self.release_unused(st, 0, n);
        }
    }

    /// Number of VMAs mapping it now.
    pub(crate) fn mappings(&self) -> u32 {
        self.mappings.load(Relaxed)
    }

    /// Number of processes holding a handle to it.
    pub(crate) fn holders(&self) -> usize {
        self.state.lock().holders.len()
    }

    /// Bytes still backed by memory (not given back).
    pub(crate) fn resident(&self) -> u64 {
        let st = self.state.lock();
        let n = self.npages();
        let released = (0..n).filter(|&p| st.is_released(p)).count() as u64;
        (n - released) << PAGE_SHIFT
    }

    /// Records a new mapping of pages `[start, end)`, made of one VMA; returns its id.
    fn map(&self, st: &mut State, start: u64, end: u64) -> Result<u64> {
        let id = st.next_map;
        st.maps
            .push(MappedRange { id, start, end }, GFP_KERNEL_ACCOUNT)?;
        st.next_map += 1;
        self.vma_opened();
        Ok(id)
    }

    /// Mapping `id` is gone (all its VMAs); pages only it kept go back if they are ownerless.
    fn unmap(&self, id: u64) {
        let mut st = self.state.lock();
        if let Some(i) = st.maps.iter().position(|m| m.id == id) {
            if let Ok(m) = st.maps.remove(i) {
                self.release_unused(&mut st, m.start, m.end);
            }
        }
    }

    /// One more VMA maps the allocation.
    fn vma_opened(&self) {
        self.mappings.fetch_add(1, Relaxed);
    }

    /// One VMA less.
    fn vma_closed(&self) {
        self.mappings.fetch_sub(1, Relaxed);
    }

    /// Gives back every ownerless, unmapped, unreleased page of `[start, end)`.
    fn release_unused(&self, st: &mut State, start: u64, end: u64) {
        let mut page = start;
        while page < end {
            if !st.unused(page) {
                page += 1;
                continue;
            }
            // Extend to a run of such pages.
            let mut last = page + 1;
            while last < end && st.unused(last) {
                last += 1;
            }
            self.release(st, page, last);
            page = last;
        }
    }

    /// Who gets pages `[start, end)` back, by runs: their former owner if it is alive, else
    /// nobody (`None`: zeroed, to the bank or the page allocator).
    fn heirs(st: &State, start: u64, end: u64) -> KVec<(u64, u64, Option<Process>)> {
        let mut runs = KVec::new();
        for (s, e, r) in st.rights.in_range(start, end) {
            let alive = r.former.as_ref().filter(|p| !p.is_exiting()).cloned();
            if runs.push((s, e, alive), GFP_KERNEL).is_err() {
                // No memory to say who: everything goes back zeroed.
                runs.clear();
                let _ = runs.push((start, end, None), GFP_NOWAIT);
                break;
            }
        }
        runs
    }

    /// Gives pages `[start, end)` back: to the pool of the process that owned them if it is
    /// alive, else zeroed to the bank or the page allocator. No page table maps them.
    fn release(&self, st: &mut State, start: u64, end: u64) {
        for p in start..end {
            st.released.set_bit(p as usize);
        }
        let runs = Self::heirs(st, start, end);
        let reclaim = &self.lease.space.supply;
        match &mut st.pages {
            Pages::System(pages) => {
                for (s, e, to) in runs.iter() {
                    for p in *s..*e {
                        let Some(page) = pages.take(p) else { continue };
                        // Without an owner to take it, the page goes back to the kernel, zeroed.
                        if let Some(owner) = to {
                            reclaim.page(owner, page);
                        }
                    }
                }
            }
            Pages::Vram(v) => {
                let bank = v.bank().clone();
                for (s, e, to) in runs.iter() {
                    // Without an owner to take them, the pages go back to the bank, zeroed.
                    let given = match to {
                        Some(owner) => {
                            reclaim.vram(owner, &bank, e - s, &mut || v.release(*s, e - s, false))
                        }
                        None => v.release(*s, e - s, true),
                    };
                    if given.is_err() {
                        // The bank could not take back part of the allocation: none of it may be
                        // used any more.
                        let n = self.npages();
                        for p in 0..n {
                            st.released.set_bit(p as usize);
                        }
                        self.zap(0, n);
                        return;
                    }
                }
            }
        }
    }
}
