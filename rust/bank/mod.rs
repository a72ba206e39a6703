// SPDX-License-Identifier: GPL-2.0

//! Banks: the memory BARs of bound devices, each managed by a GPU buddy allocator.
//!
//! A bank is a BAR's pages and its buddy allocator: it hands out blocks, zeroes them, poisons and
//! checks them under memdebug, and revokes every user mapping of them when its device unbinds.
//! It knows nothing of processes, files or pools: the layers above ask it for blocks and read its
//! numbers.
//!
//! The BAR's CPU mapping is device-managed ([`Devres`]): it is revoked and unmapped at unbind even
//! if something still holds an [`Arc<Bank>`].
//!
//! # Locks
//!
//! [`Banks::list`], then [`Bank::revoked`], then [`Bank::state`], then the mm's `i_mmap_rwsem`
//! and page-table locks (inside `unmap_mapping_range`), then the buddy allocator's own lock.

mod blocks;
pub(crate) mod layout;
pub(crate) mod mmio;

use kernel::{
    bindings,
    bitmap::BitmapVec,
    devres::Devres,
    gpu::buddy::{
        GpuBuddy, GpuBuddyAllocFlag, GpuBuddyAllocFlags, GpuBuddyAllocMode, GpuBuddyParams,
    },
    new_mutex,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    ptr::Alignment,
    rbtree::RBTree,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

use crate::memdebug::{MemDebug, POISON};
use layout::{free_histogram, largest_free_block, mark};

pub(crate) use blocks::VramBlocks;
pub(crate) use mmio::Mmio;

/// Where a device sits on the PCI bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PciLocation {
    pub(crate) domain: u32,
    pub(crate) bus: u8,
    pub(crate) devfn: u8,
}

/// The memory BAR a bank is made of: which one, where, and how it may be mapped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BarInfo {
    pub(crate) bar: u32,
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) prefetchable: bool,
    pub(crate) is_64bit: bool,
}

/// What a bank is: the device, where it is, and its BAR.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub(crate) vendor: u16,
    pub(crate) device: u16,
    pub(crate) location: PciLocation,
    pub(crate) bar: BarInfo,
}

/// When a bank runs low: below `low` pages available, pool holders are asked to give memory
/// back within `deadline_ms`; below `min`, pools are reclaimed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Watermarks {
    pub(crate) low: u64,
    pub(crate) min: u64,
    pub(crate) deadline_ms: u64,
}

/// The watermarks a new bank starts with: percentages of its size, and the deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatermarkDefaults {
    pub(crate) low_percent: u64,
    pub(crate) min_percent: u64,
    pub(crate) deadline_ms: u64,
}

impl WatermarkDefaults {
    /// The watermarks of a bank of `npages` pages.
    pub(crate) fn of(&self, npages: u64) -> Watermarks {
        Watermarks {
            low: npages * self.low_percent / 100,
            min: npages * self.min_percent / 100,
            deadline_ms: self.deadline_ms,
        }
    }
}

/// Where the user mappings of a VRAM allocation live: what [`Bank::revoke`] must zap.
#[derive(Clone, Copy)]
pub(crate) struct ZapRange {
    /// The address space the allocation is mapped through.
    pub(crate) mapping: *mut bindings::address_space,
    /// First page of the allocation in that address space, and its length in pages.
    pub(crate) pgoff: u64,
    pub(crate) npages: u64,
}

// SAFETY: the pointer is only passed to `unmap_mapping_range`, which may run on any thread.
unsafe impl Send for ZapRange {}

impl ZapRange {
    /// Zaps every user mapping of pages `[start, end)` of the range, in every process.
    pub(crate) fn zap(&self, start: u64, end: u64) {
        // SAFETY: whoever made the range guarantees that `mapping` is valid while it lives.
        unsafe {
            bindings::unmap_mapping_range(
                self.mapping,
                ((self.pgoff + start) << PAGE_SHIFT) as bindings::loff_t,
                ((end - start) << PAGE_SHIFT) as bindings::loff_t,
                1,
            )
        };
    }
}

