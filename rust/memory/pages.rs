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

/// A system page of the tier: zeroed whenever it goes back to the page allocator, whoever drops
/// it (an allocation, a pool, the shrinker, module unload), so that no program's bytes reach
/// the rest of the kernel.
///
/// # Invariants
///
/// Nobody maps or otherwise accesses the page while the value can be dropped: allocations hold
/// their pages until no page table maps them (their pages are inserted by PFN and freed only
/// after the last VMA is gone), and pools hold only unmapped pages.
pub(crate) struct TierPage(Page);

impl TierPage {
    /// A fresh, zeroed page, charged to the caller's memory cgroup.
    pub(crate) fn alloc() -> Result<Self> {
        Ok(Self(Page::alloc_page(
            GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN,
        )?))
    }

    /// Zeroes the page.
    pub(crate) fn scrub(&self) {
        // SAFETY: the whole page; nobody maps or accesses it (type invariants).
        let _ = unsafe { self.0.fill_zero_raw(0, PAGE_SIZE) };
    }

    fn pfn(&self) -> usize {
        // SAFETY: `self.0` is a valid page we own.
        unsafe { crate::shim::moreram_page_to_pfn(self.0.as_ptr()) }
    }
}

impl Drop for TierPage {
    fn drop(&mut self) {
        self.scrub();
    }
}

/// System pages, zeroed, counted in the space's `system_used` while held.
pub(crate) struct SystemPages {
    /// `None` once released.
    pages: KVVec<Option<TierPage>>,
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
    pub(crate) fn new(space: &Arc<Space>, npages: u64, reused: KVec<TierPage>) -> Result<Self> {
        Self::fits(npages)?;
        let n = usize::try_from(npages)?;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for page in reused.into_iter() {
            pages.push(Some(page), GFP_KERNEL)?;
        }
        while pages.len() < n {
            pages.push(Some(TierPage::alloc()?), GFP_KERNEL)?;
        }
        space.system_used_add(npages << PAGE_SHIFT);
        Ok(Self {
            pages,
            space: space.clone(),
        })
    }

    /// The page frame of page `index`, if it is not released.
    pub(crate) fn pfn(&self, index: u64) -> Option<usize> {
        Some(
            self.pages
                .get(usize::try_from(index).ok()?)?
                .as_ref()?
                .pfn(),
        )
    }

    /// Takes page `index` out, for release.
    pub(super) fn take(&mut self, index: u64) -> Option<TierPage> {
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

#[kunit_tests(moreram_pages)]
mod tests {
    use super::TierPage;
    use kernel::prelude::*;

    /// What every dropped tier page goes through: its bytes are gone before the page allocator
    /// gets it back.
    #[test]
    fn scrub_zeroes_the_page() -> Result {
        let p = TierPage::alloc()?;
        let pattern = [0xa5u8; 64];
        let mut back = [0u8; 64];
        // SAFETY: our page, which nobody else accesses; the ranges are inside it.
        unsafe { p.0.write_raw(pattern.as_ptr(), 4032, 64)? };
        // SAFETY: as above.
        unsafe { p.0.read_raw(back.as_mut_ptr(), 4032, 64)? };
        assert_eq!(back, pattern);
        p.scrub();
        // SAFETY: as above.
        unsafe { p.0.read_raw(back.as_mut_ptr(), 4032, 64)? };
        assert_eq!(back, [0u8; 64]);
        Ok(())
    }
}
