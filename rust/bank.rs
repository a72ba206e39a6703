// SPDX-License-Identifier: GPL-2.0

//! Banks: the memory BARs of bound devices, each managed by a GPU buddy allocator.
//!
//! A bank is created when the PCI driver binds a device and is removed from the registry when the
//! device unbinds. The BAR's CPU mapping is device-managed ([`Devres`]): it is revoked and unmapped
//! at unbind even if something still holds an [`Arc<Bank>`].

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    device::{Bound, Core},
    devres::Devres,
    ffi::c_ulong,
    gpu::buddy::{GpuBuddy, GpuBuddyParams},
    pci,
    prelude::*,
    ptr::Alignment,
    sync::Arc,
};

use crate::{shim, uapi};

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
            self.write64(offset, pattern)?;
            let back = self.read64(offset)?;
            self.write64(offset, 0)?;
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

/// One bank of the tier.
pub(crate) struct Bank {
    index: u32,
    vendor: u16,
    device: u16,
    location: PciLocation,
    bar: BarInfo,
    buddy: GpuBuddy,
    /// The BAR's write-combined mapping and region; released when the device unbinds, whoever
    /// still holds the bank.
    _io: Devres<WcMapping>,
}

impl Bank {
    fn new(index: u32, pdev: &pci::Device<Core<'_>>, bar: BarInfo) -> Result<Arc<Self>> {
        let mapping = WcMapping::new(pdev, &bar)?;
        mapping.check_memory(pdev, &bar)?;
        let io = Devres::new(pdev.as_ref(), Ok::<_, Error>(mapping))?;
        Arc::new(
            Bank {
                index,
                vendor: pdev.vendor_id().as_raw(),
                device: pdev.device_id(),
                location: PciLocation::of(pdev),
                bar,
                buddy: GpuBuddy::new(GpuBuddyParams {
                    base_offset: 0,
                    size: bar.len,
                    chunk_size: Alignment::new::<{ kernel::page::PAGE_SIZE }>(),
                })?,
                _io: io,
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }

    /// The bank's number, stable while the device stays bound.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Bytes the bank manages.
    pub(crate) fn size(&self) -> u64 {
        self.buddy.size()
    }

    /// The bank as the user ABI reports it.
    pub(crate) fn info(&self) -> uapi::BankInfo {
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
            ..Default::default()
        }
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
        let mut banks = BANKS.lock();
        banks.retain(|b| !Arc::ptr_eq(b, &self.0));
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
