// SPDX-License-Identifier: GPL-2.0

//! The front: the tier as programs see it through `/dev/moreram`. Open files and their handles,
//! the ioctls, scavenge events, shares, fdinfo, and [`Tier`], the object that owns every
//! registry the module has.
//!
//! # Lock order
//!
//! Locks are taken only in this order (a lock may be skipped, never taken out of order):
//!
//! 1. the mm's locks, `mmap_lock` or a VMA lock (held by the kernel in `mmap` and page faults,
//!    and around `vm_ops.close`);
//! 2. [`Tier::files`], the open files;
//! 3. [`file::OpenFile`]'s `handles`;
//! 4. [`Tier::shares`], the share tokens;
//! 5. an allocation's state (`memory`);
//! 6. the pools (`policy::pool`; the shrinker only try-locks them);
//! 7. the bank registry and a bank's locks (`bank`), then the mm's `i_mmap_rwsem` and page-table
//!    locks, then a buddy allocator's own lock;
//! 8. [`limits::Users`]'s table, a leaf: nothing is taken under it, and a handle or share that
//!    drops under any of the above takes it.
//!
//! Handles and allocations are dropped outside of 3 and 4 (freeing VRAM takes the bank's locks);
//! a share drops under 4 only while the handle it was made from still holds its allocation. An
//! open file's `events` is taken with no other lock held (scavenge requests are delivered once
//! the files to deliver them to are listed).
//!
//! The global locks, 2 and 4, are held for one lookup or change at a time, never for work that
//! grows with what a file holds: the files are listed under 2 and their handles read after it is
//! released; a file's tokens are dropped from 4 a batch at a time.

pub(crate) mod fdinfo;
pub(crate) mod file;
mod ioctl;
pub(crate) mod limits;
pub(crate) mod misc;
mod share;

