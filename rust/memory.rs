// SPDX-License-Identifier: GPL-2.0

//! Allocations: whole pages of one bank's VRAM, or system pages, never both.

use kernel::{
    bindings,
    page::{Page, PAGE_SHIFT},
    prelude::*,
    sync::{atomic::Atomic, atomic::Relaxed, Arc},
};

use crate::{
    bank::{self, Bank, VramBlocks},
    uapi,
};

/// Bytes of system pages allocated through every open file.
pub(crate) static SYSTEM_USED: Atomic<u64> = Atomic::new(0);

/// The next free page offset for mmap. Offsets are never reused, so a stale offset can never
/// name somebody else's allocation, and zapping one allocation's range touches no other.
static NEXT_PGOFF: Atomic<u64> = Atomic::new(1);

/// Offsets must stay representable as a byte `loff_t`.
const MAX_PGOFF: u64 = (i64::MAX as u64) >> PAGE_SHIFT;

/// Where the pages of an allocation are.
pub(crate) enum Backing {
    /// Blocks of one bank.
    Vram(VramBlocks),
    /// System pages, zeroed when allocated.
    System(KVVec<Page>),
}

/// One allocation.
pub(crate) struct Allocation {
    handle: u32,
    size: u64,
    flags: u32,
    /// First page of the allocation in the mmap offset space of `/dev/moreram`.
    pgoff: u64,
    backing: Backing,
    /// Number of VMAs that map it.
    mappings: Atomic<u32>,
}

impl Allocation {
    /// Allocates `size` bytes as the already validated `flags` and `bank` ask, zeroed.
    ///
    /// `mapping` is the address space user mappings will be in; it must stay valid while the
    /// allocation lives.
    pub(crate) fn new(
        handle: u32,
        size: u64,
        flags: u32,
        bank: u32,
        mapping: *mut bindings::address_space,
    ) -> Result<Arc<Self>> {
        let npages = size >> PAGE_SHIFT;
        let pgoff = reserve_pgoff(npages)?;
        let backing = if flags & uapi::ALLOC_SYSTEM_ONLY != 0 {
            system_pages(npages)?
        } else {
            match vram(size, flags, bank, pgoff, mapping) {
                Ok(v) => Backing::Vram(v),
                Err(e) if flags & (uapi::ALLOC_VRAM_ONLY | uapi::ALLOC_BANK) != 0 => return Err(e),
                // Prefer VRAM, fall back to system pages.
                Err(_) => system_pages(npages)?,
            }
        };
        Ok(Arc::new(
            Allocation {
                handle,
                size,
                flags,
                pgoff,
                backing,
                mappings: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn npages(&self) -> u64 {
        self.size >> PAGE_SHIFT
    }

    pub(crate) fn pgoff(&self) -> u64 {
        self.pgoff
    }

    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    pub(crate) fn is_vram(&self) -> bool {
        matches!(self.backing, Backing::Vram(_))
    }

    /// Tier and bank, as the user ABI reports them.
    pub(crate) fn placement(&self) -> (u32, u32) {
        match &self.backing {
            Backing::Vram(v) => (uapi::TIER_VRAM, v.bank().index()),
            Backing::System(_) => (uapi::TIER_SYSTEM, uapi::NO_BANK),
        }
    }

    pub(crate) fn query(&self) -> uapi::Query {
        let (tier, bank) = self.placement();
        uapi::Query {
            handle: self.handle,
            tier,
            bank,
            flags: self.flags,
            size: self.size,
            mmap_offset: self.pgoff << PAGE_SHIFT,
            mappings: self.mappings.load(Relaxed),
            ..Default::default()
        }
    }

    pub(crate) fn mapped(&self) {
        self.mappings.fetch_add(1, Relaxed);
    }

    pub(crate) fn unmapped(&self) {
        self.mappings.fetch_sub(1, Relaxed);
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if let Backing::System(pages) = &self.backing {
            SYSTEM_USED.fetch_sub((pages.len() as u64) << PAGE_SHIFT, Relaxed);
        }
    }
}

fn reserve_pgoff(npages: u64) -> Result<u64> {
    // One guard page between allocations: a mapping can never run into the next one.
    let span = npages.checked_add(1).ok_or(EOVERFLOW)?;
    let pgoff = NEXT_PGOFF.fetch_add(span, Relaxed);
    match pgoff.checked_add(span) {
        Some(end) if end <= MAX_PGOFF => Ok(pgoff),
        _ => Err(EOVERFLOW),
    }
}

/// VRAM from the bank `flags` names, or from the bank with the most free space that has room.
fn vram(
    size: u64,
    flags: u32,
    bank: u32,
    pgoff: u64,
    mapping: *mut bindings::address_space,
) -> Result<VramBlocks> {
    let contiguous = flags & uapi::ALLOC_CONTIGUOUS != 0;
    let banks = bank::snapshot()?;
    if flags & uapi::ALLOC_BANK != 0 {
        let b = banks.iter().find(|b| b.index() == bank).ok_or(ENODEV)?;
        if size > b.size() {
            return Err(E2BIG);
        }
        return b.alloc(size, contiguous, pgoff, mapping);
    }
    if banks.is_empty() {
        return Err(ENODEV);
    }
    if banks.iter().all(|b| size > b.size()) {
        return Err(E2BIG);
    }
    // Most free space first; a block never spans two banks.
    let mut order: KVec<&Arc<Bank>> = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
    for b in banks.iter() {
        order.push(b, GFP_KERNEL)?;
    }
    order.sort_unstable_by_key(|b| core::cmp::Reverse(b.free()));
    let mut err = ENOSPC;
    for b in order.iter().filter(|b| b.size() >= size) {
        match b.alloc(size, contiguous, pgoff, mapping) {
            Ok(v) => return Ok(v),
            Err(e) if e == ENOSPC => {}
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// `npages` zeroed system pages.
fn system_pages(npages: u64) -> Result<Backing> {
    // SAFETY: `si_meminfo` fills the struct it is given.
    let total = unsafe {
        let mut info: bindings::sysinfo = core::mem::zeroed();
        bindings::si_meminfo(&mut info);
        // `usize` is at most 64 bits wide on every architecture the kernel runs on.
        (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
    };
    // More than the machine has can never succeed; don't let the OOM killer try.
    if npages << PAGE_SHIFT > total {
        return Err(ENOMEM);
    }
    let n = usize::try_from(npages)?;
    let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        pages.push(
            Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN)?,
            GFP_KERNEL,
        )?;
    }
    SYSTEM_USED.fetch_add(npages << PAGE_SHIFT, Relaxed);
    Ok(Backing::System(pages))
}
