// SPDX-License-Identifier: GPL-2.0

//! Allocations: whole pages of one bank's VRAM, or system pages, never both; and who may do
//! what with each page.

use kernel::{
    bindings, new_mutex,
    page::{Page, PAGE_SHIFT},
    prelude::*,
    sync::{atomic::Atomic, atomic::Relaxed, Arc, Mutex},
    task::Kuid,
};

use crate::{
    bank::{self, Bank, VramBlocks},
    pool,
    rights::{Process, Runs},
    shim, uapi,
};

/// Bytes of system pages allocated through every open file.
pub(crate) static SYSTEM_USED: Atomic<u64> = Atomic::new(0);

/// The next free page offset for mmap. Offsets are never reused, so a stale offset can never
/// name somebody else's allocation, and zapping one allocation's range touches no other.
static NEXT_PGOFF: Atomic<u64> = Atomic::new(1);

/// Offsets must stay representable as a byte `loff_t`.
const MAX_PGOFF: u64 = (i64::MAX as u64) >> PAGE_SHIFT;

/// The pages of an allocation.
pub(crate) enum Pages {
    /// Blocks of one bank.
    Vram(VramBlocks),
    /// System pages, zeroed when allocated; `None` once released.
    System(KVVec<Option<Page>>),
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
    /// Pages given back to the pool: ownerless and unmapped.
    pub(crate) released: kernel::bitmap::BitmapVec,
}

/// One allocation.
#[pin_data]
pub(crate) struct Allocation {
    size: u64,
    flags: u32,
    /// First page of the allocation in the mmap offset space of `/dev/moreram`.
    pgoff: u64,
    /// The address space of `/dev/moreram`; valid while the allocation lives (see `new`).
    mapping: *mut bindings::address_space,
    /// The effective user of the process that allocated it.
    euid: Kuid,
    /// `(tier, bank)` as the ABI reports them.
    placement: (u32, u32),
    /// Number of VMAs that map it.
    mappings: Atomic<u32>,
    #[pin]
    state: Mutex<State>,
}

// SAFETY: `mapping` is only passed to `unmap_mapping_range`, which may run on any thread; the
// rest is `Send` or under the mutex.
unsafe impl Send for Allocation {}
// SAFETY: as above.
unsafe impl Sync for Allocation {}