use kernel::{
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    rbtree::RBTree,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

use crate::{
    bank::{Bank, Banks, WatermarkDefaults},
    memdebug::MemDebug,
    memory::{Allocation, Space},
    policy::{
        placement::Sources,
        pool::{Pools, Request},
    },
    process::Process,
    uapi,
};
use file::OpenFile;
use limits::{Limits, Users};
use share::Share;

/// The tier: the banks, the pools, the allocations' space, and the open files and shares of
/// `/dev/moreram`. One per module; the misc device, the PCI driver and debugfs each hold it.
#[pin_data]
pub(crate) struct Tier {
    #[pin]
    pub(crate) banks: Banks,
    pub(crate) pools: Arc<Pools>,
    pub(crate) space: Arc<Space>,
    pub(crate) memdebug: Arc<MemDebug>,
    /// What each user holds, and the limits.
    pub(crate) users: Arc<Users>,
    /// Every open file. See the module documentation for the lock order.
    #[pin]
    files: Mutex<KVec<Arc<OpenFile>>>,
    /// Every live share, by token. Taken after an open file's handles, before any allocation's
    /// state.
    #[pin]
    shares: Mutex<RBTree<u64, Share>>,
    /// The next `drm-client-id`: unique among open files for the module's lifetime.
    next_client: Atomic<u64>,
    /// What new banks start with.
    pub(crate) watermarks: WatermarkDefaults,
}

impl Tier {
    pub(crate) fn new(watermarks: WatermarkDefaults, limits: Limits) -> Result<Arc<Self>> {
        let users = Users::new(limits)?;
        let pools = Arc::pin_init(Pools::new(), GFP_KERNEL)?;
        let space = Space::new(pools.clone())?;
        let memdebug = Arc::new(MemDebug::new(), GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Tier {
                banks <- Banks::new(),
                pools,
                space,
                memdebug,
                users,
                files <- new_mutex!(KVec::new()),
                shares <- new_mutex!(RBTree::new()),
                next_client: Atomic::new(1),
                watermarks,
            }),
            GFP_KERNEL,
        )
    }

    /// What allocations draw on.
    fn sources(&self) -> Sources<'_> {
        Sources {
            banks: &self.banks,
            pools: &self.pools,
            space: &self.space,
            memdebug: &self.memdebug,
        }
    }

    /// Takes a bank out of the tier (its device unbinds): no new allocation finds it, every user
    /// mapping of it goes, and so do the reservations of it.
    pub(crate) fn remove_bank(&self, bank: &Arc<Bank>) {
        self.banks.remove(bank);
        bank.revoke();
        self.pools.forget_bank(bank.index());
    }

    /// A bank as `MORERAM_IOC_BANKS` reports it.
    pub(crate) fn bank_info(&self, b: &Bank) -> uapi::moreram_bank_info {
        let id = b.identity();
        let w = b.watermarks();
        let (free, largest_free, pooled) = self.pools.usage(b);
        let mut flags = 0;
        if id.bar.prefetchable {
            flags |= uapi::MORERAM_BANK_PREFETCHABLE;
        }
        if id.bar.is_64bit {
            flags |= uapi::MORERAM_BANK_64BIT;
        }
        uapi::moreram_bank_info {
            index: b.index(),
            flags,
            size: b.size(),
            free,
            bar_start: id.bar.start,
            bar_len: id.bar.len,
            pci_domain: id.location.domain,
            pci_bus: id.location.bus,
            pci_dev: id.location.devfn >> 3,
            pci_func: id.location.devfn & 7,
            bar: id.bar.bar as u8,
            vendor: id.vendor,
            device: id.device,
            largest_free,
            pooled,
            low_watermark: w.low << PAGE_SHIFT,
            min_watermark: w.min << PAGE_SHIFT,
            ..Default::default()
        }
    }

    /// Delivers scavenge requests to every open file of each process asked, and its signal.
    fn deliver(&self, requests: &[Request]) {
        for r in requests {
            // Should there be no memory to list the files, the process is reclaimed at its
            // deadline all the same.
            let Ok(files) = self.files(|f| f.opener() == &r.process) else {
                continue;
            };
            for f in files.iter() {
                f.push_event(r);
            }
        }
    }

    /// The open files `keep` accepts. The registry is locked only while they are listed.
    fn files(&self, keep: impl Fn(&OpenFile) -> bool) -> Result<KVVec<Arc<OpenFile>>> {
        let mut out = KVVec::new();
        for f in self.files.lock().iter().filter(|f| keep(f)) {
            out.push(f.clone(), GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Every allocation of every open file that `keep` accepts, once, whatever the number of
    /// files and handles holding it; by address. No lock of the tier is held while the files'
    /// handles are read. One vector, sorted and deduplicated at the end: no allocation per
    /// entry (a tree node each made `MORERAM_IOC_PROCS` cost more than all its other work).
    fn allocations(&self, keep: impl Fn(&Allocation) -> bool) -> Result<KVVec<Arc<Allocation>>> {
        let mut allocs = KVVec::new();
        for f in self.files(|_| true)?.iter() {
            f.for_each_allocation(|a| {
                if keep(a) {
                    allocs.push(a.clone(), GFP_KERNEL)?;
                }
                Ok(())
            })?;
        }
        allocs.sort_unstable_by_key(|a| Arc::as_ptr(a) as usize);
        let mut last = core::ptr::null();
        allocs.retain(|a| {
            let new = Arc::as_ptr(a) != last;
            last = Arc::as_ptr(a);
            new
        });
        Ok(allocs)
    }

    /// Bytes of bank `bank` that `p` owns now.
    pub(crate) fn owned_in(&self, bank: u32, p: &Process) -> u64 {
        let Ok(allocs) = self.allocations(|a| a.tier() == uapi::Tier::Vram(bank)) else {
            return 0;
        };
        let mut bytes = 0;
        for a in allocs.iter() {
            let st = a.state();
            for (s, e, r) in st.rights.in_range(0, a.npages()) {
                if r.owned_by(p) {
                    bytes += (e - s) << PAGE_SHIFT;
                }
            }
        }
        bytes
    }

    /// Processes owning pages of bank `bank` now.
    pub(crate) fn processes_in(&self, bank: u32) -> usize {
        let Ok(allocs) = self.allocations(|a| a.tier() == uapi::Tier::Vram(bank)) else {
            return 0;
        };
        let mut owners = RBTree::new();
        let mut n = 0;
        for a in allocs.iter() {
            let st = a.state();
            for (_, _, r) in st.rights.in_range(0, a.npages()) {
                if let Some(o) = &r.owner {
                    if owners.get(o).is_none() {
                        if owners
                            .try_create_and_insert(o.clone(), (), GFP_KERNEL)
                            .is_err()
                        {
                            return n;
                        }
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// `MORERAM_IOC_PROCS`: bytes owned per process, over every allocation of every open file.
    fn procs(&self) -> Result<KVVec<uapi::moreram_proc_info>> {
        let allocs = self.allocations(|_| true)?;
        // VRAM and system bytes, by owner.
        let mut owned: RBTree<Process, (u64, u64)> = RBTree::new();
        for a in allocs.iter() {
            let st = a.state();
            for (s, e, r) in st.rights.in_range(0, a.npages()) {
                let Some(owner) = &r.owner else { continue };
                let bytes = (e - s) << PAGE_SHIFT;
                let add = match a.tier() {
                    uapi::Tier::Vram(_) => (bytes, 0),
                    uapi::Tier::System => (0, bytes),
                };
                match owned.get_mut(owner) {
                    Some(o) => {
                        o.0 += add.0;
                        o.1 += add.1;
                    }
                    None => {
                        owned.try_create_and_insert(owner.clone(), add, GFP_KERNEL)?;
                    }
                }
            }
        }
        let mut infos = KVVec::new();
        for (p, (vram, system)) in owned.iter() {
            // Processes outside the caller's pid namespace are not shown, nor those that are
            // gone (pages whose owner's handle outlives it, in another's file): their number
            // may already name another process, which would then be listed twice.
            let pid = p.nr();
            if pid != 0 {
                infos.push(
                    uapi::moreram_proc_info {
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

    /// Every open file. The registry is locked only while they are listed: opens and closes
    /// do not wait for what the caller does with them.
    pub(crate) fn open_files(&self) -> Result<KVVec<Arc<OpenFile>>> {
        self.files(|_| true)
    }

    fn add_file(&self, f: Arc<OpenFile>) -> Result {
        self.files.lock().push(f, GFP_KERNEL)?;
        Ok(())
    }

    fn remove_file(&self, f: &Arc<OpenFile>) {
        self.files.lock().retain(|x| !Arc::ptr_eq(x, f));
    }

    fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Relaxed)
    }
}
