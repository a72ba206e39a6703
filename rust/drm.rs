// SPDX-License-Identifier: GPL-2.0

//! The DRM device registered for each bank.
//!
//! It makes a bank visible where GPU tools look (`/dev/dri/card*`, `/sys/class/drm`) and is
//! where DRM fdinfo keys for the bank are reported. Memory is allocated through `/dev/moreram`;
//! the DRM device has no ioctls of its own.

use kernel::{device, drm, pci, prelude::*, sync::Arc};

use crate::bank::Bank;

/// The moreram DRM driver.
pub(crate) struct MoreramDrm;

/// An open DRM file; moreram keeps no per-file state on the DRM side.
pub(crate) struct DrmFile;

impl drm::file::DriverFile for DrmFile {
    type Driver = MoreramDrm;

    fn open(_dev: &drm::Device<MoreramDrm>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::new(Self, GFP_KERNEL)?.into())
    }
}

/// GEM objects are required by the DRM core; moreram creates none.
#[pin_data]
pub(crate) struct NoObject {}

impl drm::gem::DriverObject for NoObject {
    type Driver = MoreramDrm;
    type Args = ();

    fn new(_dev: &drm::Device<MoreramDrm>, _size: usize, _args: ()) -> impl PinInit<Self, Error> {
        try_pin_init!(NoObject {})
    }
}

#[vtable]
impl drm::Driver for MoreramDrm {
    /// The bank this DRM device represents.
    type Data = Arc<Bank>;
    type RegistrationData<'a> = ();
    type Object = drm::gem::Object<NoObject>;
    type File = DrmFile;
    type ParentDevice<Ctx: device::DeviceContext> = pci::Device<Ctx>;

    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 0,
        minor: 1,
        patchlevel: 0,
        name: c"moreram",
        desc: c"GPU memory as a memory tier",
    };

    const IOCTLS: &'static [drm::ioctl::DrmIoctlDescriptor] = &[];
}

/// Registers a DRM device for `bank`, a child of `pdev`. Unregistered (unplugged) on drop.
pub(crate) fn register<'bound>(
    pdev: &'bound pci::Device<device::Core<'_>>,
    bank: &Arc<Bank>,
) -> Result<drm::Registration<'bound, MoreramDrm>> {
    let unregistered = drm::UnregisteredDevice::<MoreramDrm>::new(pdev, Ok(bank.clone()))?;
    // SAFETY: the registration is stored in the driver data of `pdev` and dropped at unbind; it
    // is never leaked with `mem::forget`.
    unsafe { drm::Registration::new(pdev.as_ref(), unregistered, (), 0) }
}