/// The allocation state of a bank, under [`Bank::state`].
struct BankState {
    /// One bit per page: set while allocated. Mirrors the buddy allocator, which does not say
    /// where its free blocks are.
    used: BitmapVec,
    /// Where live VRAM allocations of this bank are mapped, by a key of their own (copies made
    /// at fork share their original's offsets).
    live: RBTree<u64, ZapRange>,
    /// The key of the next allocation in `live`.
    next_key: u64,
    /// Pages filled with [`POISON`] when freed under memdebug, to check on reuse.
    poisoned: BitmapVec,
}

/// One bank of the tier.
#[pin_data]
pub(crate) struct Bank {
    index: u32,
    identity: Identity,
    buddy: GpuBuddy,
    /// The BAR's write-combined mapping and region; released when the device unbinds, whoever
    /// still holds the bank.
    io: Devres<Mmio>,
    memdebug: Arc<MemDebug>,
    /// Allocation bookkeeping: the bitmap, the live ranges, the poisoned pages. Held across every
    /// buddy allocation and free, and around the zaps of a revocation. Taken after `revoked`.
    #[pin]
    state: Mutex<BankState>,
    /// `true` once the device is unbinding: no page of this bank may be mapped any more. Faults
    /// hold it while they insert a page, so that [`Bank::revoke`] cannot miss one. Taken after an
    /// allocation's state and the registry, before `state`.
    #[pin]
    revoked: Mutex<bool>,
    /// [`Watermarks`], each set on its own (sysfs).
    low: Atomic<u64>,
    min: Atomic<u64>,
    deadline_ms: Atomic<u64>,
    /// The device, to find the bank from its sysfs attributes; compared, never dereferenced.
    dev: *mut bindings::device,
}

// SAFETY: `dev` is only compared; everything else is `Send`/`Sync` or under a lock.
unsafe impl Send for Bank {}
// SAFETY: as above.
unsafe impl Sync for Bank {}

/// The longest scavenge deadline the watermark knobs accept, in milliseconds.
const MAX_DEADLINE_MS: u64 = 600_000;

impl Bank {
    /// A bank over `io`, the mapping of the BAR `identity` describes, of device `dev`.
    pub(crate) fn new(
        index: u32,
        identity: Identity,
        io: Devres<Mmio>,
        dev: *mut bindings::device,
        memdebug: Arc<MemDebug>,
        watermarks: impl FnOnce(u64) -> Watermarks,
    ) -> Result<Arc<Self>> {
        let buddy = GpuBuddy::new(GpuBuddyParams {
            base_offset: 0,
            size: identity.bar.len,
            chunk_size: Alignment::new::<PAGE_SIZE>(),
        })?;
        let npages = usize::try_from(buddy.size() >> PAGE_SHIFT)?;
        let used = BitmapVec::new(npages, GFP_KERNEL)?;
        let poisoned = BitmapVec::new(npages, GFP_KERNEL)?;
        let w = watermarks(npages as u64);
        Arc::pin_init(
            try_pin_init!(Bank {
                index,
                identity,
                buddy,
                io,
                memdebug,
                state <- new_mutex!(BankState {
                    used,
                    live: RBTree::new(),
                    next_key: 0,
                    poisoned,
                }),
                revoked <- new_mutex!(false),
                low: Atomic::new(w.low),
                min: Atomic::new(w.min),
                deadline_ms: Atomic::new(w.deadline_ms),
                dev,
            }),
            GFP_KERNEL,
        )
    }

    /// The bank's number, stable while the device stays bound.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Bytes the bank manages.
    pub(crate) fn size(&self) -> u64 {
        self.buddy.size()
    }

    /// Bytes not allocated. Read under the state lock: a partial release frees whole buddy
    /// allocations and takes their kept parts again under it, so the buddy's count is only exact
    /// outside (a reservation admitted on a count read midway reserved bytes nobody had freed).
    pub(crate) fn free(&self) -> u64 {
        let _st = self.state.lock();
        self.buddy.avail()
    }

    /// Bytes in the largest free block: the largest contiguous allocation that can succeed now.
    pub(crate) fn largest_free(&self) -> u64 {
        largest_free_block(&self.state.lock().used) << PAGE_SHIFT
    }

