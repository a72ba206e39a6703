// SPDX-License-Identifier: GPL-2.0

//! Per-process pools, watermarks, and the scavenging protocol.
//!
//! A process's pool holds memory it took from the tier and does not use now:
//!
//! - VRAM as *reserved capacity* of a bank, in pages. The pages themselves are free in the buddy
//!   allocator, but nobody else may allocate into another process's reservation, and a
//!   non-contiguous buddy allocation of `n` pages succeeds whenever `n` pages are free, so the
//!   reservation is as good as the pages (and costs no splitting of blocks). Pages are zeroed
//!   when they are handed out, as always.
//! - system pages as pages, kept for reuse and zeroed when handed out again; the shrinker gives
//!   them back to the kernel under memory pressure.
//!
//! When the unreserved free memory of a bank drops below its low watermark, every process with
//! pool memory there is asked to give it back (the [`Request`]s the calls here return, which the
//! front delivers) and given a deadline; after it, the kernel reclaims what is left. Below the
//! min watermark, and whenever an allocation does not fit, pools of other processes are
//! reclaimed at once.
//!
//! # Locks
//!
//! [`Pools::pools`] is taken after an allocation's state (pages freed by an allocation are
//! credited under it) and before the bank registry and a bank's locks (admission allocates from
//! the bank under it). The shrinker only ever try-locks it.

