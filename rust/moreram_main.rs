// SPDX-License-Identifier: GPL-2.0

//! moreram: a GPU's memory, seen through its PCI BAR, as a memory tier for programs.
//!
//! Each bound PCI device contributes its largest memory BAR as a *bank*, managed by the kernel's
//! GPU buddy allocator and announced as a DRM device. Programs reach the tier through the misc
//! device `/dev/moreram`; the user ABI is `include/uapi/linux/moreram.h`.
//!
//! # Layers
//!
//! Each layer uses only those below it (`make test` checks):
//!
//! - `device` (PCI driver, DRM device, sysfs) and `debugfs`, side by side at the top;
//! - `front`: `/dev/moreram`, open files, handles, ioctls, events, shares, fdinfo, and
//!   [`front::Tier`], which owns every registry;
//! - `policy`: who may do what with pages, pools and scavenging with their shrinker, placement;
//! - `memory`: allocations, their rights data, pages and mappings;
//! - `bank`: a BAR's pages, its buddy allocator, zeroing, revocation;
//! - `process`, `memdebug`, `uapi`, `shim`: the ground everything stands on.
//!
//! The lock order is written in `front/mod.rs`, and where each lock is defined.

mod bank;
mod debugfs;
mod device;
mod front;
mod memdebug;
mod memory;
mod policy;
mod process;
mod shim;
mod uapi;

use kernel::{prelude::*, sync::Arc};

use bank::WatermarkDefaults;
use front::Tier;
use policy::{pool::Pools, shrinker::Shrinker};

/// The module.
///
/// Fields drop in order: `/dev/moreram` disappears first (no file can be open: the file
/// operations pin the module), then the devices unbind, the device layer loses the tier, debugfs
/// goes, the shrinker stops asking the pools, and the tier goes last.
#[pin_data]
struct Moreram {
    #[pin]
    misc: front::misc::Registration,
    #[pin]
    pci: kernel::driver::Registration<kernel::pci::Adapter<device::pci::MoreramPci>>,
    published: device::Published,
    #[pin]
    debugfs: debugfs::Debugfs,
    shrinker: Shrinker<Pools>,
    tier: Arc<Tier>,
}

impl kernel::InPlaceModule for Moreram {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        use module_parameters as p;
        let defaults = WatermarkDefaults {
            low_percent: p::low_watermark_percent.value(),
            min_percent: p::min_watermark_percent.value(),
            deadline_ms: p::scavenge_deadline_ms.value(),
        };
        let limits = front::limits::Limits {
            handles_per_file: p::max_handles_per_file.value(),
            handles_per_user: p::max_handles_per_user.value(),
            shares_per_file: p::max_shares_per_file.value(),
            shares_per_user: p::max_shares_per_user.value(),
        };
        let tier = Tier::new(defaults, limits);
        try_pin_init!(Self {
            tier: tier?,
            shrinker: Shrinker::register(c"moreram-pool", tier.pools.clone())?,
            debugfs <- debugfs::create(tier.clone()),
            published: device::Published::new(tier.clone()),
            pci <- kernel::driver::Registration::new(c"moreram", module),
            misc <- front::misc::Registration::register(tier.clone()),
        })
    }
}

module! {
    type: Moreram,
    name: "moreram",
    authors: ["The moreram authors"],
    description: "GPU memory seen through a PCI BAR, as a memory tier for programs",
    license: "GPL",
    params: {
        low_watermark_percent: u64 {
            default: 10,
            description: "Low watermark of a new bank, in percent of its size (pool holders are asked to scavenge below it)",
        },
        min_watermark_percent: u64 {
            default: 5,
            description: "Min watermark of a new bank, in percent of its size (pools are reclaimed at once below it)",
        },
        scavenge_deadline_ms: u64 {
            default: 1000,
            description: "Time a process has to give back pool memory when asked, in milliseconds",
        },
        max_handles_per_file: u32 {
            default: 65536,
            description: "Handles one open /dev/moreram may hold (EMFILE beyond)",
        },
        max_handles_per_user: u32 {
            default: 262144,
            description: "Handles one user may hold in all files (EDQUOT beyond)",
        },
        max_shares_per_file: u32 {
            default: 65536,
            description: "Share tokens made from one open /dev/moreram (EMFILE beyond)",
        },
        max_shares_per_user: u32 {
            default: 262144,
            description: "Share tokens one user may hold in all files (EDQUOT beyond)",
        },
    },
}