    /// Bytes free and bytes in the largest free block, read together: the largest block is never
    /// more than the free bytes.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let st = self.state.lock();
        (
            self.buddy.avail(),
            largest_free_block(&st.used) << PAGE_SHIFT,
        )
    }

    /// Free blocks as the buddy allocator holds them: the count of blocks of
    /// `PAGE_SIZE << order` bytes, by order; and the largest free block in bytes.
    pub(crate) fn free_blocks(&self) -> ([u64; 64], u64) {
        let st = self.state.lock();
        (
            free_histogram(&st.used),
            largest_free_block(&st.used) << PAGE_SHIFT,
        )
    }

    /// Whether `dev` is the bank's device.
    pub(crate) fn is_device(&self, dev: *const bindings::device) -> bool {
        core::ptr::eq(self.dev, dev)
    }

    /// Watermarks in pages, and the scavenge deadline.
    pub(crate) fn watermarks(&self) -> Watermarks {
        Watermarks {
            low: self.low.load(Relaxed),
            min: self.min.load(Relaxed),
            deadline_ms: self.deadline_ms.load(Relaxed),
        }
    }

    /// Sets the low watermark, in bytes rounded down to pages: at most the bank's size and at
    /// least the min watermark.
    pub(crate) fn set_low_watermark(&self, bytes: u64) -> Result {
        let pages = bytes >> PAGE_SHIFT;
        if pages > self.size() >> PAGE_SHIFT || pages < self.min.load(Relaxed) {
            return Err(EINVAL);
        }
        self.low.store(pages, Relaxed);
        Ok(())
    }

    /// Sets the min watermark, in bytes rounded down to pages: at most the low watermark.
    pub(crate) fn set_min_watermark(&self, bytes: u64) -> Result {
        let pages = bytes >> PAGE_SHIFT;
        if pages > self.low.load(Relaxed) {
            return Err(EINVAL);
        }
        self.min.store(pages, Relaxed);
        Ok(())
    }

    /// Sets the scavenge deadline, 1 to 600000 milliseconds.
    pub(crate) fn set_deadline_ms(&self, ms: u64) -> Result {
        if !(1..=MAX_DEADLINE_MS).contains(&ms) {
            return Err(EINVAL);
        }
        self.deadline_ms.store(ms, Relaxed);
        Ok(())
    }

    /// Writes `value` at `offset` behind everybody's back (debugfs `poke`, to test memdebug).
    pub(crate) fn poke(&self, offset: u64, value: u64) -> Result {
        let io = self.io.try_access().ok_or(ENODEV)?;
        io.write64(usize::try_from(offset)?, value)
    }

    /// Allocates `size` bytes (whole pages) of the bank's memory, not zeroed yet (see
    /// [`VramBlocks::zero`]), contiguous if asked. `zap` says where user mappings of them will
    /// be, so that [`Bank::revoke`] can take them away; the caller guarantees that its address
    /// space stays valid for as long as the returned blocks live.
    pub(crate) fn alloc(
        self: &Arc<Self>,
        size: u64,
        contiguous: bool,
        zap: ZapRange,
    ) -> Result<VramBlocks> {
        if *self.revoked.lock() {
            return Err(ENODEV);
        }
        let flags = if contiguous {
            GpuBuddyAllocFlags::from(GpuBuddyAllocFlag::Contiguous)
        } else {
            GpuBuddyAllocFlags::default()
        };
        let pieces = KVec::with_capacity(1, GFP_KERNEL_ACCOUNT)?;
        let mut st = self.state.lock();
        let key = st.next_key;
        st.live
            .try_create_and_insert(key, zap, GFP_KERNEL_ACCOUNT)?;
        st.next_key += 1;
        let blocks = KBox::pin_init(
            self.buddy.alloc_blocks(
                GpuBuddyAllocMode::Simple,
                size,
                Alignment::new::<PAGE_SIZE>(),
                flags,
            ),
            GFP_KERNEL_ACCOUNT,
        );
        let blocks = match blocks {
            Ok(blocks) => blocks,
            Err(e) => {
                st.live.remove(&key);
                return Err(e);
            }
        };
        for b in blocks.iter() {
            mark(&mut st.used, b.offset(), b.size(), true);
            self.check_poison(&mut st, b.offset(), b.size());
        }
        drop(st);
        VramBlocks::new(self.clone(), pieces, blocks, key)
    }

    /// Whether the bank's device went away ([`Bank::revoke`]).
    pub(crate) fn is_revoked(&self) -> bool {
        *self.revoked.lock()
    }

    /// Makes every page of the bank unmappable and zaps every user mapping of it. Called when the
    /// device unbinds; later faults on its pages get `SIGBUS`.
    pub(crate) fn revoke(&self) {
        // Faults insert pages while holding `revoked`: once it is set, none can be in flight, and
        // the zap below removes every page inserted before.
        *self.revoked.lock() = true;
        let st = self.state.lock();
        for z in st.live.values() {
            // `mapping` is valid while the allocation lives (see `alloc`), and it is in `live`
            // until it is dropped, which needs `state`, held here.
            z.zap(0, z.npages);
        }
    }

    /// Under memdebug: fills the bank bytes `[offset, offset + len)` with the poison and
    /// remembers them, to check when they are handed out again.
    fn poison(&self, st: &mut BankState, offset: u64, len: u64) {
        if !self.memdebug.on() {
            return;
        }
        let Some(io) = self.io.try_access() else {
            return;
        };
        if let (Ok(o), Ok(l)) = (usize::try_from(offset), usize::try_from(len)) {
            if io.fill(o, l, POISON).is_ok() {
                mark(&mut st.poisoned, offset, len, true);
            }
        }
    }

    /// Checks that poisoned pages among `[offset, offset + len)` still hold the poison: a page
    /// that does not was written after it was freed. Forgets them either way.
    fn check_poison(&self, st: &mut BankState, offset: u64, len: u64) {
        let first = (offset >> PAGE_SHIFT) as usize;
        let n = (len >> PAGE_SHIFT) as usize;
        let word = u64::from_ne_bytes([POISON; 8]);
        for page in first..first + n {
            if st.poisoned.next_bit(page) != Some(page) {
                continue;
            }
            st.poisoned.clear_bit(page);
            let Some(io) = self.io.try_access() else {
                continue;
            };
            if let Ok(Some(at)) = io.find_not(page << PAGE_SHIFT, PAGE_SIZE, word) {
                self.memdebug.poison_error();
                pr_err!(
                    "moreram: memdebug: bank {}: freed memory was written at offset {:#x}\n",
                    self.index,
                    at
                );
            }
        }
    }
}