use kernel::{
    bindings, new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

use super::shrinker::Shrink;
use crate::{
    bank::Bank,
    bank::ZapRange,
    memory::{
        pages::{Pages, SystemPages, TierPage},
        Space, Supply,
    },
    process::Process,
};

/// CLOCK_MONOTONIC nanoseconds, as the ABI reports deadlines. (`kernel::time::Instant` does not
/// give its value out.)
pub(crate) fn now_ns() -> i64 {
    // SAFETY: no preconditions.
    unsafe { bindings::ktime_get() }
}

/// A scavenge request to deliver: `process` should give back `bytes` of `bank` by `deadline_ns`.
pub(crate) struct Request {
    pub(crate) process: Process,
    pub(crate) bank: u32,
    pub(crate) bytes: u64,
    pub(crate) deadline_ns: i64,
}

/// One process's pool.
struct Pool {
    process: Process,
    /// Reserved VRAM, per bank index, in pages.
    vram: KVec<(u32, u64)>,
    /// System pages kept for reuse.
    system: KVVec<TierPage>,
    /// Pending scavenge deadlines, per bank index ([`now_ns`]).
    deadlines: KVec<(u32, i64)>,
}

impl Pool {
    fn new(process: Process) -> Self {
        Self {
            process,
            vram: KVec::new(),
            system: KVVec::new(),
            deadlines: KVec::new(),
        }
    }

    fn vram_pages(&self, bank: u32) -> u64 {
        self.vram
            .iter()
            .find(|(b, _)| *b == bank)
            .map_or(0, |(_, n)| *n)
    }

    fn vram_total(&self) -> u64 {
        self.vram.iter().map(|(_, n)| *n).sum()
    }

    fn set_vram(&mut self, bank: u32, pages: u64) -> Result {
        if let Some(e) = self.vram.iter_mut().find(|(b, _)| *b == bank) {
            e.1 = pages;
        } else if pages > 0 {
            self.vram.push((bank, pages), GFP_KERNEL)?;
        }
        if pages == 0 {
            self.deadlines.retain(|(b, _)| *b != bank);
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.system.is_empty() && self.vram.iter().all(|(_, n)| *n == 0)
    }
}

/// What debugfs shows of one pool.
pub(crate) struct PoolReport {
    pub(crate) pid: i32,
    pub(crate) system_pages: usize,
    pub(crate) vram: KVec<(u32, u64)>,
    pub(crate) deadlines: KVec<(u32, i64)>,
}

/// Every process's pool.
#[pin_data]
pub(crate) struct Pools {
    /// The pools, one per process that has one. See the module documentation for the lock order.
    #[pin]
    pools: Mutex<KVec<Pool>>,
    /// System pages in all pools, for the shrinker's count (read without the lock).
    system_pages: Atomic<u64>,
}

impl Pools {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pools <- new_mutex!(KVec::new()),
            system_pages: Atomic::new(0),
        })
    }

    /// Drops the pools of processes that are gone or exiting, and the reservations whose scavenge
    /// deadline has passed. The kernel's side of the protocol: it runs whenever the tier is
    /// allocated from or reported on, so expired reservations never stand in anybody's way.
    fn tidy(&self, pools: &mut KVec<Pool>) {
        let now = now_ns();
        pools.retain(|p| {
            let gone = p.process.is_exiting();
            if gone {
                self.system_pages.fetch_sub(p.system.len() as u64, Relaxed);
            }
            !gone
        });
        for p in pools.iter_mut() {
            while let Some(&(bank, _)) = p.deadlines.iter().find(|(_, d)| *d <= now) {
                // Setting a bank's reservation to 0 drops its deadline too: this ends.
                let _ = p.set_vram(bank, 0);
            }
        }
        pools.retain(|p| !p.is_empty() || !p.deadlines.is_empty());
    }

    /// Runs `alloc` for `pages` pages of `bank` on behalf of `p`, if they fit in what is neither
    /// allocated nor reserved for somebody else; reclaims other pools first when they do not.
    /// Returns what `alloc` made and the scavenge requests the allocation triggered.
    pub(crate) fn admit_vram<T>(
        &self,
        bank: &Bank,
        p: &Process,
        pages: u64,
        alloc: impl FnOnce() -> Result<T>,
    ) -> Result<(T, KVec<Request>)> {
        let index = bank.index();
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        let free = bank.free() >> PAGE_SHIFT;
        let others = reserved(&pools, index, Some(p));
        if free < others + pages {
            // Under pressure: take pool pages back synchronously before failing (the caller then
            // falls back to system pages).
            reclaim(&mut pools, index, p, others + pages - free);
            if free < reserved(&pools, index, Some(p)) + pages {
                return Err(ENOSPC);
            }
        }
        let t = alloc()?;
        let own = pool_of(&mut pools, p)?;
        let from_own = own.vram_pages(index).min(pages);
        own.set_vram(index, own.vram_pages(index) - from_own)?;
        let requests = watermarks(&mut pools, bank, p)?;
        Ok((t, requests))
    }

    /// Up to `n` system pages from `p`'s pool, zeroed.
    pub(crate) fn take_pages(&self, p: &Process, n: usize) -> KVVec<TierPage> {
        let mut out = KVVec::new();
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        if let Some(pool) = pools.iter_mut().find(|x| x.process == *p) {
            while out.len() < n {
                let Some(page) = pool.system.pop() else { break };
                page.scrub();
                self.system_pages.fetch_sub(1, Relaxed);
                if out.push(page, GFP_KERNEL).is_err() {
                    break;
                }
            }
        }
        out
    }

    /// `MORERAM_IOC_RESERVE` of VRAM: `pages` pages of `bank` into `p`'s pool.
    pub(crate) fn reserve_vram(
        &self,
        bank: &Bank,
        p: &Process,
        pages: u64,
    ) -> Result<KVec<Request>> {
        let index = bank.index();
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        // The bank's device may have gone since the caller found it: its index may be a new
        // bank's by now (the unbind forgets the bank's pools after revoking it, under this lock).
        if bank.is_revoked() {
            return Err(ENODEV);
        }
        let free = bank.free() >> PAGE_SHIFT;
        // Only what nobody has: a reservation never takes another's pool.
        if reserved(&pools, index, None) + pages > free {
            return Err(ENOSPC);
        }
        let pool = pool_of(&mut pools, p)?;
        let n = pool.vram_pages(index);
        pool.set_vram(index, n + pages)?;
        watermarks(&mut pools, bank, p)
    }

    /// `MORERAM_IOC_RESERVE` of system pages: `ENOMEM` at once for more than are available.
    pub(crate) fn reserve_system(&self, p: &Process, pages: usize) -> Result {
        SystemPages::fits(pages as u64)?;
        let mut fresh = KVVec::with_capacity(pages, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..pages {
            // Room was made above.
            let _ = fresh.push_within_capacity(TierPage::alloc()?);
        }
        let mut pools = self.pools.lock();
        let pool = pool_of(&mut pools, p)?;
        pool.system.reserve(pages, GFP_KERNEL_ACCOUNT)?;
        for page in fresh.into_iter() {
            let _ = pool.system.push_within_capacity(page);
            self.system_pages.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// `MORERAM_IOC_SCAVENGE`: gives back every unused page of `p`'s pool. Returns the bytes of
    /// VRAM and of system pages given back.
    pub(crate) fn scavenge(&self, p: &Process) -> (u64, u64) {
        let gone = {
            let mut pools = self.pools.lock();
            let Some(i) = pools.iter().position(|x| x.process == *p) else {
                return (0, 0);
            };
            pools.remove(i).ok()
        };
        let Some(pool) = gone else { return (0, 0) };
        let system = pool.system.len() as u64;
        self.system_pages.fetch_sub(system, Relaxed);
        // The pages themselves are freed here, outside the lock.
        (pool.vram_total() << PAGE_SHIFT, system << PAGE_SHIFT)
    }

    /// Bytes of VRAM and of system pages in `p`'s pool.
    pub(crate) fn sizes(&self, p: &Process) -> (u64, u64) {
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        pools.iter().find(|x| x.process == *p).map_or((0, 0), |x| {
            (
                x.vram_total() << PAGE_SHIFT,
                (x.system.len() as u64) << PAGE_SHIFT,
            )
        })
    }

    /// Bytes of bank `bank` reserved in all pools.
    pub(crate) fn pooled(&self, bank: u32) -> u64 {
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        reserved(&pools, bank, None) << PAGE_SHIFT
    }

    /// `bank`'s free bytes, largest free block and pooled bytes, read together: admission and
    /// reservations change them only under the pools' lock, so pooled never exceeds free. A
    /// bank whose device went away has no reservations (the unbind forgot them under this
    /// lock); those of its index now are a new bank's, which a caller holding the old one must
    /// not be shown.
    pub(crate) fn usage(&self, bank: &Bank) -> (u64, u64, u64) {
        let mut pools = self.pools.lock();
        self.tidy(&mut pools);
        let (free, largest) = bank.usage();
        let pooled = if bank.is_revoked() {
            0
        } else {
            reserved(&pools, bank.index(), None) << PAGE_SHIFT
        };
        (free, largest, pooled)
    }

    /// A bank went away: its reservations go with it.
    pub(crate) fn forget_bank(&self, bank: u32) {
        let mut pools = self.pools.lock();
        for p in pools.iter_mut() {
            let _ = p.set_vram(bank, 0);
        }
    }

    /// Every pool, for debugfs.
    pub(crate) fn report(&self) -> Result<KVec<PoolReport>> {
        let pools = self.pools.lock();
        let mut out = KVec::with_capacity(pools.len(), GFP_KERNEL)?;
        for p in pools.iter() {
            let mut vram = KVec::with_capacity(p.vram.len(), GFP_KERNEL)?;
            vram.extend_from_slice(&p.vram, GFP_KERNEL)?;
            let mut deadlines = KVec::with_capacity(p.deadlines.len(), GFP_KERNEL)?;
            deadlines.extend_from_slice(&p.deadlines, GFP_KERNEL)?;
            out.push(
                PoolReport {
                    pid: p.process.nr(),
                    system_pages: p.system.len(),
                    vram,
                    deadlines,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(out)
    }
}

impl Supply for Pools {
    /// Pages of a freed allocation go back to the bank and to the pool of the process that owned
    /// them, under the pools' lock: an admission that found them free before they were credited
    /// would leave the pool holding pages the bank no longer has. Not to the pool if the bank's
    /// device went away: its index may be a new bank's by now, which never had them. (The unbind
    /// forgets the bank's pools after revoking it, under this lock: a credit made before the
    /// revocation goes too.)
    fn vram(
        &self,
        owner: &Process,
        bank: &Bank,
        pages: u64,
        give_back: &mut dyn FnMut() -> Result,
    ) -> Result {
        let mut pools = self.pools.lock();
        give_back()?;
        if bank.is_revoked() {
            return Ok(());
        }
        if let Ok(pool) = pool_of(&mut pools, owner) {
            let n = pool.vram_pages(bank.index());
            let _ = pool.set_vram(bank.index(), n + pages);
        }
        Ok(())
    }

    /// A system page of a freed allocation goes to the pool of the process that owned it.
    fn page(&self, owner: &Process, page: TierPage) {
        let mut pools = self.pools.lock();
        if let Ok(pool) = pool_of(&mut pools, owner) {
            if pool.system.push(page, GFP_KERNEL).is_ok() {
                self.system_pages.fetch_add(1, Relaxed);
            }
        }
    }

    /// A copy made at fork goes to the bank of its original if that leaves the bank above its
    /// low watermark, counting every pool as used: a fork never takes a pool or makes anybody
    /// scavenge. Else, or if the bank is gone, to system pages.
    fn fork_pages(
        &self,
        space: &Arc<Space>,
        like: &Pages,
        npages: u64,
        range: ZapRange,
    ) -> Result<Pages> {
        if let Pages::Vram(v) = like {
            let bank = v.bank();
            let mut pools = self.pools.lock();
            self.tidy(&mut pools);
            let free = bank.free() >> PAGE_SHIFT;
            let room = free.saturating_sub(reserved(&pools, bank.index(), None));
            if room >= npages.saturating_add(bank.watermarks().low) {
                let blocks = bank.alloc(npages << PAGE_SHIFT, false, range);
                drop(pools);
                if let Ok(blocks) = blocks {
                    blocks.zero()?;
                    return Ok(Pages::Vram(blocks));
                }
            }
        }
        Ok(Pages::System(SystemPages::new(
            space,
            npages,
            KVVec::new(),
        )?))
    }
}

impl Shrink for Pools {
    fn count(&self) -> u64 {
        self.system_pages.load(Relaxed)
    }

    /// Frees up to `want` pooled system pages, from the largest pools first; `None` when the
    /// pools are busy (reclaim can run under any of our locks: only ever try).
    fn scan(&self, want: u64) -> Option<u64> {
        let mut pools = self.pools.try_lock()?;
        let mut freed = KVec::new();
        let mut n = 0;
        while n < want {
            let Some(pool) = pools
                .iter_mut()
                .filter(|p| !p.system.is_empty())
                .max_by_key(|p| p.system.len())
            else {
                break;
            };
            let Some(page) = pool.system.pop() else { break };
            n += 1;
            // The pages go back to the kernel outside the lock, below; one that finds no room
            // here goes back at once.
            if freed.push(page, GFP_NOWAIT).is_err() {
                break;
            }
        }
        drop(pools);
        self.system_pages.fetch_sub(n, Relaxed);
        drop(freed);
        Some(n)
    }
}

fn pool_of<'a>(pools: &'a mut KVec<Pool>, p: &Process) -> Result<&'a mut Pool> {
    let i = match pools.iter().position(|x| x.process == *p) {
        Some(i) => i,
        None => {
            pools.push(Pool::new(p.clone()), GFP_KERNEL)?;
            pools.len() - 1
        }
    };
    Ok(&mut pools[i])
}

/// VRAM pages of `bank` reserved in pools, except `except`'s.
fn reserved(pools: &KVec<Pool>, bank: u32, except: Option<&Process>) -> u64 {
    pools
        .iter()
        .filter(|p| Some(&p.process) != except)
        .map(|p| p.vram_pages(bank))
        .sum()
}

/// Takes pages of `bank` back from other processes' pools, largest first, until `want` more
/// pages are unreserved or nothing is left to take. Returns the pages taken.
fn reclaim(pools: &mut KVec<Pool>, bank: u32, except: &Process, mut want: u64) -> u64 {
    let mut taken = 0;
    while want > 0 {
        let Some(p) = pools
            .iter_mut()
            .filter(|p| p.process != *except && p.vram_pages(bank) > 0)
            .max_by_key(|p| p.vram_pages(bank))
        else {
            break;
        };
        let n = p.vram_pages(bank);
        let take = n.min(want);
        let _ = p.set_vram(bank, n - take);
        taken += take;
        want -= take;
    }
    taken
}

/// Checks `bank`'s watermarks after an allocation by `p`: below min, reclaims other pools at
/// once; below low, asks every process with pool pages there that has not been asked yet.
fn watermarks(pools: &mut KVec<Pool>, bank: &Bank, p: &Process) -> Result<KVec<Request>> {
    let index = bank.index();
    let w = bank.watermarks();
    let free = bank.free() >> PAGE_SHIFT;
    let (take, ask) = pressure(free, reserved(pools, index, None), w.low, w.min);
    if take > 0 {
        reclaim(pools, index, p, take);
    }
    let mut requests = KVec::new();
    if ask {
        let deadline = now_ns().saturating_add((w.deadline_ms as i64).saturating_mul(1_000_000));
        for pool in pools.iter_mut() {
            let n = pool.vram_pages(index);
            if n == 0 || pool.deadlines.iter().any(|(b, _)| *b == index) {
                continue;
            }
            pool.deadlines.push((index, deadline), GFP_KERNEL)?;
            requests.push(
                Request {
                    process: pool.process.clone(),
                    bank: index,
                    bytes: n << PAGE_SHIFT,
                    deadline_ns: deadline,
                },
                GFP_KERNEL,
            )?;
        }
    }
    Ok(requests)
}

/// The watermark rules, in pages: with `free` pages free of which `pooled` are in pools, how
/// many pool pages to take back at once (enough to get back to `min`), and whether to ask the
/// pool holders (what is left available is below `low`).
fn pressure(free: u64, pooled: u64, low: u64, min: u64) -> (u64, bool) {
    let available = free.saturating_sub(pooled);
    let take = min.saturating_sub(available).min(pooled);
    let after = available + take;
    (take, after < low && pooled > take)
}

#[kunit_tests(moreram_pool)]
mod tests {
    use super::{pressure, reclaim, reserved, Pool};
    use crate::process::Process;
    use kernel::prelude::*;

    fn pool(p: &Process, bank: u32, pages: u64) -> Result<Pool> {
        let mut pool = Pool::new(p.clone());
        pool.vram.push((bank, pages), GFP_KERNEL)?;
        Ok(pool)
    }

    #[test]
    fn reservations_and_reclaim() -> Result {
        // Two processes: this KUnit thread's, and init's.
        let me = Process::current()?;
        let init = Process::find(1)?;
        let mut pools = KVec::new();
        pools.push(pool(&me, 0, 10)?, GFP_KERNEL)?;
        pools.push(pool(&init, 0, 30)?, GFP_KERNEL)?;
        pools.push(pool(&init, 1, 7)?, GFP_KERNEL)?;
        assert_eq!(reserved(&pools, 0, None), 40);
        assert_eq!(reserved(&pools, 0, Some(&me)), 30);
        assert_eq!(reserved(&pools, 1, None), 7);
        // Reclaim for `me` takes from others only, never more than asked.
        assert_eq!(reclaim(&mut pools, 0, &me, 12), 12);
        assert_eq!(reserved(&pools, 0, Some(&me)), 18);
        assert_eq!(reserved(&pools, 0, None), 28);
        // Asking for more than there is takes what there is.
        assert_eq!(reclaim(&mut pools, 0, &me, 100), 18);
        assert_eq!(reserved(&pools, 0, None), 10);
        assert_eq!(reserved(&pools, 1, None), 7);
        Ok(())
    }

    #[test]
    fn watermark_rules() {
        // Plenty available: nothing to do.
        assert_eq!(pressure(1000, 100, 200, 50), (0, false));
        // Below low, above min: ask, take nothing.
        assert_eq!(pressure(1000, 850, 200, 50), (0, true));
        // Below min: take back up to min, and still ask for the rest.
        assert_eq!(pressure(1000, 980, 200, 50), (30, true));
        // Below min with too little pooled to reach it: take all, nothing left to ask for.
        assert_eq!(pressure(40, 20, 200, 50), (20, false));
        // Below low but nothing pooled: nobody to ask.
        assert_eq!(pressure(100, 0, 200, 50), (0, false));
        // Exactly at the watermarks is not below them.
        assert_eq!(pressure(1000, 800, 200, 50), (0, false));
    }
}
