// SPDX-License-Identifier: GPL-2.0

//! The PCI driver: binds devices with a large memory BAR and makes each BAR a bank.

use core::pin::Pin;
use kernel::{bindings, device::Core, pci, prelude::*};

use crate::{
    bank::{self, BarInfo},
    drm::DrmDevice,
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

/// The moreram PCI driver.
pub(crate) struct MoreramPci;

/// What a bound device holds. Fields drop in order: the sysfs knobs go first (their callbacks look
/// the bank up), the bank leaves the registry before its DRM device is unplugged, and the PCI
/// device is disabled last.
pub(crate) struct Bound<'bound> {
    _sysfs: bank::Sysfs,
    bank: bank::Registered,
    _drm: DrmDevice,
    _enabled: Enabled<'bound>,
}

/// A PCI device enabled for memory access; disabled on drop.
struct Enabled<'bound>(&'bound pci::Device);

impl Drop for Enabled<'_> {
    fn drop(&mut self) {
        // SAFETY: the device was enabled with `enable_device_mem` when this guard was made.
        unsafe { bindings::pci_disable_device(bank::raw_pci_dev(self.0)) };
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
        pdev.enable_device_mem()?;
        let enabled = Enabled(pdev);
        let bar = BarInfo::largest(pdev)?;
        let bank = bank::Registered::new(pdev, bar)?;
        let drm = DrmDevice::register(pdev)?;
        let sysfs = bank::Sysfs::add(pdev)?;
        let prefetchable = if bar.flags & crate::uapi::BANK_PREFETCHABLE != 0 {
            ", prefetchable"
        } else {
            ""
        };
        dev_info!(
            pdev.as_ref(),
            "bank {}: BAR {} at {:#x}, {} MiB{}\n",
            bank.bank().index(),
            bar.bar,
            bar.start,
            bank.bank().size() >> 20,
            prefetchable
        );
        Ok(Bound {
            _sysfs: sysfs,
            bank,
            _drm: drm,
            _enabled: enabled,
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        dev_info!(pdev.as_ref(), "bank {} unbound\n", this.bank.bank().index());
    }
}