/// The banks bound now.
#[pin_data]
pub(crate) struct Banks {
    /// Protected by its own lock; see the module documentation for the order.
    #[pin]
    list: Mutex<KVec<Arc<Bank>>>,
}

impl Banks {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            list <- new_mutex!(KVec::new()),
        })
    }

    /// Adds the bank `make` creates for the lowest free index.
    pub(crate) fn add(&self, make: impl FnOnce(u32) -> Result<Arc<Bank>>) -> Result<Arc<Bank>> {
        let mut banks = self.list.lock();
        let mut index = 0;
        while banks.iter().any(|b| b.index == index) {
            index += 1;
        }
        let bank = make(index)?;
        banks.push(bank.clone(), GFP_KERNEL)?;
        Ok(bank)
    }

    /// Removes `bank`: no new allocation can find it afterwards.
    pub(crate) fn remove(&self, bank: &Arc<Bank>) {
        self.list.lock().retain(|b| !Arc::ptr_eq(b, bank));
    }

    /// The bank with index `index`.
    pub(crate) fn get(&self, index: u32) -> Option<Arc<Bank>> {
        self.list.lock().iter().find(|b| b.index == index).cloned()
    }

    /// The bank whose device is `dev`.
    pub(crate) fn by_device(&self, dev: *const bindings::device) -> Option<Arc<Bank>> {
        self.list.lock().iter().find(|b| b.is_device(dev)).cloned()
    }

    /// The banks bound now, ordered by index.
    pub(crate) fn snapshot(&self) -> Result<KVec<Arc<Bank>>> {
        let banks = self.list.lock();
        let mut out = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
        for b in banks.iter() {
            out.push(b.clone(), GFP_KERNEL)?;
        }
        drop(banks);
        out.sort_unstable_by_key(|b| b.index);
        Ok(out)
    }
}
