// SPDX-License-Identifier: GPL-2.0

//! Banks: the memory BARs of bound devices, each managed by a GPU buddy allocator.
//!
//! A bank is created when the PCI driver binds a device and is removed from the registry when the
//! device unbinds. The BAR's CPU mapping is device-managed ([`Devres`]): it is revoked and unmapped
//! at unbind even if something still holds an [`Arc<Bank>`].

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    bitmap::BitmapVec,
    device::{Bound, Core},
    devres::Devres,
    ffi::c_ulong,
    gpu::buddy::{
        AllocatedBlocks, GpuBuddy, GpuBuddyAllocFlag, GpuBuddyAllocFlags, GpuBuddyAllocMode,
        GpuBuddyParams,
    },
    new_mutex,
    page::{PAGE_SHIFT, PAGE_SIZE},
    pci,
    prelude::*,
    ptr::Alignment,
    rbtree::RBTree,
    sync::{atomic::Atomic, atomic::Relaxed, Arc, Mutex},
};

use crate::{debugfs, pool, rights::Process, shim, uapi};

/// Number of standard BARs on a PCI function (`PCI_STD_NUM_BARS`).
const PCI_STD_NUM_BARS: u32 = 6;

/// Where a device sits on the PCI bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PciLocation {
    pub(crate) domain: u32,
    pub(crate) bus: u8,
    pub(crate) devfn: u8,
}

impl PciLocation {
    fn of(pdev: &pci::Device<Bound>) -> Self {
        let (mut domain, mut bus, mut devfn) = (0, 0, 0);
        // SAFETY: `raw_pci_dev` gives a valid `struct pci_dev` for as long as `pdev` lives, and the
        // out-pointers are valid local variables.
        unsafe { shim::moreram_pci_location(raw_pci_dev(pdev), &mut domain, &mut bus, &mut devfn) };
        Self { domain, bus, devfn }
    }
}

/// The `struct pci_dev` behind a [`pci::Device`].
pub(crate) fn raw_pci_dev<Ctx: kernel::device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
) -> *mut bindings::pci_dev {
    // `pci::Device` is `repr(transparent)` over `Opaque<bindings::pci_dev>`, which is in turn
    // `repr(transparent)` over the C struct: both have the same address.
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// A memory BAR found on a device: which one, where, and how it may be mapped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BarInfo {
    pub(crate) bar: u32,
    pub(crate) start: u64,
    pub(crate) len: u64,
    /// `uapi::BANK_*` flags.
    pub(crate) flags: u32,
}

impl BarInfo {
    /// The largest memory BAR of `pdev`: a GPU's VRAM window is its largest BAR.
    pub(crate) fn largest(pdev: &pci::Device<Core<'_>>) -> Result<Self> {
        let mut best: Option<BarInfo> = None;
        for bar in 0..PCI_STD_NUM_BARS {
            let len = pdev.resource_len(bar)?;
            // SAFETY: `bar` is below `PCI_STD_NUM_BARS`, inside the device's resource array.
            let raw = unsafe { shim::moreram_pci_bar_flags(raw_pci_dev(pdev), bar as i32) };
            if len == 0 || raw & IORESOURCE_MEM == 0 {
                continue;
            }
            let mut flags = 0;
            if raw & IORESOURCE_PREFETCH != 0 {
                flags |= uapi::BANK_PREFETCHABLE;
            }
            if raw & IORESOURCE_MEM_64 != 0 {
                flags |= uapi::BANK_64BIT;
            }
            if best.is_none_or(|b| len > b.len) {
                best = Some(BarInfo {
                    bar,
                    start: pdev.resource_start(bar)?,
                    len,
                    flags,
                });
            }
        }
        best.ok_or(ENODEV)
    }
}

// Resource flags, widened to the C type of `struct resource`'s `flags` (lossless: `c_ulong` is at
// least 32 bits wide).
const IORESOURCE_MEM: c_ulong = bindings::IORESOURCE_MEM as c_ulong;
const IORESOURCE_PREFETCH: c_ulong = bindings::IORESOURCE_PREFETCH as c_ulong;
const IORESOURCE_MEM_64: c_ulong = bindings::IORESOURCE_MEM_64 as c_ulong;

