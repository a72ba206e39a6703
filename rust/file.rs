// SPDX-License-Identifier: GPL-2.0

//! An open `/dev/moreram`: its allocations, by handle and by mmap offset, and its accounting.

use kernel::{
    bindings, new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, Mutex},
};

use crate::{bank, memory::Allocation, memory::SYSTEM_USED, uapi};

/// The allocations of one open file.
struct Allocations {
    /// Handle to give next; handles are never reused within a file.
    next_handle: u32,
    by_handle: RBTree<u32, Arc<Allocation>>,
    /// Handle by the *last* page offset of the allocation, so that a lower-bound search from any
    /// page finds the allocation containing it.
    by_last_pgoff: RBTree<u64, u32>,
    vram_bytes: u64,
    system_bytes: u64,
}

/// Per-open-file state, in the file's `private_data`.
#[pin_data]
pub(crate) struct MoreramFile {
    /// The file's address space (the inode's); user mappings live there.
    mapping: *mut bindings::address_space,
    #[pin]
    allocs: Mutex<Allocations>,
}

// SAFETY: `mapping` is only handed to the mm, which may use it from any thread; the rest is
// protected by the mutex.
unsafe impl Send for MoreramFile {}
// SAFETY: as above.
unsafe impl Sync for MoreramFile {}

