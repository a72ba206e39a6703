// SPDX-License-Identifier: GPL-2.0

//! The device layer: the PCI driver that makes each bound device's memory BAR a bank, the DRM
//! device and sysfs attributes of each bank.
//!
//! These are entered from C with no context of ours (PCI probe, sysfs `show`/`store`, DRM
//! fdinfo), and 7.3 has no per-module data: they reach the [`Tier`] through [`TIER`], the
//! module's only global, set before the driver is registered and cleared after it is gone.

pub(crate) mod drm;
pub(crate) mod pci;
pub(crate) mod sysfs;

use kernel::{prelude::*, sync::Arc};

use crate::front::Tier;

kernel::sync::global_lock! {
    // SAFETY: `Published::new` initialises it before the PCI driver is registered, and nothing
    // uses it before. Taken alone, only to clone the tier.
    unsafe(uninit) static TIER: Mutex<Option<Arc<Tier>>> = None;
}

/// The tier, for callbacks entered from C.
pub(crate) fn tier() -> Option<Arc<Tier>> {
    TIER.lock().clone()
}

/// The tier published to the device layer; withdrawn on drop.
pub(crate) struct Published;

impl Published {
    /// Publishes `tier`. Called once, from module init, before the PCI driver is registered.
    pub(crate) fn new(tier: Arc<Tier>) -> Self {
        // SAFETY: called once per module load, before any other use of `TIER`.
        unsafe { TIER.init() };
        *TIER.lock() = Some(tier);
        Published
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        TIER.lock().take();
    }
}