impl Allocation {
    /// Allocates `size` bytes as the already validated `flags` and `bank` ask, zeroed, owned by
    /// the calling process, which holds one handle to it.
    ///
    /// `mapping` is the address space user mappings will be in; it must stay valid while the
    /// allocation lives. (Allocations live while a file holds a handle or a VMA maps them; both
    /// pin the inode.)
    pub(crate) fn new(
        size: u64,
        flags: u32,
        bank: u32,
        mapping: *mut bindings::address_space,
    ) -> Result<Arc<Self>> {
        // Error paths on demand: moreram/fail_alloc in debugfs.
        if crate::debugfs::fail_alloc(size) {
            return Err(ENOMEM);
        }
        let npages = size >> PAGE_SHIFT;
        let pgoff = reserve_pgoff(npages)?;
        let me = Process::current();
        let pages = if flags & uapi::ALLOC_SYSTEM_ONLY != 0 {
            system_pages(npages, &me)?
        } else {
            match vram(size, flags, bank, pgoff, mapping, &me) {
                Ok(v) => Pages::Vram(v),
                Err(e) if flags & (uapi::ALLOC_VRAM_ONLY | uapi::ALLOC_BANK) != 0 => return Err(e),
                // Prefer VRAM, fall back to system pages.
                Err(_) => system_pages(npages, &me)?,
            }
        };
        let placement = match &pages {
            Pages::Vram(v) => (uapi::TIER_VRAM, v.bank().index()),
            Pages::System(_) => (uapi::TIER_SYSTEM, uapi::NO_BANK),
        };
        let mut holders = KVec::new();
        holders.push(
            Holder {
                process: me.clone(),
                handles: 1,
            },
            GFP_KERNEL,
        )?;
        let state = State {
            pages,
            rights: Runs::new(npages, me)?,
            readers: KVec::new(),
            holders,
            maps: KVec::new(),
            next_map: 1,
            released: kernel::bitmap::BitmapVec::new(usize::try_from(npages)?, GFP_KERNEL)?,
        };
        Arc::pin_init(
            try_pin_init!(Allocation {
                size,
                flags,
                pgoff,
                mapping,
                euid: Kuid::current_euid(),
                placement,
                mappings: Atomic::new(0),
                state <- new_mutex!(state),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn npages(&self) -> u64 {
        self.size >> PAGE_SHIFT
    }

    pub(crate) fn pgoff(&self) -> u64 {
        self.pgoff
    }

    pub(crate) fn is_vram(&self) -> bool {
        self.placement.0 == uapi::TIER_VRAM
    }

    /// Tier and bank, as the user ABI reports them.
    pub(crate) fn placement(&self) -> (u32, u32) {
        self.placement
    }

    pub(crate) fn state(
        &self,
    ) -> kernel::sync::lock::Guard<'_, State, kernel::sync::lock::mutex::MutexBackend> {
        self.state.lock()
    }

    pub(crate) fn query(&self, handle: u32) -> uapi::Query {
        let (tier, bank) = self.placement;
        uapi::Query {
            handle,
            tier,
            bank,
            flags: self.flags,
            size: self.size,
            mmap_offset: self.pgoff << PAGE_SHIFT,
            mappings: self.mappings.load(Relaxed),
            ..Default::default()
        }
    }

    /// Whether `p` may read the allocation: it owns or may write a page of it, was named as a
    /// reader, or runs as the user that allocated it; or it has `CAP_SYS_ADMIN` (`admin`).
    pub(crate) fn may_read(&self, st: &State, p: &Process, admin: bool) -> bool {
        admin
            || Kuid::current_euid() == self.euid
            || st.readers.contains(p)
            || st
                .rights
                .in_range(0, self.npages())
                .any(|(_, _, r)| r.may_write(p))
    }

    /// Zaps every user mapping of pages `[start, end)`, in every process: their next access
    /// faults and is checked again.
    pub(crate) fn zap(&self, start: u64, end: u64) {
        // SAFETY: `mapping` is valid while the allocation lives (see `new`).
        unsafe {
            bindings::unmap_mapping_range(
                self.mapping,
                ((self.pgoff + start) << PAGE_SHIFT) as bindings::loff_t,
                ((end - start) << PAGE_SHIFT) as bindings::loff_t,
                1,
            )
        };
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
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// A handle held by `p` went away. When it was `p`'s last, `p` lets go of the pages it owns:
    /// they become ownerless, and go back to the pool as soon as nothing maps them.
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
        let n = self.npages();
        let owned = st.rights.update(0, n, |r| {
            if r.owner.as_ref() == Some(p) {
                r.owner = None;
                r.writers.clear();
                r.former = Some(p.clone());
            }
            Ok(())
        });
        if owned.is_ok() {
            self.release_unused(&mut st, 0, n);
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

    /// Bytes still backed by memory (not released).
    pub(crate) fn resident(&self) -> u64 {
        let st = self.state.lock();
        let n = self.npages();
        let released = (0..n).filter(|&p| is_set(&st.released, p)).count() as u64;
        (n - released) << PAGE_SHIFT
    }

    /// Records a new mapping of pages `[start, end)`, made of one VMA; returns its id.
    pub(crate) fn map(&self, st: &mut State, start: u64, end: u64) -> Result<u64> {
        let id = st.next_map;
        st.maps.push(MappedRange { id, start, end }, GFP_KERNEL)?;
        st.next_map += 1;
        self.vma_opened();
        Ok(id)
    }

    /// Mapping `id` is gone (all its VMAs); pages only it kept go back to the pool if they are
    /// ownerless.
    pub(crate) fn unmap(&self, id: u64) {
        let mut st = self.state.lock();
        if let Some(i) = st.maps.iter().position(|m| m.id == id) {
            if let Ok(m) = st.maps.remove(i) {
                self.release_unused(&mut st, m.start, m.end);
            }
        }
    }

    /// One more VMA maps the allocation.
    pub(crate) fn vma_opened(&self) {
        self.mappings.fetch_add(1, Relaxed);
    }

    /// One VMA less.
    pub(crate) fn vma_closed(&self) {
        self.mappings.fetch_sub(1, Relaxed);
    }

    /// Gives back to the pool every ownerless, unmapped, unreleased page of `[start, end)`.
    fn release_unused(&self, st: &mut State, start: u64, end: u64) {
        let mut page = start;
        while page < end {
            let free = st.rights.at(page).is_some_and(|r| r.owner.is_none())
                && !st.maps.iter().any(|m| m.start <= page && page < m.end)
                && !is_set(&st.released, page);
            if !free {
                page += 1;
                continue;
            }
            // Extend to a run of such pages.
            let mut last = page + 1;
            while last < end
                && st.rights.at(last).is_some_and(|r| r.owner.is_none())
                && !st.maps.iter().any(|m| m.start <= last && last < m.end)
                && !is_set(&st.released, last)
            {
                last += 1;
            }
            self.release(st, page, last);
            page = last;
        }
    }

    /// Gives pages `[start, end)` back: to the pool of the process that owned them if it is
    /// alive, else zeroed to the bank or the page allocator.
    fn release(&self, st: &mut State, start: u64, end: u64) {
        for p in start..end {
            st.released.set_bit(p as usize);
        }
        // Who gets each run back.
        let mut runs = KVec::new();
        for (s, e, r) in st.rights.in_range(start, end) {
            // SAFETY: `moreram_pid_exiting` takes its own RCU read lock.
            let alive = r
                .former
                .as_ref()
                .filter(|p| !unsafe { shim::moreram_pid_exiting(p.as_ptr()) })
                .cloned();
            if runs.push((s, e, alive), GFP_KERNEL).is_err() {
                // No memory to say who: everything goes to the bank, zeroed.
                runs.clear();
                let _ = runs.push((start, end, None), GFP_NOWAIT);
                break;
            }
        }
        let mut failed = false;
        match &mut st.pages {
            Pages::System(pages) => {
                for (s, e, to) in runs.iter() {
                    for p in *s..*e {
                        let Some(page) = pages[p as usize].take() else {
                            continue;
                        };
                        SYSTEM_USED.fetch_sub(1 << PAGE_SHIFT, Relaxed);
                        match to {
                            Some(owner) => pool::credit_page(owner, page),
                            None => {
                                // The owner's bytes do not go back to the page allocator. No page
                                // table maps the page (the caller's guarantee).
                                // SAFETY: the whole page, which we own and nobody accesses.
                                let _ = unsafe { page.fill_zero_raw(0, kernel::page::PAGE_SIZE) };
                            }
                        }
                    }
                }
            }
            Pages::Vram(v) => {
                let bank = v.bank().index();
                for (s, e, to) in runs.iter() {
                    if v.release(*s, e - s, to.is_none()).is_err() {
                        failed = true;
                        break;
                    }
                    if let Some(owner) = to {
                        pool::credit_vram(owner, bank, e - s);
                    }
                }
            }
        }
        if failed {
            // The bank's allocator could not take back part of the allocation: none of it may be
            // used any more.
            let n = self.npages();
            for p in 0..n {
                st.released.set_bit(p as usize);
            }
            self.zap(0, n);
        }
    }

    /// The page frame of page `index`, if it is not released.
    pub(crate) fn system_pfn(st: &State, index: u64) -> Option<usize> {
        match &st.pages {
            Pages::System(pages) => pages.get(index as usize)?.as_ref().map(page_to_pfn),
            Pages::Vram(_) => None,
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Pages::System(pages) = &self.pages {
            let n = pages.iter().filter(|p| p.is_some()).count() as u64;
            SYSTEM_USED.fetch_sub(n << PAGE_SHIFT, Relaxed);
        }
    }
}

/// Whether bit `i` of `bm` is set.
pub(crate) fn is_set(bm: &kernel::bitmap::BitmapVec, i: u64) -> bool {
    bm.next_bit(i as usize) == Some(i as usize)
}

fn page_to_pfn(page: &Page) -> usize {
    // SAFETY: `page` is a valid page we own.
    unsafe { shim::moreram_page_to_pfn(page.as_ptr()) }
}

fn reserve_pgoff(npages: u64) -> Result<u64> {
    // One guard page between allocations: a mapping can never run into the next one.
    let span = npages.checked_add(1).ok_or(EOVERFLOW)?;
    let pgoff = NEXT_PGOFF.fetch_add(span, Relaxed);
    match pgoff.checked_add(span) {
        Some(end) if end <= MAX_PGOFF => Ok(pgoff),
        _ => Err(EOVERFLOW),
    }
}

/// VRAM from the bank `flags` names, or from the bank with the most free space that has room.
fn vram(
    size: u64,
    flags: u32,
    bank: u32,
    pgoff: u64,
    mapping: *mut bindings::address_space,
    owner: &Process,
) -> Result<VramBlocks> {
    let contiguous = flags & uapi::ALLOC_CONTIGUOUS != 0;
    let banks = bank::snapshot()?;
    if flags & uapi::ALLOC_BANK != 0 {
        let b = banks.iter().find(|b| b.index() == bank).ok_or(ENODEV)?;
        if size > b.size() {
            return Err(E2BIG);
        }
        return b.alloc(size, contiguous, pgoff, mapping, owner);
    }
    if banks.is_empty() {
        return Err(ENODEV);
    }
    if banks.iter().all(|b| size > b.size()) {
        return Err(E2BIG);
    }
    // Most free space nobody has reserved first; a block never spans two banks.
    let mut order: KVec<&Arc<Bank>> = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
    for b in banks.iter() {
        order.push(b, GFP_KERNEL)?;
    }
    order.sort_unstable_by_key(|b| {
        core::cmp::Reverse(b.free().saturating_sub(pool::pooled(b.index())))
    });
    let mut err = ENOSPC;
    for b in order.iter().filter(|b| b.size() >= size) {
        match b.alloc(size, contiguous, pgoff, mapping, owner) {
            Ok(v) => return Ok(v),
            Err(e) if e == ENOSPC => {}
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// `npages` zeroed system pages, from `owner`'s pool first.
fn system_pages(npages: u64, owner: &Process) -> Result<Pages> {
    // SAFETY: `si_meminfo` fills the struct it is given.
    let total = unsafe {
        let mut info: bindings::sysinfo = core::mem::zeroed();
        bindings::si_meminfo(&mut info);
        // `usize` is at most 64 bits wide on every architecture the kernel runs on.
        (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
    };
    // More than the machine has can never succeed; don't let the OOM killer try.
    if npages << PAGE_SHIFT > total {
        return Err(ENOMEM);
    }
    let n = usize::try_from(npages)?;
    let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
    for page in pool::take_pages(owner, n).into_iter() {
        pages.push(Some(page), GFP_KERNEL)?;
    }
    while pages.len() < n {
        pages.push(
            Some(Page::alloc_page(
                GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN,
            )?),
            GFP_KERNEL,
        )?;
    }
    SYSTEM_USED.fetch_add(npages << PAGE_SHIFT, Relaxed);
    Ok(Pages::System(pages))
}
