// SPDX-License-Identifier: GPL-2.0

//! Where a bank's free pages are: a bitmap that mirrors the buddy allocator, which does not say
//! where its free blocks are, and what can be read off it.

use kernel::{bitmap::BitmapVec, page::PAGE_SHIFT, prelude::*};

/// Sets or clears the bits of the pages `[offset, offset + size)`.
pub(super) fn mark(used: &mut BitmapVec, offset: u64, size: u64, set: bool) {
    let first = (offset >> PAGE_SHIFT) as usize;
    let n = (size >> PAGE_SHIFT) as usize;
    for i in first..first + n {
        if set {
            used.set_bit(i);
        } else {
            used.clear_bit(i);
        }
    }
}

/// Whether bit `i` of `bm` is set.
pub(crate) fn is_set(bm: &BitmapVec, i: u64) -> bool {
    bm.next_bit(i as usize) == Some(i as usize)
}

/// The largest naturally aligned power-of-two run of clear bits, in pages: the largest block a
/// buddy allocator has free.
pub(super) fn largest_free_block(used: &BitmapVec) -> u64 {
    let n = used.len();
    let mut best = 0usize;
    let mut pos = 0;
    while let Some(start) = used.next_zero_bit(pos) {
        let end = used.next_bit(start).unwrap_or(n);
        // The largest aligned block inside [start, end).
        let mut order = usize::BITS - 1 - (end - start).leading_zeros();
        loop {
            let block = 1usize << order;
            let aligned = start.next_multiple_of(block);
            if aligned + block <= end {
                best = best.max(block);
                break;
            }
            if order == 0 {
                break;
            }
            order -= 1;
        }
        if end >= n {
            break;
        }
        pos = end;
    }
    best as u64
}

/// The free pages as a buddy allocator would hold them: naturally aligned power-of-two blocks,
/// counted by order.
pub(super) fn free_histogram(used: &BitmapVec) -> [u64; 64] {
    let mut hist = [0u64; 64];
    let n = used.len();
    let mut pos = 0;
    while let Some(start) = used.next_zero_bit(pos) {
        let end = used.next_bit(start).unwrap_or(n);
        let mut s = start;
        while s < end {
            let mut order = (usize::BITS - 1 - (end - s).leading_zeros()) as usize;
            while order > 0 && s % (1 << order) != 0 {
                order -= 1;
            }
            hist[order] += 1;
            s += 1 << order;
        }
        if end >= n {
            break;
        }
        pos = end;
    }
    hist
}

#[kunit_tests(moreram_bank)]
mod tests {
    use super::{largest_free_block, mark};
    use kernel::{
        bitmap::BitmapVec,
        gpu::buddy::{GpuBuddy, GpuBuddyAllocFlags, GpuBuddyAllocMode, GpuBuddyParams},
        page::{PAGE_SHIFT, PAGE_SIZE},
        prelude::*,
        ptr::Alignment,
    };

    const P: u64 = PAGE_SIZE as u64;

    #[test]
    fn largest_free_of_empty_and_full() -> Result {
        let mut used = BitmapVec::new(64, GFP_KERNEL)?;
        assert_eq!(largest_free_block(&used), 64);
        mark(&mut used, 0, 64 * P, true);
        assert_eq!(largest_free_block(&used), 0);
        Ok(())
    }

    #[test]
    fn largest_free_is_aligned() -> Result {
        let mut used = BitmapVec::new(64, GFP_KERNEL)?;
        // Page 1 taken: [2, 64) is free, but the largest aligned block is [32, 64).
        mark(&mut used, P, P, true);
        assert_eq!(largest_free_block(&used), 32);
        // Page 40 taken as well: [48, 64) is the largest aligned block left.
        mark(&mut used, 40 * P, P, true);
        assert_eq!(largest_free_block(&used), 16);
        // Freed again: back to 32, then 64.
        mark(&mut used, 40 * P, P, false);
        assert_eq!(largest_free_block(&used), 32);
        mark(&mut used, P, P, false);
        assert_eq!(largest_free_block(&used), 64);
        Ok(())
    }

    #[test]
    fn largest_free_of_odd_runs() -> Result {
        // Free pages 3..7 only: the aligned blocks inside are [4, 6) and [6, 7): 2 pages.
        let mut used = BitmapVec::new(16, GFP_KERNEL)?;
        mark(&mut used, 0, 3 * P, true);
        mark(&mut used, 7 * P, 9 * P, true);
        assert_eq!(largest_free_block(&used), 2);
        Ok(())
    }

    /// The bitmap mirror follows a real buddy allocator: after allocations and frees, the
    /// largest free block it reports is one the buddy can hand out contiguously.
    #[test]
    fn mirror_follows_the_buddy() -> Result {
        let size = 256 * P;
        let buddy = GpuBuddy::new(GpuBuddyParams {
            base_offset: 0,
            size,
            chunk_size: Alignment::new::<PAGE_SIZE>(),
        })?;
        let mut used = BitmapVec::new((size >> PAGE_SHIFT) as usize, GFP_KERNEL)?;
        let mut held = KVec::new();
        for pages in [3u64, 64, 1, 17] {
            let b = KBox::pin_init(
                buddy.alloc_blocks(
                    GpuBuddyAllocMode::Simple,
                    pages * P,
                    Alignment::new::<PAGE_SIZE>(),
                    GpuBuddyAllocFlags::default(),
                ),
                GFP_KERNEL,
            )?;
            for blk in b.iter() {
                mark(&mut used, blk.offset(), blk.size(), true);
            }
            held.push(b, GFP_KERNEL)?;
        }
        assert_eq!(buddy.avail(), size - 85 * P);
        let largest = largest_free_block(&used);
        assert!(largest > 0);
        // The buddy can serve exactly that much contiguously...
        let c = KBox::pin_init(
            buddy.alloc_blocks(
                GpuBuddyAllocMode::Simple,
                largest * P,
                Alignment::new::<PAGE_SIZE>(),
                GpuBuddyAllocFlags::from(kernel::gpu::buddy::GpuBuddyAllocFlag::Contiguous),
            ),
            GFP_KERNEL,
        );
        assert!(c.is_ok());
        Ok(())
    }
}