impl MoreramFile {
    /// State for a file being opened whose address space is `mapping`.
    pub(crate) fn new(mapping: *mut bindings::address_space) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(MoreramFile {
                mapping,
                allocs <- new_mutex!(Allocations {
                    next_handle: 1,
                    by_handle: RBTree::new(),
                    by_last_pgoff: RBTree::new(),
                    vram_bytes: 0,
                    system_bytes: 0,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// `MORERAM_IOC_ALLOC`, after the request has been read.
    pub(crate) fn alloc(&self, req: &mut uapi::Alloc) -> Result {
        validate_alloc(req)?;
        // Reserve the tree nodes first: nothing can fail after the memory is allocated.
        let handle_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let pgoff_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let handle = {
            let mut a = self.allocs.lock();
            let h = a.next_handle;
            a.next_handle = h.checked_add(1).ok_or(EMFILE)?;
            h
        };
        // The file (and so the inode's address space) outlives its allocations' use of it:
        // allocations live while the file is open or mapped, and mappings hold the file.
        let alloc = Allocation::new(handle, req.size, req.flags, req.bank, self.mapping)?;
        let (tier, bank) = alloc.placement();
        let mut a = self.allocs.lock();
        if alloc.is_vram() {
            a.vram_bytes += alloc.size();
        } else {
            a.system_bytes += alloc.size();
        }
        let last = alloc.pgoff() + alloc.npages() - 1;
        req.handle = handle;
        req.tier = tier;
        req.bank_used = bank;
        req.mmap_offset = alloc.pgoff() << PAGE_SHIFT;
        a.by_last_pgoff.insert(pgoff_node.into_node(last, handle));
        a.by_handle.insert(handle_node.into_node(handle, alloc));
        Ok(())
    }

    /// `MORERAM_IOC_FREE`: forgets the handle. The memory goes when the last mapping does.
    pub(crate) fn free(&self, handle: u32) -> Result {
        let mut a = self.allocs.lock();
        let alloc = a.by_handle.remove(&handle).ok_or(ENOENT)?;
        a.by_last_pgoff
            .remove(&(alloc.pgoff() + alloc.npages() - 1));
        if alloc.is_vram() {
            a.vram_bytes -= alloc.size();
        } else {
            a.system_bytes -= alloc.size();
        }
        drop(a);
        // Dropped outside the lock: freeing VRAM takes the bank's locks.
        drop(alloc);
        Ok(())
    }

    /// `MORERAM_IOC_QUERY`.
    pub(crate) fn query(&self, handle: u32) -> Result<uapi::Query> {
        Ok(self
            .allocs
            .lock()
            .by_handle
            .get(&handle)
            .ok_or(ENOENT)?
            .query())
    }

    /// `MORERAM_IOC_TIER`.
    pub(crate) fn tier(&self) -> Result<uapi::Tier> {
        let banks = bank::snapshot()?;
        let a = self.allocs.lock();
        Ok(uapi::Tier {
            banks: u32::try_from(banks.len())?,
            vram_size: banks.iter().map(|b| b.size()).sum(),
            vram_free: banks.iter().map(|b| b.free()).sum(),
            system_used: SYSTEM_USED.load(kernel::sync::atomic::Relaxed),
            file_vram: a.vram_bytes,
            file_system: a.system_bytes,
            file_allocs: u32::try_from(a.by_handle.iter().count())?,
            ..Default::default()
        })
    }

    /// The allocation containing page offset `pgoff`, if this file has one.
    pub(crate) fn find_by_pgoff(&self, pgoff: u64) -> Option<Arc<Allocation>> {
        let a = self.allocs.lock();
        let cursor = a.by_last_pgoff.cursor_lower_bound(&pgoff)?;
        let (_, handle) = cursor.current();
        let alloc = a.by_handle.get(handle)?;
        (alloc.pgoff() <= pgoff).then(|| alloc.clone())
    }
}

/// Checks an allocation request against the rules of the ABI.
fn validate_alloc(req: &uapi::Alloc) -> Result {
    if req.reserved0 != 0
        || req.reserved.iter().any(|&r| r != 0)
        || req.handle != 0
        || req.tier != 0
        || req.bank_used != 0
        || req.mmap_offset != 0
    {
        return Err(EINVAL);
    }
    if req.flags & !uapi::ALLOC_FLAGS_ALL != 0 {
        return Err(EINVAL);
    }
    let system = req.flags & uapi::ALLOC_SYSTEM_ONLY != 0;
    let vram = req.flags & (uapi::ALLOC_VRAM_ONLY | uapi::ALLOC_BANK | uapi::ALLOC_CONTIGUOUS) != 0;
    if system && vram {
        return Err(EINVAL);
    }
    if req.flags & uapi::ALLOC_BANK == 0 && req.bank != 0 {
        return Err(EINVAL);
    }
    let page_mask = (1u64 << PAGE_SHIFT) - 1;
    if req.size == 0 || req.size & page_mask != 0 || req.size > uapi::MAX_ALLOC {
        return Err(EINVAL);
    }
    Ok(())
}

#[kunit_tests(moreram_alloc_request)]
mod tests {
    use super::validate_alloc;
    use crate::uapi::{self, Alloc};
    use kernel::prelude::*;

    const OK: Alloc = Alloc {
        size: 4096,
        flags: 0,
        bank: 0,
        handle: 0,
        tier: 0,
        bank_used: 0,
        reserved0: 0,
        mmap_offset: 0,
        reserved: [0; 4],
    };

    #[test]
    fn accepts_valid_requests() {
        assert!(validate_alloc(&OK).is_ok());
        let bank = Alloc {
            flags: uapi::ALLOC_BANK | uapi::ALLOC_CONTIGUOUS,
            bank: 3,
            ..OK
        };
        assert!(validate_alloc(&bank).is_ok());
        let max = Alloc {
            size: uapi::MAX_ALLOC,
            ..OK
        };
        assert!(validate_alloc(&max).is_ok());
    }

    #[test]
    fn rejects_bad_sizes() {
        for size in [0, 1, 4095, 4097, uapi::MAX_ALLOC + 4096, !4095] {
            assert_eq!(validate_alloc(&Alloc { size, ..OK }), Err(EINVAL));
        }
    }

    #[test]
    fn rejects_bad_flags_and_fields() {
        let bad = [
            Alloc {
                flags: 1 << 4,
                ..OK
            },
            Alloc {
                flags: uapi::ALLOC_SYSTEM_ONLY | uapi::ALLOC_VRAM_ONLY,
                ..OK
            },
            Alloc {
                flags: uapi::ALLOC_SYSTEM_ONLY | uapi::ALLOC_BANK,
                ..OK
            },
            Alloc { bank: 1, ..OK },
            Alloc { reserved0: 1, ..OK },
            Alloc {
                reserved: [0, 1, 0, 0],
                ..OK
            },
            Alloc { handle: 1, ..OK },
            Alloc { tier: 1, ..OK },
            Alloc { bank_used: 1, ..OK },
            Alloc {
                mmap_offset: 4096,
                ..OK
            },
        ];
        for req in bad.iter() {
            assert_eq!(validate_alloc(req), Err(EINVAL));
        }
    }
}
