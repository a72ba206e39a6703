// SPDX-License-Identifier: GPL-2.0

//! The VRAM of one allocation: blocks of one bank, and where each page of the allocation is.

use kernel::{
    bindings,
    ffi::c_ulong,
    gpu::buddy::{AllocatedBlocks, GpuBuddyAllocFlags, GpuBuddyAllocMode},
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    ptr::Alignment,
    sync::Arc,
};

use super::{layout::mark, Bank, BankState};

/// Where a run of an allocation's pages is in its bank.
#[derive(Clone, Copy)]
struct Extent {
    /// First page of the run, counted in the allocation.
    first: u64,
    /// Byte offset of the run in the bank.
    offset: u64,
    pages: u64,
}

/// The VRAM of one allocation; returned to the bank on drop.
///
/// # Invariants
///
/// `extents` maps the allocation's pages, in order, to the bank; it never changes once made.
/// `pieces` are buddy allocations of this bank that together hold every page of `extents` not
/// released with [`VramBlocks::release`], and are marked used in the bank's bitmap. `key` is a
/// key of the bank's `live` tree for as long as this lives.
pub(crate) struct VramBlocks {
    bank: Arc<Bank>,
    extents: KVec<Extent>,
    pieces: KVec<Pin<KBox<AllocatedBlocks>>>,
    key: u64,
}

impl VramBlocks {
    /// Takes `blocks`, just allocated from `bank` and marked used, for the allocation whose key
    /// in the bank's `live` tree is `key`. `pieces` has room for one piece.
    pub(super) fn new(
        bank: Arc<Bank>,
        mut pieces: KVec<Pin<KBox<AllocatedBlocks>>>,
        blocks: Pin<KBox<AllocatedBlocks>>,
        key: u64,
    ) -> Result<Self> {
        // Capacity was reserved: the piece is in before anything else can fail, so that `drop`
        // gives it back.
        let _ = pieces.push_within_capacity(blocks);
        // INVARIANT: the one piece came from this bank's allocator and `key` is in `live`;
        // `extents` is filled from the piece's blocks just below, or the value is dropped.
        let mut vram = Self {
            bank,
            extents: KVec::new(),
            pieces,
            key,
        };
        let mut page = 0;
        let mut extents = KVec::new();
        for b in vram.pieces[0].iter() {
            let n = b.size() >> PAGE_SHIFT;
            extents.push(
                Extent {
                    first: page,
                    offset: b.offset(),
                    pages: n,
                },
                GFP_KERNEL,
            )?;
            page += n;
        }
        vram.extents = extents;
        Ok(vram)
    }

    /// The bank the blocks belong to.
    pub(crate) fn bank(&self) -> &Arc<Bank> {
        &self.bank
    }

    /// The byte offset in the bank of page `index` of the allocation.
    fn page_offset(&self, index: u64) -> Option<u64> {
        self.extents
            .iter()
            .find(|e| e.first <= index && index < e.first + e.pages)
            .map(|e| e.offset + ((index - e.first) << PAGE_SHIFT))
    }

    /// The runs of bank bytes, `(offset, len)`, behind pages `[first, first + n)`.
    fn bank_ranges(&self, first: u64, n: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let end = first + n;
        self.extents
            .iter()
            .filter(move |e| e.first < end && e.first + e.pages > first)
            .map(move |e| {
                let s = first.max(e.first);
                let t = end.min(e.first + e.pages);
                (
                    e.offset + ((s - e.first) << PAGE_SHIFT),
                    (t - s) << PAGE_SHIFT,
                )
            })
    }

