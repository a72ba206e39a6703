// SPDX-License-Identifier: GPL-2.0

//! Where a new allocation goes: which bank, through the pools' admission, or system pages.

use kernel::{page::PAGE_SHIFT, prelude::*, sync::Arc};

use super::pool::{Pools, Request};
use crate::{
    bank::{Bank, Banks, VramBlocks, ZapRange},
    memdebug::MemDebug,
    memory::{
        pages::{Pages, SystemPages},
        Allocation, Space,
    },
    process::Process,
    uapi::{AllocRequest, Placement},
};

/// What allocation draws on.
pub(crate) struct Sources<'a> {
    pub(crate) banks: &'a Banks,
    pub(crate) pools: &'a Pools,
    pub(crate) space: &'a Arc<Space>,
    pub(crate) memdebug: &'a MemDebug,
}

impl Sources<'_> {
    /// Allocates what `req` asks for `owner`, zeroed. Scavenge requests the allocation triggered
    /// are added to `requests`, to deliver whatever the outcome.
    pub(crate) fn allocate(
        &self,
        req: &AllocRequest,
        owner: Process,
        requests: &mut KVec<Request>,
    ) -> Result<Arc<Allocation>> {
        let size = req.npages << PAGE_SHIFT;
        // Error paths on demand: `moreram/fail_alloc` in debugfs.
        if self.memdebug.fail_alloc(size) {
            return Err(ENOMEM);
        }
        let lease = self.space.lease_pgoff(req.npages)?;
        let range = lease.range(req.npages);
        let pages = match req.placement {
            Placement::SystemOnly => self.system(req.npages, &owner)?,
            Placement::PreferVram => match self.vram(req, range, &owner, requests) {
                Ok(v) => Pages::Vram(v),
                // Prefer VRAM, fall back to system pages.
                Err(_) => self.system(req.npages, &owner)?,
            },
            Placement::VramOnly | Placement::Bank(_) => {
                Pages::Vram(self.vram(req, range, &owner, requests)?)
            }
        };
        Allocation::new(lease, pages, req.npages, req.flags, owner)
    }

    /// `npages` zeroed system pages, from `owner`'s pool first.
    fn system(&self, npages: u64, owner: &Process) -> Result<Pages> {
        // Before the pool is drawn on: a request that cannot be met leaves it as it is.
        let pooled = self.pools.sizes(owner).1 >> PAGE_SHIFT;
        SystemPages::fits(npages.saturating_sub(pooled))?;
        let reused = self.pools.take_pages(owner, usize::try_from(npages)?);
        Ok(Pages::System(SystemPages::new(self.space, npages, reused)?))
    }

    /// Zeroed VRAM from the bank `req` names, or from the bank with the most room nobody has
    /// reserved that can hold it; a block never spans two banks.
    fn vram(
        &self,
        req: &AllocRequest,
        range: ZapRange,
        owner: &Process,
        requests: &mut KVec<Request>,
    ) -> Result<VramBlocks> {
        let size = req.npages << PAGE_SHIFT;
        if let Placement::Bank(index) = req.placement {
            let b = self.banks.get(index).ok_or(ENODEV)?;
            if size > b.size() {
                return Err(E2BIG);
            }
            return self.bank_vram(&b, req, range, owner, requests);
        }
        let mut banks = self.banks.snapshot()?;
        if banks.is_empty() {
            return Err(ENODEV);
        }
        if banks.iter().all(|b| size > b.size()) {
            return Err(E2BIG);
        }
        banks.sort_unstable_by_key(|b| {
            core::cmp::Reverse(b.free().saturating_sub(self.pools.pooled(b.index())))
        });
        let mut err = ENOSPC;
        for b in banks.iter().filter(|b| b.size() >= size) {
            match self.bank_vram(b, req, range, owner, requests) {
                Ok(v) => return Ok(v),
                Err(e) if e == ENOSPC => {}
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// Zeroed VRAM of `bank`, if the pools admit it.
    fn bank_vram(
        &self,
        bank: &Arc<Bank>,
        req: &AllocRequest,
        range: ZapRange,
        owner: &Process,
        requests: &mut KVec<Request>,
    ) -> Result<VramBlocks> {
        let size = req.npages << PAGE_SHIFT;
        let (blocks, asked) = self.pools.admit_vram(bank, owner, req.npages, || {
            bank.alloc(size, req.contiguous, range)
        })?;
        for r in asked.into_iter() {
            // Should there be no room to keep a request, the holder is reclaimed at its deadline
            // all the same.
            let _ = requests.push(r, GFP_KERNEL);
        }
        blocks.zero()?;
        Ok(blocks)
    }
}
