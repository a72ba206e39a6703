// SPDX-License-Identifier: GPL-2.0

//! An open `/dev/moreram`: its handles, by number and by mmap offset, its accounting, and the
//! operations on them: allocation, sharing, rights.

use kernel::{
    bindings, new_mutex, new_poll_condvar,
    page::PAGE_SHIFT,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{atomic::Atomic, atomic::Relaxed, poll::PollCondVar, Arc, Mutex},
    task::Kuid,
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    bank,
    memory::{Allocation, SYSTEM_USED},
    pool,
    rights::Process,
    uapi,
};

/// A handle: an allocation, and the process that holds it (that allocated or imported it).
pub(crate) struct Handle {
    pub(crate) alloc: Arc<Allocation>,
    holder: Process,
}

/// The handles of one open file.
struct Handles {
    /// Handle to give next; handles are never reused within a file.
    next: u32,
    by_handle: RBTree<u32, Handle>,
    /// Handle by the *last* page offset of the allocation, so that a lower-bound search from any
    /// page finds the allocation containing it.
    by_last_pgoff: RBTree<u64, u32>,
    vram_bytes: u64,
    system_bytes: u64,
}

impl Drop for Handles {
    fn drop(&mut self) {
        // The file is going: every holder lets go of what its handles held here.
        for h in self.by_handle.values() {
            h.alloc.unhold(&h.holder);
        }
    }
}

/// Per-open-file state, in the file's `private_data`.
#[pin_data]
pub(crate) struct MoreramFile {
    /// The file's address space (the inode's); user mappings live there.
    mapping: *mut bindings::address_space,
    /// The process that opened the file: scavenge requests for its pool are queued here.
    opener: Process,
    #[pin]
    handles: Mutex<Handles>,
    /// Scavenge requests not read yet.
    #[pin]
    events: Mutex<KVec<uapi::Event>>,
    /// Woken when an event is queued; `poll` waits on it.
    #[pin]
    event_cv: PollCondVar,
    /// A signal to send with every event, or 0.
    signal: Atomic<u32>,
    /// `drm-client-id`: unique among open files for the module's lifetime.
    client_id: u64,
}

/// The next `drm-client-id`.
static NEXT_CLIENT: Atomic<u64> = Atomic::new(1);

// SAFETY: `mapping` is only handed to the mm, which may use it from any thread; the rest is
// protected by the mutex.
unsafe impl Send for MoreramFile {}
// SAFETY: as above.
unsafe impl Sync for MoreramFile {}

/// A share made with `MORERAM_IOC_SHARE`, until its handle goes.
struct Share {
    token: u64,
    alloc: Arc<Allocation>,
    /// The only process that may import, if named.
    named: Option<Process>,
    /// The sharer's user: without a name, only its processes may import.
    euid: Kuid,
    /// The file and handle that made it, to drop it with the handle.
    file: *const MoreramFile,
    handle: u32,
}

// SAFETY: `file` is only compared, never dereferenced.
unsafe impl Send for Share {}

kernel::sync::global_lock! {
    // SAFETY: `init` runs in module init, before `/dev/moreram` exists.
    unsafe(uninit) static SHARES: Mutex<KVec<Share>> = KVec::new();
}

kernel::sync::global_lock! {
    // SAFETY: `init` runs in module init, before `/dev/moreram` exists.
    unsafe(uninit) static FILES: Mutex<KVec<Arc<MoreramFile>>> = KVec::new();
}

/// Initialises the registries. Called once, from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any other use of the registries.
    unsafe {
        SHARES.init();
        FILES.init();
    }
}

