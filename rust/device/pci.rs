// SPDX-License-Identifier: GPL-2.0

//! The PCI driver: binds devices with a large memory BAR and makes each BAR a bank.

use core::pin::Pin;
use kernel::{bindings, device::Core, devres::Devres, ffi::c_ulong, pci, prelude::*, sync::Arc};

use super::{drm::DrmDevice, sysfs::Sysfs};
use crate::{
    bank::{
        mmio::{raw_pci_dev, Mmio},
        Bank, BarInfo, Identity, PciLocation,
    },
    front::Tier,
    shim,
};

/// QEMU's `bochs-display` (vendor 0x1234 is not among `pci::Vendor`'s constants).
// SAFETY: `pci::DeviceId` is `repr(transparent)` over `bindings::pci_device_id`, and every bit
// pattern of that plain C struct is a valid value.
const BOCHS_DISPLAY: pci::DeviceId = unsafe {
    core::mem::transmute::<bindings::pci_device_id, pci::DeviceId>(bindings::pci_device_id {
        vendor: 0x1234,
        device: 0x1111,
        subvendor: !0,
        subdevice: !0,
        class: 0,
        class_mask: 0,
        driver_data: 0,
        override_only: 0,
    })
};

kernel::pci_device_table!(
    PCI_TABLE,
    <MoreramPci as pci::Driver>::IdInfo,
    [
        // QEMU's ivshmem-plain: shared memory in BAR 2.
        (
            pci::DeviceId::from_id(pci::Vendor::REDHAT_QUMRANET, 0x1110),
            ()
        ),
        // QEMU's bochs-display: VRAM in BAR 0.
        (BOCHS_DISPLAY, ()),
    ]
);

/// Number of standard BARs on a PCI function (`PCI_STD_NUM_BARS`).
const PCI_STD_NUM_BARS: u32 = 6;

// Resource flags, widened to the C type of `struct resource`'s `flags` (lossless: `c_ulong` is at
// least 32 bits wide).
const IORESOURCE_MEM: c_ulong = bindings::IORESOURCE_MEM as c_ulong;
const IORESOURCE_PREFETCH: c_ulong = bindings::IORESOURCE_PREFETCH as c_ulong;
const IORESOURCE_MEM_64: c_ulong = bindings::IORESOURCE_MEM_64 as c_ulong;

/// The largest memory BAR of `pdev`: a GPU's VRAM window is its largest BAR.
fn largest_bar(pdev: &pci::Device<Core<'_>>) -> Result<BarInfo> {
    let mut best: Option<BarInfo> = None;
    for bar in 0..PCI_STD_NUM_BARS {
        let len = pdev.resource_len(bar)?;
        // SAFETY: `bar` is below `PCI_STD_NUM_BARS`, inside the device's resource array.
        let raw = unsafe { shim::moreram_pci_bar_flags(raw_pci_dev(pdev), bar as i32) };
        if len == 0 || raw & IORESOURCE_MEM == 0 {
            continue;
        }
        if best.is_none_or(|b| len > b.len) {
            best = Some(BarInfo {
                bar,
                start: pdev.resource_start(bar)?,
                len,
                prefetchable: raw & IORESOURCE_PREFETCH != 0,
                is_64bit: raw & IORESOURCE_MEM_64 != 0,
            });
        }
    }
    best.ok_or(ENODEV)
}

/// Where `pdev` sits on the bus.
fn location(pdev: &pci::Device<Core<'_>>) -> PciLocation {
    let (mut domain, mut bus, mut devfn) = (0, 0, 0);
    // SAFETY: `raw_pci_dev` gives a valid `struct pci_dev` for as long as `pdev` lives, and the
    // out-pointers are valid local variables.
    unsafe { shim::moreram_pci_location(raw_pci_dev(pdev), &mut domain, &mut bus, &mut devfn) };
    PciLocation { domain, bus, devfn }
}

/// Maps BAR `bar` of `pdev`, checks that it holds memory, and makes it a bank of `tier`.
fn new_bank(tier: &Tier, pdev: &pci::Device<Core<'_>>, bar: BarInfo) -> Result<Arc<Bank>> {
    let mmio = Mmio::new(pdev, bar.bar, bar.len)?;
    if let Some((wrote, read)) = mmio.check_memory()? {
        dev_err!(
            pdev.as_ref(),
            "BAR {} does not hold memory (wrote {:#x}, read {:#x})\n",
            bar.bar,
            wrote,
            read
        );
        return Err(ENODEV);
    }
    let io = Devres::new(pdev.as_ref(), Ok::<_, Error>(mmio))?;
    let identity = Identity {
        vendor: pdev.vendor_id().as_raw(),
        device: pdev.device_id(),
        location: location(pdev),
        bar,
    };
    tier.banks.add(|index| {
        Bank::new(
            index,
            identity,
            io,
            core::ptr::from_ref(pdev.as_ref()).cast_mut().cast(),
            tier.memdebug.clone(),
            |npages| tier.watermarks.of(npages),
        )
    })
}

/// The moreram PCI driver.
pub(crate) struct MoreramPci;

/// A bank in the tier; taken out of it on drop.
struct Registered {
    tier: Arc<Tier>,
    bank: Arc<Bank>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.tier.remove_bank(&self.bank);
    }
}

/// What a bound device holds. Fields drop in order: the sysfs knobs go first (their callbacks
/// look the bank up), the bank leaves the tier before its DRM device is unplugged, and the PCI
/// device is disabled last.
pub(crate) struct Bound<'bound> {
    _sysfs: Sysfs,
    bank: Registered,
    _drm: DrmDevice,
    _enabled: Enabled<'bound>,
}

/// A PCI device enabled for memory access; disabled on drop.
struct Enabled<'bound>(&'bound pci::Device);

impl Drop for Enabled<'_> {
    fn drop(&mut self) {
        // SAFETY: the device was enabled with `enable_device_mem` when this guard was made.
        unsafe { bindings::pci_disable_device(raw_pci_dev(self.0)) };
    }
}

impl pci::Driver for MoreramPci {
    type IdInfo = ();
    type Data<'bound> = Bound<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let tier = super::tier().ok_or(ENODEV)?;
        pdev.enable_device_mem()?;
        let enabled = Enabled(pdev);
        let bar = largest_bar(pdev)?;
        let bank = Registered {
            bank: new_bank(&tier, pdev, bar)?,
            tier,
        };
        let drm = DrmDevice::register(pdev)?;
        let sysfs = Sysfs::add(pdev)?;
        dev_info!(
            pdev.as_ref(),
            "bank {}: BAR {} at {:#x}, {} MiB{}\n",
            bank.bank.index(),
            bar.bar,
            bar.start,
            bank.bank.size() >> 20,
            if bar.prefetchable {
                ", prefetchable"
            } else {
                ""
            }
        );
        Ok(Bound {
            _sysfs: sysfs,
            bank,
            _drm: drm,
            _enabled: enabled,
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        dev_info!(pdev.as_ref(), "bank {} unbound\n", this.bank.bank.index());
    }
}