/// A write-combined CPU mapping of a whole BAR, with the BAR's region requested.
///
/// # Invariants
///
/// `addr` is the `pci_iomap_wc` mapping of BAR `bar` of `pdev`, `len` bytes long, and the region of
/// that BAR is requested by us; both are released on drop.
pub(crate) struct WcMapping {
    pdev: *mut bindings::pci_dev,
    addr: NonNull<c_void>,
    len: usize,
    bar: i32,
}

// SAFETY: the mapping and the region may be released from any thread.
unsafe impl Send for WcMapping {}
// SAFETY: `&WcMapping` only allows I/O accessors, which are safe to call concurrently.
unsafe impl Sync for WcMapping {}

impl WcMapping {
    fn new(pdev: &pci::Device<Bound>, info: &BarInfo) -> Result<Self> {
        let raw = raw_pci_dev(pdev);
        let bar = i32::try_from(info.bar)?;
        let len = usize::try_from(info.len)?;
        // SAFETY: `raw` is a bound PCI device and `bar` one of its BARs; the name is static.
        if unsafe { bindings::pci_request_region(raw, bar, c"moreram".as_char_ptr()) } != 0 {
            return Err(EBUSY);
        }
        // SAFETY: as above; a `max` of 0 maps the whole BAR.
        let Some(addr) = NonNull::new(unsafe { bindings::pci_iomap_wc(raw, bar, 0) }) else {
            // SAFETY: we requested this region just above.
            unsafe { bindings::pci_release_region(raw, bar) };
            return Err(ENOMEM);
        };
        // INVARIANT: mapped and requested just above.
        Ok(Self {
            pdev: raw,
            addr,
            len,
            bar,
        })
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub(crate) fn fill(&self, offset: usize, len: usize, byte: u8) -> Result {
        self.check(offset, len)?;
        // SAFETY: the range is inside the mapping (checked), which is live by the invariants.
        unsafe { bindings::memset_io(self.addr.as_ptr().byte_add(offset), byte.into(), len) };
        Ok(())
    }

    /// The offset of the first 64-bit word in `[offset, offset + len)` that is not `word`.
    pub(crate) fn find_not(&self, offset: usize, len: usize, word: u64) -> Result<Option<usize>> {
        self.check(offset, len)?;
        for o in (offset..offset + len).step_by(8) {
            // SAFETY: inside the mapping (checked above), 8-byte aligned.
            if unsafe { bindings::readq(self.addr.as_ptr().byte_add(o)) } != word {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Fills `len` bytes at `offset` with zeros.
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result {
        self.check(offset, len)?;
        // SAFETY: the range is inside the mapping (checked), which is live by the invariants.
        unsafe { bindings::memset_io(self.addr.as_ptr().byte_add(offset), 0, len) };
        Ok(())
    }

    /// Reads the 64-bit word at `offset`.
    pub(crate) fn read64(&self, offset: usize) -> Result<u64> {
        self.check(offset, 8)?;
        // SAFETY: the word is inside the mapping (checked), which is live by the invariants;
        // `offset` is 8-byte aligned (checked).
        Ok(unsafe { bindings::readq(self.addr.as_ptr().byte_add(offset)) })
    }

    /// Writes the 64-bit word at `offset`.
    pub(crate) fn write64(&self, offset: usize, v: u64) -> Result {
        self.check(offset, 8)?;
        // SAFETY: as in `read64`.
        unsafe { bindings::writeq(v, self.addr.as_ptr().byte_add(offset)) };
        Ok(())
    }

    /// Checks that the BAR holds what is written to it, at its first and last word: a BAR of
    /// registers, or one that reads back all ones, is no memory to hand out.
    fn check_memory(&self, pdev: &pci::Device<Bound>, bar: &BarInfo) -> Result {
        let last = self.len.checked_sub(8).ok_or(ENODEV)? & !7;
        for (offset, pattern) in [(0, 0x6d6f_7265_7261_6d21u64), (last, 0x216d_6172_6572_6f6d)] {
            // The device's bytes are not ours yet: put back what was there.
            let old = self.read64(offset)?;
            self.write64(offset, pattern)?;
            let back = self.read64(offset)?;
            self.write64(offset, old)?;
            if back != pattern {
                dev_err!(
                    pdev.as_ref(),
                    "BAR {} does not hold memory (wrote {:#x}, read {:#x})\n",
                    bar.bar,
                    pattern,
                    back
                );
                return Err(ENODEV);
            }
        }
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= self.len && offset % 8 == 0 => Ok(()),
            _ => Err(EINVAL),
        }
    }
}

impl Drop for WcMapping {
    fn drop(&mut self) {
        // SAFETY: by the type invariants, `addr` is our mapping of `bar` on `pdev` and the region
        // is ours; devres drops us before the device is released.
        unsafe {
            bindings::pci_iounmap(self.pdev, self.addr.as_ptr());
            bindings::pci_release_region(self.pdev, self.bar);
        }
    }
}

/// Where the user mappings of a VRAM allocation live: what [`Bank::revoke`] must zap.
struct ZapRange {
    /// The address space of `/dev/moreram`'s inode.
    mapping: *mut bindings::address_space,
    npages: u64,
}

// SAFETY: the pointer is only passed to `unmap_mapping_range`, which may run on any thread.
unsafe impl Send for ZapRange {}

/// The allocation state of a bank, under [`Bank::state`].
struct BankState {
    /// One bit per page: set while allocated. Mirrors the buddy allocator, which does not say
    /// where its free blocks are.
    used: BitmapVec,
    /// Live VRAM allocations of this bank, by the first page of their mmap offset.
    live: RBTree<u64, ZapRange>,
    /// Pages filled with [`debugfs::POISON`] when freed under memdebug, to check on reuse.
    poisoned: BitmapVec,
}

/// One bank of the tier.
#[pin_data]
pub(crate) struct Bank {
    index: u32,
    vendor: u16,
    device: u16,
    location: PciLocation,
    bar: BarInfo,
    buddy: GpuBuddy,
    /// The BAR's write-combined mapping and region; released when the device unbinds, whoever
    /// still holds the bank.
    io: Devres<WcMapping>,
    /// Allocation bookkeeping. Held across buddy allocation and free.
    #[pin]
    state: Mutex<BankState>,
    /// `true` once the device is unbinding: no page of this bank may be mapped any more. Faults
    /// hold it while they insert a page, so that [`Bank::revoke`] cannot miss one.
    #[pin]
    revoked: Mutex<bool>,
    /// Low and min watermarks in pages, and the scavenge deadline in milliseconds.
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

impl Bank {
    fn new(index: u32, pdev: &pci::Device<Core<'_>>, bar: BarInfo) -> Result<Arc<Self>> {
        let mapping = WcMapping::new(pdev, &bar)?;
        mapping.check_memory(pdev, &bar)?;
        let io = Devres::new(pdev.as_ref(), Ok::<_, Error>(mapping))?;
        let buddy = GpuBuddy::new(GpuBuddyParams {
            base_offset: 0,
            size: bar.len,
            chunk_size: Alignment::new::<PAGE_SIZE>(),
        })?;
        let npages = usize::try_from(buddy.size() >> PAGE_SHIFT)?;
        let used = BitmapVec::new(npages, GFP_KERNEL)?;
        let poisoned = BitmapVec::new(npages, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Bank {
                index,
                vendor: pdev.vendor_id().as_raw(),
                device: pdev.device_id(),
                location: PciLocation::of(pdev),
                bar,
                buddy,
                io,
                state <- new_mutex!(BankState {
                    used,
                    live: RBTree::new(),
                    poisoned,
                }),
                revoked <- new_mutex!(false),
                low: Atomic::new(npages as u64 * crate::module_parameters::low_watermark_percent.value() / 100),
                min: Atomic::new(npages as u64 * crate::module_parameters::min_watermark_percent.value() / 100),
                deadline_ms: Atomic::new(crate::module_parameters::scavenge_deadline_ms.value()),
                dev: core::ptr::from_ref(pdev.as_ref()).cast_mut().cast(),
            }),
            GFP_KERNEL,
        )
    }

    /// The bank's number, stable while the device stays bound.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Bytes the bank manages.
    pub(crate) fn size(&self) -> u64 {
        self.buddy.size()
    }

    /// Bytes not allocated.
    pub(crate) fn free(&self) -> u64 {
        self.buddy.avail()
    }

    /// The bank as the user ABI reports it.
    pub(crate) fn info(&self) -> uapi::BankInfo {
        let largest_free = largest_free_block(&self.state.lock().used) << PAGE_SHIFT;
        uapi::BankInfo {
            index: self.index,
            flags: self.bar.flags,
            size: self.buddy.size(),
            free: self.buddy.avail(),
            bar_start: self.bar.start,
            bar_len: self.bar.len,
            pci_domain: self.location.domain,
            pci_bus: self.location.bus,
            pci_dev: self.location.devfn >> 3,
            pci_func: self.location.devfn & 7,
            bar: self.bar.bar as u8,
            vendor: self.vendor,
            device: self.device,
            largest_free,
            pooled: pool::pooled(self.index),
            low_watermark: self.low.load(Relaxed) << PAGE_SHIFT,
            min_watermark: self.min.load(Relaxed) << PAGE_SHIFT,
            ..Default::default()
        }
    }

    /// Writes `value` at `offset` (debugfs `poke`).
    pub(crate) fn poke(&self, offset: u64, value: u64) -> Result {
        let io = self.io.try_access().ok_or(ENODEV)?;
        io.write64(usize::try_from(offset)?, value)
    }

    /// Under memdebug: fills the bank bytes `[offset, offset + len)` with the poison and
    /// remembers them, to check when they are handed out again.
    fn poison(&self, st: &mut BankState, offset: u64, len: u64) {
        if !debugfs::memdebug() {
            return;
        }
        if let Some(io) = self.io.try_access() {
            if let (Ok(o), Ok(l)) = (usize::try_from(offset), usize::try_from(len)) {
                if io.fill(o, l, debugfs::POISON).is_ok() {
                    mark(&mut st.poisoned, offset, len, true);
                }
            }
        }
    }

    /// Checks that poisoned pages among `[offset, offset + len)` still hold the poison: a page
    /// that does not was written after it was freed. Forgets them either way.
    fn check_poison(&self, st: &mut BankState, offset: u64, len: u64) {
        let first = (offset >> PAGE_SHIFT) as usize;
        let n = (len >> PAGE_SHIFT) as usize;
        let word = u64::from_ne_bytes([debugfs::POISON; 8]);
        for page in first..first + n {
            if st.poisoned.next_bit(page) != Some(page) {
                continue;
            }
            st.poisoned.clear_bit(page);
            let Some(io) = self.io.try_access() else {
                continue;
            };
            if let Ok(Some(at)) = io.find_not(page << PAGE_SHIFT, PAGE_SIZE, word) {
                debugfs::poison_error();
                pr_err!(
                    "moreram: memdebug: bank {}: freed memory was written at offset {:#x}\n",
                    self.index,
                    at
                );
            }
        }
    }

    /// `moreram/banks` in debugfs: sizes, fragmentation, and free blocks by size.
    pub(crate) fn debug_print(&self, m: &kernel::seq_file::SeqFile) {
        let st = self.state.lock();
        let hist = free_histogram(&st.used);
        let largest = largest_free_block(&st.used) << PAGE_SHIFT;
        drop(st);
        let free = self.free();
        kernel::seq_print!(
            m,
            "bank {} {:04x}:{:02x}:{:02x}.{} {:04x}:{:04x} BAR {}\n",
            self.index,
            self.location.domain,
            self.location.bus,
            self.location.devfn >> 3,
            self.location.devfn & 7,
            self.vendor,
            self.device,
            self.bar.bar
        );
        kernel::seq_print!(
            m,
            "  size {} free {} largest_free {} pooled {}\n",
            self.size(),
            free,
            largest,
            pool::pooled(self.index)
        );
        // Fragmentation: the share of free memory that is not in the largest free block.
        let frag = (largest * 100).checked_div(free).map_or(0, |l| 100 - l);
        kernel::seq_print!(m, "  fragmentation {}%\n", frag);
        kernel::seq_print!(m, "  free blocks:");
        for (order, count) in hist.iter().enumerate().filter(|(_, c)| **c > 0) {
            kernel::seq_print!(m, " ");
            debugfs::print_size(m, (PAGE_SIZE as u64) << order);
            kernel::seq_print!(m, ":{}", count);
        }
        kernel::seq_print!(m, "\n");
    }

    /// Low and min watermarks in pages, and the scavenge deadline in milliseconds.
    pub(crate) fn watermarks(&self) -> (u64, u64, u64) {
        (
            self.low.load(Relaxed),
            self.min.load(Relaxed),
            self.deadline_ms.load(Relaxed),
        )
    }

    /// Allocates `size` bytes (whole pages) of VRAM for `owner` and zeroes them, serving from
    /// `owner`'s pool first and never from another's (see `pool.rs`). Scavenge requests the
    /// allocation triggers are delivered at once, before the zeroing.
    ///
    /// `pgoff` and `mapping` say where user mappings of the allocation will live, so that
    /// [`Bank::revoke`] can zap them. The caller guarantees that `mapping` stays valid for as long
    /// as the returned [`VramBlocks`] lives.
    pub(crate) fn alloc(
        self: &Arc<Self>,
        size: u64,
        contiguous: bool,
        pgoff: u64,
        mapping: *mut bindings::address_space,
        owner: &Process,
    ) -> Result<VramBlocks> {
        if *self.revoked.lock() {
            return Err(ENODEV);
        }
        let flags = if contiguous {
            GpuBuddyAllocFlags::from(GpuBuddyAllocFlag::Contiguous)
        } else {
            GpuBuddyAllocFlags::default()
        };
        let npages = size >> PAGE_SHIFT;
        let mut pieces = KVec::with_capacity(1, GFP_KERNEL)?;
        let (blocks, requests) = pool::admit_vram(self, owner, npages, || {
            let mut st = self.state.lock();
            st.live
                .try_create_and_insert(pgoff, ZapRange { mapping, npages }, GFP_KERNEL)?;
            let blocks = KBox::pin_init(
                self.buddy.alloc_blocks(
                    GpuBuddyAllocMode::Simple,
                    size,
                    Alignment::new::<PAGE_SIZE>(),
                    flags,
                ),
                GFP_KERNEL,
            );
            match blocks {
                Ok(blocks) => {
                    for b in blocks.iter() {
                        mark(&mut st.used, b.offset(), b.size(), true);
                        self.check_poison(&mut st, b.offset(), b.size());
                    }
                    Ok(blocks)
                }
                Err(e) => {
                    st.live.remove(&pgoff);
                    Err(e)
                }
            }
        })?;
        crate::file::deliver(&requests);
        // Capacity was reserved above: the piece is in before anything else can fail, so that
        // `VramBlocks`' drop gives it back.
        let _ = pieces.push_within_capacity(blocks);
        // INVARIANT: the one piece came from this bank's allocator and `pgoff` is in `live`;
        // `extents` is filled from the piece's blocks just below.
        let mut vram = VramBlocks {
            bank: self.clone(),
            extents: KVec::new(),
            pieces,
            pgoff,
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
        vram.zero()?;
        Ok(vram)
    }

    /// Makes every page of the bank unmappable and zaps every user mapping of it. Called when the
    /// device unbinds; later faults on its pages get `SIGBUS`.
    pub(crate) fn revoke(&self) {
        // Faults insert pages while holding `revoked`: once it is set, none can be in flight, and
        // the zap below removes every page inserted before.
        *self.revoked.lock() = true;
        let st = self.state.lock();
        for (pgoff, z) in st.live.iter() {
            // SAFETY: `mapping` is valid while the allocation lives (see `alloc`), and it is in
            // `live` until it is dropped, which needs `state`, held here.
            unsafe {
                bindings::unmap_mapping_range(
                    z.mapping,
                    (*pgoff << PAGE_SHIFT) as bindings::loff_t,
                    (z.npages << PAGE_SHIFT) as bindings::loff_t,
                    1,
                )
            };
        }
    }
}

/// Sets or clears the bits of the pages `[offset, offset + size)`.
fn mark(used: &mut BitmapVec, offset: u64, size: u64, set: bool) {
    let first = (offset >> PAGE_SHIFT) as usize;
    let n = (size >> PAGE_SHIFT) as usize;
    for i in first..first + n {
        if set {
            used.set_bit(i);
        } else {
            used.clear_bit(i);
        }
    }
}

/// The largest naturally aligned power-of-two run of clear bits, in pages: the largest block a
/// buddy allocator has free.
fn largest_free_block(used: &BitmapVec) -> u64 {
    let n = used.len();
    let mut best = 0usize;
    let mut pos = 0;
    while let Some(start) = used.next_zero_bit(pos) {
        let end = used.next_bit(start).unwrap_or(n);
        // The largest aligned block inside [start, end).
        let mut order = usize::BITS - 1 - (end - start).leading_zeros();
        loop {
            let block = 1usize << order;
            let aligned = start.next_multiple_of(block);
            if aligned + block <= end {
                best = best.max(block);
                break;
            }
            if order == 0 {
                break;
            }
            order -= 1;
        }
        if end >= n {
            break;
        }
        pos = end;
    }
    best as u64
}

/// Where a run of an allocation's pages is in its bank.
#[derive(Clone, Copy)]
struct Extent {
    /// First page of the run, counted in the allocation.
    first: u64,
    /// Byte offset of the run in the bank.
    offset: u64,
    pages: u64,
}

/// The free pages as a buddy allocator would hold them: naturally aligned power-of-two blocks,
/// counted by order.
fn free_histogram(used: &BitmapVec) -> [u64; 64] {
    let mut hist = [0u64; 64];
    let n = used.len();
    let mut pos = 0;
    while let Some(start) = used.next_zero_bit(pos) {
        let end = used.next_bit(start).unwrap_or(n);
        let mut s = start;
        while s < end {
            let mut order = (usize::BITS - 1 - (end - s).leading_zeros()) as usize;
            while order > 0 && s % (1 << order) != 0 {
                order -= 1;
            }
            hist[order] += 1;
            s += 1 << order;
        }
        if end >= n {
            break;
        }
        pos = end;
    }
    hist
}

/// The VRAM of one allocation; returned to the bank on drop.
///
/// # Invariants
///
/// `extents` maps the allocation's pages, in order, to the bank; it never changes. `pieces` are
/// buddy allocations of this bank that together hold every page of `extents` not released with
/// [`VramBlocks::release`]. `pgoff` is a key of the bank's `live` tree for as long as this lives.
pub(crate) struct VramBlocks {
    bank: Arc<Bank>,
    extents: KVec<Extent>,
    pieces: KVec<Pin<KBox<AllocatedBlocks>>>,
    pgoff: u64,
}

impl VramBlocks {
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
            io.zero(usize::try_from(offset + done)?, usize::try_from(n)?)?;
            drop(io);
            done += n;
        }
        Ok(())
    }

    /// Zeroes every page.
    fn zero(&self) -> Result {
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
            mark(&mut st.used, offset, len, false);
            bank.poison(&mut st, offset, len);
        }
        Ok(())
    }

    /// Frees bank bytes `[start, end)` from the pieces. The buddy allocator frees whole
    /// allocations only: each piece overlapping the range is freed, and the bytes of it outside
    /// the range are taken again at once with exact range allocations. `st` is held throughout,
    /// so nobody else can take them in between.
    fn release_range(&mut self, _st: &mut BankState, start: u64, end: u64) -> Result {
        let mut i = 0;
        while i < self.pieces.len() {
            let mut keep = KVec::new();
            let mut overlaps = false;
            for b in self.pieces[i].iter() {
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
            if !overlaps {
                i += 1;
                continue;
            }
            self.pieces.reserve(keep.len(), GFP_KERNEL)?;
            // Back to the buddy allocator.
            drop(self.pieces.remove(i));
            for r in keep.into_iter() {
                let size = r.end - r.start;
                let piece = KBox::pin_init(
                    self.bank.buddy.alloc_blocks(
                        GpuBuddyAllocMode::Range(r.clone()),
                        size,
                        Alignment::new::<PAGE_SIZE>(),
                        GpuBuddyAllocFlags::default(),
                    ),
                    GFP_KERNEL,
                );
                match piece {
                    Ok(p) => {
                        // `reserve` above makes room for every kept range.
                        let _ = self.pieces.push_within_capacity(p);
                    }
                    // Only when the kernel cannot allocate a few bytes for the buddy's
                    // bookkeeping: the bytes go back to the bank while still ours. They were
                    // zeroed, nobody maps them (the caller's guarantee covers only the released
                    // range, so zap the rest too), and any new owner zeroes them again.
                    Err(e) => {
                        pr_err!(
                            "moreram: bank {}: lost {:#x}..{:#x} while releasing pages ({:?})\n",
                            self.bank.index,
                            r.start,
                            r.end,
                            e
                        );
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Maps page `index` of the allocation at `vmf`'s address with protection `prot`.
    ///
    /// # Safety
    ///
    /// `vmf` is a fault on a `VM_PFNMAP` mapping of this allocation, with the mmap or VMA lock
    /// held, and page `index` is not released.
    pub(crate) unsafe fn fault(
        &self,
        vmf: *mut bindings::vm_fault,
        index: u64,
        prot: bindings::pgprot_t,
    ) -> u32 {
        let Some(offset) = self.page_offset(index) else {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        };
        let pfn = (self.bank.bar.start + offset) >> PAGE_SHIFT;
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
        st.live.remove(&self.pgoff);
    }
}

kernel::sync::global_lock! {
    // SAFETY: `init` runs in module init, before the PCI driver is registered.
    unsafe(uninit) static BANKS: Mutex<KVec<Arc<Bank>>> = KVec::new();
}

/// Initialises the bank registry. Called once, from module init, before any device can bind.
pub(crate) fn init() {
    // SAFETY: called once, from module init, before any other use of `BANKS`.
    unsafe { BANKS.init() };
}

/// A bank in the registry; dropping it removes the bank.
pub(crate) struct Registered(Arc<Bank>);

impl Registered {
    /// Creates a bank for BAR `bar` of `pdev` under the lowest free index and adds it.
    pub(crate) fn new(pdev: &pci::Device<Core<'_>>, bar: BarInfo) -> Result<Self> {
        let mut banks = BANKS.lock();
        let mut index = 0;
        while banks.iter().any(|b| b.index == index) {
            index += 1;
        }
        let bank = Bank::new(index, pdev, bar)?;
        banks.push(bank.clone(), GFP_KERNEL)?;
        Ok(Self(bank))
    }

    pub(crate) fn bank(&self) -> &Arc<Bank> {
        &self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        BANKS.lock().retain(|b| !Arc::ptr_eq(b, &self.0));
        // No new allocation can find the bank now; take away the mappings of the old ones.
        self.0.revoke();
        pool::forget_bank(self.0.index);
    }
}

/// The bank whose device is `dev`.
pub(crate) fn by_device(dev: *mut bindings::device) -> Option<Arc<Bank>> {
    BANKS.lock().iter().find(|b| b.dev == dev).cloned()
}

/// `show` of the bank's sysfs attributes (`shim.c`): the value of attribute `which`.
#[no_mangle]
extern "C" fn moreram_bank_attr_get(dev: *mut bindings::device, which: i32) -> u64 {
    let Some(b) = by_device(dev) else { return 0 };
    let (low, min, deadline) = b.watermarks();
    match which {
        0 => low << PAGE_SHIFT,
        1 => min << PAGE_SHIFT,
        2 => deadline,
        3 => b.size(),
        4 => b.free(),
        5 => largest_free_block(&b.state.lock().used) << PAGE_SHIFT,
        6 => pool::pooled(b.index),
        7 => crate::file::processes_in(b.index) as u64,
        _ => u64::from(b.index),
    }
}

/// `store` of the bank's sysfs attributes: watermarks in bytes (rounded down to pages, at most the
/// bank's size, min at most low), the deadline in milliseconds (1 to 600000).
#[no_mangle]
extern "C" fn moreram_bank_attr_set(dev: *mut bindings::device, which: i32, value: u64) -> i32 {
    let Some(b) = by_device(dev) else {
        return ENODEV.to_errno();
    };
    let pages = value >> PAGE_SHIFT;
    let size = b.size() >> PAGE_SHIFT;
    let (low, min, _) = b.watermarks();
    match which {
        0 if pages <= size && pages >= min => b.low.store(pages, Relaxed),
        1 if pages <= low => b.min.store(pages, Relaxed),
        2 if (1..=600_000).contains(&value) => b.deadline_ms.store(value, Relaxed),
        _ => return EINVAL.to_errno(),
    }
    0
}

/// The bank's sysfs attributes, under the PCI device's `moreram/`; removed on drop, before the
/// bank leaves the registry.
pub(crate) struct Sysfs(*mut bindings::device);

// SAFETY: the device outlives the binding, and removing the group may happen on any thread.
unsafe impl Send for Sysfs {}

impl Sysfs {
    pub(crate) fn add(pdev: &pci::Device<Core<'_>>) -> Result<Self> {
        let dev: *mut bindings::device = core::ptr::from_ref(pdev.as_ref()).cast_mut().cast();
        // SAFETY: `dev` is the bound device; the group is static.
        kernel::error::to_result(unsafe { shim::moreram_sysfs_add(dev) })?;
        Ok(Self(dev))
    }
}

impl Drop for Sysfs {
    fn drop(&mut self) {
        // SAFETY: added in `add`; the device is still bound (we are dropped in unbind).
        unsafe { shim::moreram_sysfs_remove(self.0) };
    }
}

/// The banks bound now, ordered by index.
pub(crate) fn snapshot() -> Result<KVec<Arc<Bank>>> {
    let banks = BANKS.lock();
    let mut out = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
    for b in banks.iter() {
        out.push(b.clone(), GFP_KERNEL)?;
    }
    out.sort_unstable_by_key(|b| b.index);
    Ok(out)
}

#[kunit_tests(moreram_bank)]
mod tests {
    use super::{largest_free_block, mark};
    use kernel::{
        bitmap::BitmapVec,
        gpu::buddy::{GpuBuddy, GpuBuddyAllocFlags, GpuBuddyAllocMode, GpuBuddyParams},
        page::{PAGE_SHIFT, PAGE_SIZE},
        prelude::*,
        ptr::Alignment,
    };

    const P: u64 = PAGE_SIZE as u64;

    #[test]
    fn largest_free_of_empty_and_full() -> Result {
        let mut used = BitmapVec::new(64, GFP_KERNEL)?;
        assert_eq!(largest_free_block(&used), 64);
        mark(&mut used, 0, 64 * P, true);
        assert_eq!(largest_free_block(&used), 0);
        Ok(())
    }

    #[test]
    fn largest_free_is_aligned() -> Result {
        let mut used = BitmapVec::new(64, GFP_KERNEL)?;
        // Page 1 taken: [2, 64) is free, but the largest aligned block is [32, 64).
        mark(&mut used, P, P, true);
        assert_eq!(largest_free_block(&used), 32);
        // Page 40 taken as well: [48, 64) is the largest aligned block left.
        mark(&mut used, 40 * P, P, true);
        assert_eq!(largest_free_block(&used), 16);
        // Freed again: back to 32, then 64.
        mark(&mut used, 40 * P, P, false);
        assert_eq!(largest_free_block(&used), 32);
        mark(&mut used, P, P, false);
        assert_eq!(largest_free_block(&used), 64);
        Ok(())
    }

    #[test]
    fn largest_free_of_odd_runs() -> Result {
        // Free pages 3..7 only: the aligned blocks inside are [4, 6) and [6, 7): 2 pages.
        let mut used = BitmapVec::new(16, GFP_KERNEL)?;
        mark(&mut used, 0, 3 * P, true);
        mark(&mut used, 7 * P, 9 * P, true);
        assert_eq!(largest_free_block(&used), 2);
        Ok(())
    }

    /// The bitmap mirror follows a real buddy allocator: after allocations and frees, the
    /// largest free block it reports is one the buddy can hand out contiguously.
    #[test]
    fn mirror_follows_the_buddy() -> Result {
        let size = 256 * P;
        let buddy = GpuBuddy::new(GpuBuddyParams {
            base_offset: 0,
            size,
            chunk_size: Alignment::new::<PAGE_SIZE>(),
        })?;
        let mut used = BitmapVec::new((size >> PAGE_SHIFT) as usize, GFP_KERNEL)?;
        let mut held = KVec::new();
        for pages in [3u64, 64, 1, 17] {
            let b = KBox::pin_init(
                buddy.alloc_blocks(
                    GpuBuddyAllocMode::Simple,
                    pages * P,
                    Alignment::new::<PAGE_SIZE>(),
                    GpuBuddyAllocFlags::default(),
                ),
                GFP_KERNEL,
            )?;
            for blk in b.iter() {
                mark(&mut used, blk.offset(), blk.size(), true);
            }
            held.push(b, GFP_KERNEL)?;
        }
        assert_eq!(buddy.avail(), size - 85 * P);
        let largest = largest_free_block(&used);
        assert!(largest > 0);
        // The buddy can serve exactly that much contiguously...
        let c = KBox::pin_init(
            buddy.alloc_blocks(
                GpuBuddyAllocMode::Simple,
                largest * P,
                Alignment::new::<PAGE_SIZE>(),
                GpuBuddyAllocFlags::from(kernel::gpu::buddy::GpuBuddyAllocFlag::Contiguous),
            ),
            GFP_KERNEL,
        );
        assert!(c.is_ok());
        Ok(())
    }
}