/// Whether the caller has `CAP_SYS_ADMIN`: it may inspect any allocation, never write one.
pub(crate) fn admin() -> bool {
    // SAFETY: `capable` only reads the caller's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// Checks a page range of an allocation of `npages` pages; returns it in pages.
fn page_range(offset: u64, length: u64, npages: u64) -> Result<(u64, u64)> {
    let mask = (1u64 << PAGE_SHIFT) - 1;
    if length == 0 || offset & mask != 0 || length & mask != 0 {
        return Err(EINVAL);
    }
    let start = offset >> PAGE_SHIFT;
    let end = start.checked_add(length >> PAGE_SHIFT).ok_or(EINVAL)?;
    if end > npages {
        return Err(EINVAL);
    }
    Ok((start, end))
}

impl MoreramFile {
    /// State for a file being opened whose address space is `mapping`.
    pub(crate) fn new(mapping: *mut bindings::address_space) -> Result<Arc<Self>> {
        let file = Arc::pin_init(
            try_pin_init!(MoreramFile {
                mapping,
                opener: Process::current(),
                events <- new_mutex!(KVec::new()),
                event_cv <- new_poll_condvar!("moreram::event_cv"),
                signal: Atomic::new(0),
                client_id: NEXT_CLIENT.fetch_add(1, Relaxed),
                handles <- new_mutex!(Handles {
                    next: 1,
                    by_handle: RBTree::new(),
                    by_last_pgoff: RBTree::new(),
                    vram_bytes: 0,
                    system_bytes: 0,
                }),
            }),
            GFP_KERNEL,
        )?;
        FILES.lock().push(file.clone(), GFP_KERNEL)?;
        Ok(file)
    }

    /// The file is being released: forget it and every share it made.
    pub(crate) fn release(self: &Arc<Self>) {
        FILES.lock().retain(|f| !Arc::ptr_eq(f, self));
        // memdebug: allocations still mapped elsewhere outlive the file that made them.
        if crate::debugfs::memdebug() {
            let h = self.handles.lock();
            for (handle, entry) in h.by_handle.iter() {
                if entry.alloc.mappings() > 0 {
                    crate::debugfs::leak();
                    pr_warn!(
                        "moreram: memdebug: pid {} closed its file with handle {} ({} bytes) still mapped elsewhere\n",
                        entry.holder.nr(),
                        handle,
                        entry.alloc.size()
                    );
                }
            }
        }
        let me = Arc::as_ptr(self);
        let mut gone = KVec::new();
        {
            let mut shares = SHARES.lock();
            while let Some(i) = shares.iter().position(|s| core::ptr::eq(s.file, me)) {
                if let Ok(s) = shares.remove(i) {
                    // Allocations are dropped outside the lock.
                    let _ = gone.push(s, GFP_KERNEL);
                }
            }
        }
        drop(gone);
    }

    /// Adds `alloc`, held by `holder`, as a new handle; returns the handle.
    fn insert(&self, alloc: Arc<Allocation>, holder: Process) -> Result<u32> {
        // Reserve the tree nodes first: nothing can fail after the handle number is taken.
        let handle_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let pgoff_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut h = self.handles.lock();
        let handle = h.next;
        h.next = handle.checked_add(1).ok_or(EMFILE)?;
        if alloc.is_vram() {
            h.vram_bytes += alloc.size();
        } else {
            h.system_bytes += alloc.size();
        }
        let last = alloc.pgoff() + alloc.npages() - 1;
        h.by_last_pgoff.insert(pgoff_node.into_node(last, handle));
        h.by_handle
            .insert(handle_node.into_node(handle, Handle { alloc, holder }));
        Ok(handle)
    }

    /// The allocation behind `handle`, checking that the caller may see it.
    fn get(&self, handle: u32) -> Result<Arc<Allocation>> {
        let alloc = self
            .handles
            .lock()
            .by_handle
            .get(&handle)
            .ok_or(ENOENT)?
            .alloc
            .clone();
        let ok = alloc.may_read(&alloc.state(), &Process::current(), admin());
        if ok {
            Ok(alloc)
        } else {
            Err(EACCES)
        }
    }

    /// `MORERAM_IOC_ALLOC`, after the request has been read.
    pub(crate) fn alloc(&self, req: &mut uapi::Alloc) -> Result {
        validate_alloc(req)?;
        // The file (and so the inode's address space) outlives its allocations' use of it:
        // allocations live while the file is open or mapped, and mappings hold the file.
        let alloc = Allocation::new(req.size, req.flags, req.bank, self.mapping)?;
        let (tier, bank) = alloc.placement();
        let offset = alloc.pgoff() << PAGE_SHIFT;
        let holder = Process::current();
        let handle = match self.insert(alloc.clone(), holder.clone()) {
            Ok(h) => h,
            Err(e) => {
                alloc.unhold(&holder);
                return Err(e);
            }
        };
        req.handle = handle;
        req.tier = tier;
        req.bank_used = bank;
        req.mmap_offset = offset;
        Ok(())
    }

    /// `MORERAM_IOC_FREE`: forgets the handle. The memory goes when the last mapping does.
    pub(crate) fn free(self: &Arc<Self>, handle: u32) -> Result {
        let mut h = self.handles.lock();
        let entry = h.by_handle.get(&handle).ok_or(ENOENT)?;
        // Only the holder frees its handle, not a process that shares the file descriptor.
        if entry.holder != Process::current() {
            return Err(EPERM);
        }
        let entry = h.by_handle.remove(&handle).ok_or(ENOENT)?;
        let alloc = &entry.alloc;
        h.by_last_pgoff
            .remove(&(alloc.pgoff() + alloc.npages() - 1));
        if alloc.is_vram() {
            h.vram_bytes -= alloc.size();
        } else {
            h.system_bytes -= alloc.size();
        }
        drop(h);
        // Outside the lock: freeing VRAM takes the bank's locks.
        let me = Arc::as_ptr(self);
        let mut gone = KVec::new();
        {
            let mut shares = SHARES.lock();
            while let Some(i) = shares
                .iter()
                .position(|s| core::ptr::eq(s.file, me) && s.handle == handle)
            {
                if let Ok(s) = shares.remove(i) {
                    let _ = gone.push(s, GFP_KERNEL);
                }
            }
        }
        drop(gone);
        entry.alloc.unhold(&entry.holder);
        Ok(())
    }

    /// `MORERAM_IOC_QUERY`.
    pub(crate) fn query(&self, handle: u32) -> Result<uapi::Query> {
        Ok(self.get(handle)?.query(handle))
    }

    /// `MORERAM_IOC_TIER`.
    pub(crate) fn tier(&self) -> Result<uapi::Tier> {
        let (pool_vram, pool_system) = pool::sizes(&Process::current());
        let banks = bank::snapshot()?;
        let h = self.handles.lock();
        Ok(uapi::Tier {
            banks: u32::try_from(banks.len())?,
            vram_size: banks.iter().map(|b| b.size()).sum(),
            vram_free: banks.iter().map(|b| b.free()).sum(),
            system_used: SYSTEM_USED.load(kernel::sync::atomic::Relaxed),
            file_vram: h.vram_bytes,
            file_system: h.system_bytes,
            file_allocs: u32::try_from(h.by_handle.iter().count())?,
            pool_vram,
            pool_system,
            ..Default::default()
        })
    }

    /// The allocation containing page offset `pgoff`, if this file has one.
    pub(crate) fn find_by_pgoff(&self, pgoff: u64) -> Option<Arc<Allocation>> {
        let h = self.handles.lock();
        let cursor = h.by_last_pgoff.cursor_lower_bound(&pgoff)?;
        let (_, handle) = cursor.current();
        let alloc = &h.by_handle.get(handle)?.alloc;
        (alloc.pgoff() <= pgoff).then(|| alloc.clone())
    }

    /// `MORERAM_IOC_SHARE`.
    pub(crate) fn share(self: &Arc<Self>, req: &mut uapi::Share) -> Result {
        if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) || req.token != 0 {
            return Err(EINVAL);
        }
        if req.flags & !uapi::SHARE_NAMED != 0 {
            return Err(EINVAL);
        }
        let named = if req.flags & uapi::SHARE_NAMED != 0 {
            Some(Process::find(req.pid)?)
        } else if req.pid != 0 {
            return Err(EINVAL);
        } else {
            None
        };
        let alloc = self.get(req.handle)?;
        let me = Process::current();
        {
            let mut st = alloc.state();
            // Only an owner of some of its pages shares an allocation.
            if !st
                .rights
                .in_range(0, alloc.npages())
                .any(|(_, _, r)| r.owner.as_ref() == Some(&me))
            {
                return Err(EPERM);
            }
            if let Some(p) = &named {
                if !st.readers.contains(p) {
                    st.readers.push(p.clone(), GFP_KERNEL)?;
                }
            }
        }
        let mut token = 0;
        while token == 0 {
            // SAFETY: no preconditions.
            token = unsafe { crate::shim::moreram_random_u64() };
        }
        SHARES.lock().push(
            Share {
                token,
                alloc,
                named,
                euid: Kuid::current_euid(),
                file: Arc::as_ptr(self),
                handle: req.handle,
            },
            GFP_KERNEL,
        )?;
        req.token = token;
        Ok(())
    }

    /// `MORERAM_IOC_IMPORT`.
    pub(crate) fn import(&self, req: &mut uapi::Import) -> Result {
        let token = req.token;
        req.token = 0;
        if kernel::transmute::AsBytes::as_bytes(req)
            .iter()
            .any(|&b| b != 0)
        {
            return Err(EINVAL);
        }
        let me = Process::current();
        let alloc = {
            let shares = SHARES.lock();
            let s = shares.iter().find(|s| s.token == token).ok_or(ENOENT)?;
            let allowed = match &s.named {
                Some(p) => *p == me,
                None => Kuid::current_euid() == s.euid || admin(),
            };
            if !allowed {
                return Err(EACCES);
            }
            s.alloc.clone()
        };
        alloc.hold(&me)?;
        let handle = match self.insert(alloc.clone(), me.clone()) {
            Ok(h) => h,
            Err(e) => {
                alloc.unhold(&me);
                return Err(e);
            }
        };
        let (tier, bank) = alloc.placement();
        *req = uapi::Import {
            token,
            handle,
            tier,
            bank,
            size: alloc.size(),
            mmap_offset: alloc.pgoff() << PAGE_SHIFT,
            ..Default::default()
        };
        Ok(())
    }

    /// `MORERAM_IOC_CONTROL`.
    pub(crate) fn control(&self, req: &uapi::Control) -> Result {
        if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) {
            return Err(EINVAL);
        }
        let alloc = self.get(req.handle)?;
        let (start, end) = page_range(req.offset, req.length, alloc.npages())?;
        let me = Process::current();
        let target = match (req.cmd, req.pid) {
            (uapi::CTL_REVOKE_WRITE, 0) => None,
            (uapi::CTL_GRANT_WRITE | uapi::CTL_REVOKE_WRITE | uapi::CTL_GIVE, pid) => {
                Some(Process::find(pid)?)
            }
            _ => return Err(EINVAL),
        };
        let mut st = alloc.state();
        let owner_of_all = st.rights.all(start, end, |r| r.owner.as_ref() == Some(&me));
        match (req.cmd, target) {
            (uapi::CTL_GRANT_WRITE, Some(t)) => {
                if !owner_of_all {
                    return Err(EPERM);
                }
                // Room for one more writer on every run, then a change that cannot fail.
                st.rights.update(start, end, |r| {
                    if r.owner.as_ref() != Some(&t) && !r.writers.contains(&t) {
                        r.writers.push(t.clone(), GFP_KERNEL)?;
                    }
                    Ok(())
                })?;
                // A grantee must be able to map what it may write, whatever its user.
                if !st.readers.contains(&t) {
                    st.readers.push(t, GFP_KERNEL)?;
                }
            }
            (uapi::CTL_REVOKE_WRITE, t) => {
                // Any writer may drop its own right; everything else is the owner's call.
                let own_right = t.as_ref() == Some(&me)
                    && st.rights.all(start, end, |r| r.writers.contains(&me));
                if !owner_of_all && !own_right {
                    return Err(EPERM);
                }
                st.rights.update(start, end, |r| {
                    match &t {
                        Some(t) => r.writers.retain(|w| w != t),
                        None => r.writers.clear(),
                    }
                    Ok(())
                })?;
                // Before returning: the losers' next write faults and is refused.
                alloc.zap(start, end);
            }
            (uapi::CTL_GIVE, Some(t)) => {
                if !owner_of_all {
                    return Err(EPERM);
                }
                st.rights.update(start, end, |r| {
                    r.owner = Some(t.clone());
                    r.writers.clear();
                    Ok(())
                })?;
                if !st.readers.contains(&t) {
                    st.readers.push(t, GFP_KERNEL)?;
                }
                // The giver, and every former writer, loses write access now.
                alloc.zap(start, end);
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// `MORERAM_IOC_RIGHTS`.
    pub(crate) fn rights(&self, req: &mut uapi::Rights) -> Result {
        if req.reserved.iter().any(|&r| r != 0)
            || req.flags != 0
            || req.owner != 0
            || req.caller != 0
            || req.nwriters != 0
            || req.nreaders != 0
        {
            return Err(EINVAL);
        }
        let alloc = self.get(req.handle)?;
        let (start, end) = page_range(req.offset, req.length, alloc.npages())?;
        let me = Process::current();
        let (owner, writers, readers, mixed, caller) = {
            let st = alloc.state();
            let first = st.rights.at(start).ok_or(EINVAL)?;
            let owner = first.owner.as_ref().map_or(0, |p| p.nr());
            let mut writers = KVec::new();
            for w in first.writers.iter() {
                writers.push(w.nr(), GFP_KERNEL)?;
            }
            let mut readers = KVec::new();
            for r in st.readers.iter() {
                readers.push(r.nr(), GFP_KERNEL)?;
            }
            let mixed = st.rights.in_range(start, end).count() > 1;
            let mut caller = 0;
            if alloc.may_read(&st, &me, false) {
                caller |= uapi::RIGHT_READ;
            }
            if st.rights.all(start, end, |r| r.may_write(&me)) {
                caller |= uapi::RIGHT_WRITE | uapi::RIGHT_READ;
            }
            if st.rights.all(start, end, |r| r.owner.as_ref() == Some(&me)) {
                caller |= uapi::RIGHT_OWNER;
            }
            (owner, writers, readers, mixed, caller)
        };
        write_pids(req.writers_ptr, req.writers_cap, &writers)?;
        write_pids(req.readers_ptr, req.readers_cap, &readers)?;
        req.owner = owner;
        req.caller = caller;
        req.flags = if mixed { uapi::RIGHTS_MIXED } else { 0 };
        req.nwriters = u32::try_from(writers.len())?;
        req.nreaders = u32::try_from(readers.len())?;
        Ok(())
    }
}

impl MoreramFile {
    /// `MORERAM_IOC_RESERVE`.
    pub(crate) fn reserve(&self, req: &uapi::Reserve) -> Result {
        if req.reserved.iter().any(|&r| r != 0) || req.flags & !uapi::RESERVE_SYSTEM != 0 {
            return Err(EINVAL);
        }
        let mask = (1u64 << PAGE_SHIFT) - 1;
        if req.size == 0 || req.size & mask != 0 || req.size > uapi::MAX_ALLOC {
            return Err(EINVAL);
        }
        let pages = req.size >> PAGE_SHIFT;
        let me = Process::current();
        if req.flags & uapi::RESERVE_SYSTEM != 0 {
            if req.bank != 0 {
                return Err(EINVAL);
            }
            return pool::reserve_system(&me, usize::try_from(pages)?);
        }
        let banks = bank::snapshot()?;
        let b = banks.iter().find(|b| b.index() == req.bank).ok_or(ENODEV)?;
        let requests = pool::reserve_vram(b, &me, pages)?;
        deliver(&requests);
        Ok(())
    }

    /// `MORERAM_IOC_NOTIFY`.
    pub(crate) fn notify(&self, req: &uapi::Notify) -> Result {
        if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) {
            return Err(EINVAL);
        }
        if req.signal > 64 {
            return Err(EINVAL);
        }
        self.signal.store(req.signal, Relaxed);
        Ok(())
    }

    /// Whether an event waits to be read.
    pub(crate) fn has_events(&self) -> bool {
        !self.events.lock().is_empty()
    }

    /// The condition variable `poll` registers on.
    pub(crate) fn event_cv(&self) -> &PollCondVar {
        &self.event_cv
    }

    /// The oldest event; waits for one unless `nonblock`.
    pub(crate) fn next_event(&self, nonblock: bool) -> Result<uapi::Event> {
        let mut ev = self.events.lock();
        loop {
            if !ev.is_empty() {
                return ev.remove(0).map_err(|_| EINVAL);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            if self.event_cv.wait_interruptible(&mut ev) {
                return Err(ERESTARTSYS);
            }
        }
    }

    fn push_event(&self, e: uapi::Event) {
        let queued = self.events.lock().push(e, GFP_KERNEL).is_ok();
        if queued {
            self.event_cv.notify_all();
        }
    }
}

/// Memory of one region (a bank, or system pages) as DRM fdinfo counts it.
#[derive(Default, Clone, Copy)]
struct RegionUse {
    total: u64,
    shared: u64,
    resident: u64,
}

impl MoreramFile {
    /// DRM fdinfo (Documentation/gpu/drm-usage-stats.rst): one region per bank (`vram<N>`), plus
    /// `system`.
    pub(crate) fn show_fdinfo(&self, m: &kernel::seq_file::SeqFile) {
        let mut regions: KVec<(u32, RegionUse)> = KVec::new();
        let mut system = RegionUse::default();
        {
            let h = self.handles.lock();
            for entry in h.by_handle.values() {
                let a = &entry.alloc;
                let shared = a.holders() > 1;
                let u = RegionUse {
                    total: a.size(),
                    shared: if shared { a.size() } else { 0 },
                    resident: a.resident(),
                };
                let slot = match a.placement() {
                    (uapi::TIER_VRAM, bank) => match regions.iter().position(|(b, _)| *b == bank) {
                        Some(i) => &mut regions[i].1,
                        None => {
                            if regions
                                .push((bank, RegionUse::default()), GFP_KERNEL)
                                .is_err()
                            {
                                continue;
                            }
                            let last = regions.len() - 1;
                            &mut regions[last].1
                        }
                    },
                    _ => &mut system,
                };
                slot.total += u.total;
                slot.shared += u.shared;
                slot.resident += u.resident;
            }
        }
        // Every bound bank is a region, used or not.
        if let Ok(banks) = bank::snapshot() {
            for b in banks.iter() {
                if !regions.iter().any(|(i, _)| *i == b.index()) {
                    let _ = regions.push((b.index(), RegionUse::default()), GFP_KERNEL);
                }
            }
        }
        regions.sort_unstable_by_key(|(b, _)| *b);
        kernel::seq_print!(m, "drm-driver:\tmoreram\n");
        kernel::seq_print!(m, "drm-client-id:\t{}\n", self.client_id);
        let kib = |v: u64| v >> 10;
        for (b, u) in regions.iter() {
            kernel::seq_print!(m, "drm-total-vram{}:\t{} KiB\n", b, kib(u.total));
            kernel::seq_print!(m, "drm-shared-vram{}:\t{} KiB\n", b, kib(u.shared));
            kernel::seq_print!(m, "drm-resident-vram{}:\t{} KiB\n", b, kib(u.resident));
        }
        kernel::seq_print!(m, "drm-total-system:\t{} KiB\n", kib(system.total));
        kernel::seq_print!(m, "drm-shared-system:\t{} KiB\n", kib(system.shared));
        kernel::seq_print!(m, "drm-resident-system:\t{} KiB\n", kib(system.resident));
        let (pv, ps) = pool::sizes(&self.opener);
        kernel::seq_print!(m, "moreram-pool-vram:\t{} KiB\n", kib(pv));
        kernel::seq_print!(m, "moreram-pool-system:\t{} KiB\n", kib(ps));
    }
}

/// `moreram/processes` in debugfs: every open file, its handles, their rights and mappings.
pub(crate) fn debug_print(m: &kernel::seq_file::SeqFile) {
    let files = FILES.lock();
    for f in files.iter() {
        kernel::seq_print!(m, "file {} opened by pid {}\n", f.client_id, f.opener.nr());
        let h = f.handles.lock();
        for (handle, entry) in h.by_handle.iter() {
            let a = &entry.alloc;
            let (tier, bank) = a.placement();
            let place = if tier == uapi::TIER_VRAM {
                "vram bank"
            } else {
                "system"
            };
            let bank = if tier == uapi::TIER_VRAM {
                i64::from(bank)
            } else {
                -1
            };
            let (offset, mappings, holders) = (a.pgoff() << PAGE_SHIFT, a.mappings(), a.holders());
            kernel::seq_print!(
                m,
                "  handle {} held by pid {}: {} bytes {} {} offset {:#x} mappings {} holders {}\n",
                handle,
                entry.holder.nr(),
                a.size(),
                place,
                bank,
                offset,
                mappings,
                holders
            );
            let st = a.state();
            for (s, e, r) in st.rights.in_range(0, a.npages()) {
                kernel::seq_print!(
                    m,
                    "    pages {}-{}: owner {}",
                    s,
                    e - 1,
                    r.owner.as_ref().map_or(0, |p| p.nr())
                );
                for w in r.writers.iter() {
                    kernel::seq_print!(m, " writer {}", w.nr());
                }
                kernel::seq_print!(m, "\n");
            }
            for r in st.readers.iter() {
                kernel::seq_print!(m, "    shared with pid {}\n", r.nr());
            }
        }
    }
}

/// Bytes of bank `bank` that `p` owns now.
pub(crate) fn owned_in(bank: u32, p: &Process) -> u64 {
    let Ok(allocs) = allocations(|a| a.placement() == (uapi::TIER_VRAM, bank)) else {
        return 0;
    };
    let mut bytes = 0;
    for a in allocs.iter() {
        let st = a.state();
        for (s, e, r) in st.rights.in_range(0, a.npages()) {
            if r.owner.as_ref() == Some(p) {
                bytes += (e - s) << PAGE_SHIFT;
            }
        }
    }
    bytes
}

/// Processes owning pages of bank `bank` now.
pub(crate) fn processes_in(bank: u32) -> usize {
    let Ok(allocs) = allocations(|a| a.placement() == (uapi::TIER_VRAM, bank)) else {
        return 0;
    };
    let mut owners: KVec<Process> = KVec::new();
    for a in allocs.iter() {
        let st = a.state();
        for (_, _, r) in st.rights.in_range(0, a.npages()) {
            if let Some(o) = &r.owner {
                if !owners.contains(o) && owners.push(o.clone(), GFP_KERNEL).is_err() {
                    return owners.len();
                }
            }
        }
    }
    owners.len()
}

/// Delivers scavenge requests to every open file of each process asked, and its signal.
pub(crate) fn deliver(requests: &[pool::Request]) {
    if requests.is_empty() {
        return;
    }
    let files = FILES.lock();
    for r in requests {
        for f in files.iter().filter(|f| f.opener == r.process) {
            f.push_event(uapi::Event {
                type_: uapi::EVENT_SCAVENGE,
                bank: r.bank,
                bytes: r.bytes,
                deadline_ns: r.deadline_ns as u64,
                ..Default::default()
            });
            let sig = f.signal.load(Relaxed);
            if sig != 0 {
                // SAFETY: `as_ptr` is a valid `struct pid`; a signal to a gone process is lost.
                unsafe { bindings::kill_pid(r.process.as_ptr(), sig as i32, 1) };
            }
        }
    }
}

/// `MORERAM_IOC_SCAVENGE`.
pub(crate) fn scavenge(req: &mut uapi::Scavenge) -> Result {
    if kernel::transmute::AsBytes::as_bytes(req)
        .iter()
        .any(|&b| b != 0)
    {
        return Err(EINVAL);
    }
    let (vram, system) = pool::scavenge(&Process::current());
    req.vram = vram;
    req.system = system;
    Ok(())
}

/// Writes up to `cap` pids to the user array at `ptr`.
fn write_pids(ptr: u64, cap: u32, pids: &[i32]) -> Result {
    let n = pids.len().min(usize::try_from(cap)?);
    if n == 0 {
        return Ok(());
    }
    let addr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let mut w = UserSlice::new(UserPtr::from_addr(addr), n * core::mem::size_of::<i32>()).writer();
    for p in &pids[..n] {
        w.write(p)?;
    }
    Ok(())
}

/// Every allocation of every open file that `keep` accepts, once, whatever the number of files
/// holding it.
fn allocations(keep: impl Fn(&Allocation) -> bool) -> Result<KVec<Arc<Allocation>>> {
    let mut allocs: KVec<Arc<Allocation>> = KVec::new();
    let files = FILES.lock();
    for f in files.iter() {
        let h = f.handles.lock();
        for entry in h.by_handle.values() {
            if keep(&entry.alloc) && !allocs.iter().any(|a| Arc::ptr_eq(a, &entry.alloc)) {
                allocs.push(entry.alloc.clone(), GFP_KERNEL)?;
            }
        }
    }
    Ok(allocs)
}

/// `MORERAM_IOC_PROCS`: bytes owned per process, over every allocation of every open file.
pub(crate) fn procs() -> Result<KVec<uapi::ProcInfo>> {
    let allocs = allocations(|_| true)?;
    let mut out: KVec<(Process, u64, u64)> = KVec::new();
    for a in allocs.iter() {
        let st = a.state();
        for (s, e, r) in st.rights.in_range(0, a.npages()) {
            let Some(owner) = &r.owner else { continue };
            let bytes = (e - s) << PAGE_SHIFT;
            let i = match out.iter().position(|(p, _, _)| p == owner) {
                Some(i) => i,
                None => {
                    out.push((owner.clone(), 0, 0), GFP_KERNEL)?;
                    out.len() - 1
                }
            };
            if a.is_vram() {
                out[i].1 += bytes;
            } else {
                out[i].2 += bytes;
            }
        }
    }
    let mut infos = KVec::with_capacity(out.len(), GFP_KERNEL)?;
    for (p, vram, system) in out.iter() {
        let pid = p.nr();
        // Processes outside the caller's pid namespace are not shown.
        if pid != 0 {
            infos.push(
                uapi::ProcInfo {
                    pid,
                    vram: *vram,
                    system: *system,
                    ..Default::default()
                },
                GFP_KERNEL,
            )?;
        }
    }
    infos.sort_unstable_by_key(|i| i.pid);
    Ok(infos)
}

/// Checks an allocation request against the rules of the ABI.
fn validate_alloc(req: &uapi::Alloc) -> Result {
    if req.reserved0 != 0
        || req.reserved.iter().any(|&r| r != 0)
        || req.handle != 0
        || req.tier != 0
        || req.bank_used != 0
        || req.mmap_offset != 0
    {
        return Err(EINVAL);
    }
    if req.flags & !uapi::ALLOC_FLAGS_ALL != 0 {
        return Err(EINVAL);
    }
    let system = req.flags & uapi::ALLOC_SYSTEM_ONLY != 0;
    let vram = req.flags & (uapi::ALLOC_VRAM_ONLY | uapi::ALLOC_BANK | uapi::ALLOC_CONTIGUOUS) != 0;
    if system && vram {
        return Err(EINVAL);
    }
    if req.flags & uapi::ALLOC_BANK == 0 && req.bank != 0 {
        return Err(EINVAL);
    }
    let page_mask = (1u64 << PAGE_SHIFT) - 1;
    if req.size == 0 || req.size & page_mask != 0 || req.size > uapi::MAX_ALLOC {
        return Err(EINVAL);
    }
    Ok(())
}
#[kunit_tests(moreram_alloc_request)]
mod tests {
    use super::validate_alloc;
    use crate::uapi::{self, Alloc};
    use kernel::prelude::*;

    const OK: Alloc = Alloc {
        size: 4096,
        flags: 0,
        bank: 0,
        handle: 0,
        tier: 0,
        bank_used: 0,
        reserved0: 0,
        mmap_offset: 0,
        reserved: [0; 4],
    };

    #[test]
    fn accepts_valid_requests() {
        assert!(validate_alloc(&OK).is_ok());
        let bank = Alloc {
            flags: uapi::ALLOC_BANK | uapi::ALLOC_CONTIGUOUS,
            bank: 3,
            ..OK
        };
        assert!(validate_alloc(&bank).is_ok());
        let max = Alloc {
            size: uapi::MAX_ALLOC,
            ..OK
        };
        assert!(validate_alloc(&max).is_ok());
    }

    #[test]
    fn rejects_bad_sizes() {
        for size in [0, 1, 4095, 4097, uapi::MAX_ALLOC + 4096, !4095] {
            assert_eq!(validate_alloc(&Alloc { size, ..OK }), Err(EINVAL));
        }
    }

    #[test]
    fn rejects_bad_flags_and_fields() {
        let bad = [
            Alloc {
                flags: 1 << 4,
                ..OK
            },
            Alloc {
                flags: uapi::ALLOC_SYSTEM_ONLY | uapi::ALLOC_VRAM_ONLY,
                ..OK
            },
            Alloc {
                flags: uapi::ALLOC_SYSTEM_ONLY | uapi::ALLOC_BANK,
                ..OK
            },
            Alloc { bank: 1, ..OK },
            Alloc { reserved0: 1, ..OK },
            Alloc {
                reserved: [0, 1, 0, 0],
                ..OK
            },
            Alloc { handle: 1, ..OK },
            Alloc { tier: 1, ..OK },
            Alloc { bank_used: 1, ..OK },
            Alloc {
                mmap_offset: 4096,
                ..OK
            },
        ];
        for req in bad.iter() {
            assert_eq!(validate_alloc(req), Err(EINVAL));
        }
    }
}
