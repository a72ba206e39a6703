// SPDX-License-Identifier: GPL-2.0

//! DRM fdinfo of `/dev/moreram` (Documentation/gpu/drm-usage-stats.rst): one region per bank
//! (`vram<N>`), plus `system`.

use kernel::{prelude::*, seq_file::SeqFile, seq_print};

use super::file::OpenFile;
use crate::uapi::Tier;

/// Memory of one region (a bank, or system pages) as DRM fdinfo counts it.
#[derive(Default, Clone, Copy)]
struct RegionUse {
    total: u64,
    shared: u64,
    resident: u64,
}

impl RegionUse {
    fn add(&mut self, other: RegionUse) {
        self.total += other.total;
        self.shared += other.shared;
        self.resident += other.resident;
    }
}

/// The use of every bank, by index, and of system pages, by the allocations of `file`. Every
/// bound bank is a region, used or not.
fn regions(file: &OpenFile) -> Result<(KVec<(u32, RegionUse)>, RegionUse)> {
    let mut regions: KVec<(u32, RegionUse)> = KVec::new();
    for b in file.tier.banks.snapshot()?.iter() {
        regions.push((b.index(), RegionUse::default()), GFP_KERNEL)?;
    }
    let mut system = RegionUse::default();
    file.for_each_allocation(|a| {
        let u = RegionUse {
            total: a.size(),
            shared: if a.holders() > 1 { a.size() } else { 0 },
            resident: a.resident(),
        };
        match a.tier() {
            Tier::Vram(bank) => match regions.iter_mut().find(|(b, _)| *b == bank) {
                Some((_, r)) => r.add(u),
                // An allocation of a bank that has gone away.
                None => regions.push((bank, u), GFP_KERNEL)?,
            },
            Tier::System => system.add(u),
        }
        Ok(())
    })?;
    regions.sort_unstable_by_key(|(b, _)| *b);
    Ok((regions, system))
}

impl OpenFile {
    /// Writes the file's fdinfo keys to `m`.
    pub(crate) fn show_fdinfo(&self, m: &SeqFile) {
        let Ok((regions, system)) = regions(self) else {
            return;
        };
        seq_print!(m, "drm-driver:\tmoreram\n");
        seq_print!(m, "drm-client-id:\t{}\n", self.client_id());
        let kib = |v: u64| v >> 10;
        for (b, u) in regions.iter() {
            seq_print!(m, "drm-total-vram{}:\t{} KiB\n", b, kib(u.total));
            seq_print!(m, "drm-shared-vram{}:\t{} KiB\n", b, kib(u.shared));
            seq_print!(m, "drm-resident-vram{}:\t{} KiB\n", b, kib(u.resident));
        }
        seq_print!(m, "drm-total-system:\t{} KiB\n", kib(system.total));
        seq_print!(m, "drm-shared-system:\t{} KiB\n", kib(system.shared));
        seq_print!(m, "drm-resident-system:\t{} KiB\n", kib(system.resident));
        let (pv, ps) = self.tier.pools.sizes(self.opener());
        seq_print!(m, "moreram-pool-vram:\t{} KiB\n", kib(pv));
        seq_print!(m, "moreram-pool-system:\t{} KiB\n", kib(ps));
    }
}
