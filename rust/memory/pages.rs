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
    /// `ENOMEM` for more pages than the machine has: that can never succeed, and the OOM killer
    /// must not try.
    pub(crate) fn fits(npages: u64) -> Result {
        if npages << PAGE_SHIFT > total_ram() {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// `npages` zeroed system pages: `reused` first (already zeroed), then fresh ones.
    pub(crate) fn new(space: &Arc<Space>, npages: u64, reused: KVec<Page>) -> Result<Self> {
        Self::fits(npages)?;
        let n = usize::try_from(npages)?;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for page in reused.into_iter() {
            pages.push(Some(page), GFP_KERNEL)?;
        }
        while pages.len() < n {
            let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN)?;
            pages.push(Some(page), GFP_KERNEL)?;
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

/// Bytes of RAM the machine has.
fn total_ram() -> u64 {
    // SAFETY: `si_meminfo` fills the struct it is given; an all-zero `sysinfo` is valid.
    let info = unsafe {
        let mut info: bindings::sysinfo = core::mem::zeroed();
        bindings::si_meminfo(&mut info);
        info
    };
    // `usize` is at most 64 bits wide on every architecture the kernel runs on.
    (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
}