    /// Zeroes `len` bank bytes at `offset` through the kernel's mapping of the BAR, a megabyte at
    /// a time so that a long zeroing neither holds up RCU nor an unbind.
    fn zero_range(&self, offset: u64, len: u64) -> Result {
        const CHUNK: u64 = 1 << 20;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            let io = self.bank.io.try_access().ok_or(ENODEV)?;
            io.fill(usize::try_from(offset + done)?, usize::try_from(n)?, 0)?;
            drop(io);
            done += n;
        }
        Ok(())
    }

    /// Copies page `index` of the allocation into `buf` (one page).
    pub(crate) fn read_page(&self, index: u64, buf: &mut [u8; PAGE_SIZE]) -> Result {
        let offset = self.page_offset(index).ok_or(EINVAL)?;
        let io = self.bank.io.try_access().ok_or(ENODEV)?;
        io.read(usize::try_from(offset)?, buf)
    }

    /// Copies `buf` (one page) to page `index` of the allocation.
    pub(crate) fn write_page(&self, index: u64, buf: &[u8; PAGE_SIZE]) -> Result {
        let offset = self.page_offset(index).ok_or(EINVAL)?;
        let io = self.bank.io.try_access().ok_or(ENODEV)?;
        io.write(usize::try_from(offset)?, buf)
    }

    /// Zeroes every page.
    pub(crate) fn zero(&self) -> Result {
        for e in self.extents.iter() {
            self.zero_range(e.offset, e.pages << PAGE_SHIFT)?;
        }
        Ok(())
    }

    /// Gives pages `[first, first + n)` of the allocation back to the bank, zeroed first if
    /// `zero`. The caller guarantees that no page table maps them and that they are not released
    /// already.
    pub(crate) fn release(&mut self, first: u64, n: u64, zero: bool) -> Result {
        let mut ranges = KVec::new();
        for r in self.bank_ranges(first, n) {
            ranges.push(r, GFP_KERNEL)?;
        }
        for &(offset, len) in ranges.iter().filter(|_| zero) {
            // After an unbind the bytes are out of reach, and nobody can map them any more.
            let _ = self.zero_range(offset, len);
        }
        let bank = self.bank.clone();
        let mut st = bank.state.lock();
        for &(offset, len) in ranges.iter() {
            self.release_range(&mut st, offset, offset + len)?;
            bank.poison(&mut st, offset, len);
        }
        Ok(())
    }

    /// The bytes of `piece` that stay allocated when bank bytes `[start, end)` are freed: its
    /// blocks outside the range, and the parts of those overlapping it that stick out. `None`
    /// when the piece does not overlap the range.
    fn kept(
        piece: &AllocatedBlocks,
        start: u64,
        end: u64,
    ) -> Result<Option<KVec<core::ops::Range<u64>>>> {
        let mut keep = KVec::new();
        let mut overlaps = false;
        for b in piece.iter() {
            let (s, e) = (b.offset(), b.offset() + b.size());
            if s < end && e > start {
                overlaps = true;
                if s < start {
                    keep.push(s..start, GFP_KERNEL)?;
                }
                if e > end {
                    keep.push(end..e, GFP_KERNEL)?;
                }
            } else {
                keep.push(s..e, GFP_KERNEL)?;
            }
        }
        Ok(overlaps.then_some(keep))
    }

    /// Frees bank bytes `[start, end)` from the pieces, keeping the bank's bitmap exact. The buddy
    /// allocator frees whole allocations only: each piece overlapping the range is freed, and the
    /// bytes of it outside the range are taken again at once with exact range allocations. The
    /// bank's `state` is held throughout (`st`), so nobody else can take them in between.
    fn release_range(&mut self, st: &mut BankState, start: u64, end: u64) -> Result {
        let mut i = 0;
        while i < self.pieces.len() {
            let Some(keep) = Self::kept(&self.pieces[i], start, end)? else {
                i += 1;
                continue;
            };
            self.pieces.reserve(keep.len(), GFP_KERNEL)?;
            // Back to the buddy allocator.
            if let Ok(piece) = self.pieces.remove(i) {
                Self::free_piece(st, piece);
            }
            for r in keep.into_iter() {
                let size = r.end - r.start;
                // Error paths on demand: `moreram/fail_release` in debugfs.
                let piece = if self.bank.memdebug.fail_release(size) {
                    Err(ENOMEM)
                } else {
                    KBox::pin_init(
                        self.bank.buddy.alloc_blocks(
                            GpuBuddyAllocMode::Range(r.clone()),
                            size,
                            Alignment::new::<PAGE_SIZE>(),
                            GpuBuddyAllocFlags::default(),
                        ),
                        GFP_KERNEL,
                    )
                };
                match piece {
                    Ok(p) => {
                        mark(&mut st.used, r.start, size, true);
                        // `reserve` above made room for every kept range.
                        let _ = self.pieces.push_within_capacity(p);
                    }
                    Err(e) => {
                        self.retire(st, r);
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives `piece` back to the buddy allocator, and its pages to the bitmap.
    fn free_piece(st: &mut BankState, piece: Pin<KBox<AllocatedBlocks>>) {
        for b in piece.iter() {
            mark(&mut st.used, b.offset(), b.size(), false);
        }
        drop(piece);
    }

    /// The kept bytes `lost` could not be taken again (the kernel could not allocate a few bytes
    /// for the buddy's bookkeeping): they are free in the bank while the allocation's page tables
    /// may still map them. Zaps every mapping of the allocation before the bank's lock (`st`) is
    /// let go, so nobody can get the bytes while they are still mapped, and gives back the rest;
    /// the caller retires the whole allocation.
    fn retire(&mut self, st: &mut BankState, lost: core::ops::Range<u64>) {
        pr_err!(
            "moreram: bank {}: lost {:#x}..{:#x} while releasing pages; allocation retired\n",
            self.bank.index,
            lost.start,
            lost.end
        );
        if let Some(z) = st.live.get(&self.key) {
            z.zap(0, z.npages);
        }
        for piece in self.pieces.drain_all() {
            Self::free_piece(st, piece);
        }
    }

    /// Maps page `index` of the allocation at `vmf`'s address with protection `prot`.
    ///
    /// # Safety
    ///
    /// `vmf` is a fault on a `VM_PFNMAP` mapping of this allocation, with the mmap or VMA lock
    /// held, and page `index` is not released.
    pub(crate) unsafe fn insert(
        &self,
        vmf: *mut bindings::vm_fault,
        index: u64,
        prot: bindings::pgprot_t,
    ) -> bindings::vm_fault_t {
        let Some(offset) = self.page_offset(index) else {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        };
        let pfn = (self.bank.identity.bar.start + offset) >> PAGE_SHIFT;
        let revoked = self.bank.revoked.lock();
        if *revoked {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        // SAFETY: the caller guarantees `vmf` is a live fault on a PFNMAP VMA; `pfn` is a page of
        // this bank's BAR, which stays mapped by us until `revoke`, which waits for `revoked`.
        unsafe {
            bindings::vmf_insert_pfn_prot(
                (*vmf).__bindgen_anon_1.vma,
                (*vmf).__bindgen_anon_1.address,
                pfn as c_ulong,
                prot,
            )
        }
    }
}

impl Drop for VramBlocks {
    fn drop(&mut self) {
        let mut st = self.bank.state.lock();
        for piece in self.pieces.drain_all() {
            for b in piece.iter() {
                mark(&mut st.used, b.offset(), b.size(), false);
                self.bank.poison(&mut st, b.offset(), b.size());
            }
            // Back to the buddy allocator, under `state` so that the bitmap never disagrees.
            drop(piece);
        }
        st.live.remove(&self.key);
    }
}
