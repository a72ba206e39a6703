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

    /// Copies page `index` into `buf`. No page table may map the page meanwhile (so that no
    /// write races with the copy).
    pub(super) fn read_page(&self, index: u64, buf: &mut [u8; PAGE_SIZE]) -> Result {
        match self {
            Pages::Vram(v) => v.read_page(index, buf),
            Pages::System(s) => {
                let page = s.page(index).ok_or(EINVAL)?;
                // SAFETY: `buf` is one page; nothing maps the page (caller), so nothing writes it.
                unsafe { page.0.read_raw(buf.as_mut_ptr(), 0, PAGE_SIZE) }
            }
        }
    }

    /// Copies `buf` to page `index`. No page table may map the page meanwhile.
    pub(super) fn write_page(&self, index: u64, buf: &[u8; PAGE_SIZE]) -> Result {
        match self {
            Pages::Vram(v) => v.write_page(index, buf),
            Pages::System(s) => {
                let page = s.page(index).ok_or(EINVAL)?;
                // SAFETY: `buf` is one page; nothing maps or otherwise accesses the page (caller).
                unsafe { page.0.write_raw(buf.as_ptr(), 0, PAGE_SIZE) }
            }
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
    pub(crate) fn new(space: &Arc<Space>, npages: u64, reused: KVVec<TierPage>) -> Result<Self> {
        Self::fits(npages)?;
        let n = usize::try_from(npages)?;
        Self::fits(npages.saturating_sub(reused.len() as u64))?;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for page in reused.into_iter() {
            // Room was made above.
            let _ = pages.push_within_capacity(Some(page));
        }
        while pages.len() < n {
            let _ = pages.push_within_capacity(Some(TierPage::alloc()?));
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

    /// Page `index`, if it is not released.
    fn page(&self, index: u64) -> Option<&TierPage> {
        self.pages.get(usize::try_from(index).ok()?)?.as_ref()
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

/// Pages the kernel says are available for new allocations (`MemAvailable`).
fn available_pages() -> u64 {
    // SAFETY: no preconditions.
    let pages = unsafe { bindings::si_mem_available() };
    u64::try_from(pages).unwrap_or(0)
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
