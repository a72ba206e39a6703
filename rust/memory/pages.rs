// SPDX-License-Identifier: GPL-2.0

//! The pages of an allocation: blocks of one bank's VRAM, or system pages, never both.

use kernel::{
    bindings,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::Arc,
};

use super::Space;
use crate::{bank::VramBlocks, uapi::Tier};

/// The pages of an allocation.
pub(crate) enum Pages {
    /// Blocks of one bank.
    Vram(VramBlocks),
    /// System pages.
    System(SystemPages),
}

impl Pages {
    pub(crate) fn tier(&self) -> Tier {
        match self {
            Pages::Vram(v) => Tier::Vram(v.bank().index()),
            Pages::System(_) => Tier::System,
        }
    }
}

/// System pages, zeroed, counted in the space's `system_used` while held.
pub(crate) struct SystemPages {
    /// `None` once released.
    pages: KVVec<Option<Page>>,
    space: Arc<Space>,
}

impl SystemPages {
    /// `ENOMEM` for more fresh pages than the kernel says are available (`MemAvailable`: free
    /// memory and what reclaim can free). Taking more would end in the OOM killer, which would
    /// not even choose the caller: no RSS counts pages that the module holds.
    pub(crate) fn fits(fresh: u64) -> Result {
        if fresh > available_pages() {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// `npages` zeroed system pages: `reused` first (already zeroed), then fresh ones.
    pub(crate) fn new(space: &Arc<Space>, npages: u64, reused: KVVec<Page>) -> Result<Self> {
        let n = usize::try_from(npages)?;
        Self::fits(npages.saturating_sub(reused.len() as u64))?;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for page in reused.into_iter() {
            // Room was made above.
            let _ = pages.push_within_capacity(Some(page));
        }
        while pages.len() < n {
            let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN)?;
            let _ = pages.push_within_capacity(Some(page));
        }
        space.system_used_add(npages << PAGE_SHIFT);
        Ok(Self {
            pages,
            space: space.clone(),
        })
    }

    /// The page frame of page `index`, if it is not released.
    pub(crate) fn pfn(&self, index: u64) -> Option<usize> {
        let page = self.pages.get(usize::try_from(index).ok()?)?.as_ref()?;
        // SAFETY: `page` is a valid page we own.
        Some(unsafe { crate::shim::moreram_page_to_pfn(page.as_ptr()) })
    }

    /// Takes page `index` out, for release.
    pub(super) fn take(&mut self, index: u64) -> Option<Page> {
        let page = self.pages.get_mut(usize::try_from(index).ok()?)?.take()?;
        self.space.system_used_sub(PAGE_SIZE as u64);
        Some(page)
    }
}

impl Drop for SystemPages {
    fn drop(&mut self) {
        let n = self.pages.iter().filter(|p| p.is_some()).count() as u64;
        self.space.system_used_sub(n << PAGE_SHIFT);
    }
}

/// Pages the kernel says are available for new allocations (`MemAvailable`).
fn available_pages() -> u64 {
    // SAFETY: no preconditions.
    let pages = unsafe { bindings::si_mem_available() };
    u64::try_from(pages).unwrap_or(0)
}
