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
//! pool memory there is told (see `file.rs`) and given a deadline; after it, the kernel reclaims
//! what is left. Below the min watermark, and whenever an allocation does not fit, pools of
//! other processes are reclaimed at once.

use kernel::{
    bindings,
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{atomic::Atomic, atomic::Relaxed},
};

use crate::{bank::Bank, rights::Process, shim};

/// A scavenge request to deliver: `process` should give back `bytes` of `bank` by `deadline`.
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
    system: KVec<Page>,
    /// Pending scavenge deadlines, per bank index (`ktime_get()` nanoseconds).
    deadlines: KVec<(u32, i64)>,
}

impl Pool {
    fn vram_pages(&self, bank: u32) -> u64 {
        self.vram
            .iter()
            .find(|(b, _)| *b == bank)
            .map_or(0, |(_, n)| *n)
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

kernel::sync::global_lock! {
    // SAFETY: `init` runs in module init, before `/dev/moreram` exists.
    unsafe(uninit) static POOLS: Mutex<KVec<Pool>> = KVec::new();
}

/// System pages in all pools, for the shrinker's count.
static POOLED_SYSTEM: Atomic<u64> = Atomic::new(0);

/// Initialises the pools. Called once, from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any other use of `POOLS`.
    unsafe { POOLS.init() };
}

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`).
pub(crate) fn now_ns() -> i64 {
    // SAFETY: no preconditions.
    unsafe { bindings::ktime_get() }
}

fn pool_of<'a>(pools: &'a mut KVec<Pool>, p: &Process) -> Result<&'a mut Pool> {
    let i = match pools.iter().position(|x| x.process == *p) {
        Some(i) => i,
        None => {
            pools.push(
                Pool {
                    process: p.clone(),
                    vram: KVec::new(),
                    system: KVec::new(),
                    deadlines: KVec::new(),
                },
                GFP_KERNEL,
            )?;
            pools.len() - 1
        }
    };
    Ok(&mut pools[i])
}

/// Drops the pools of processes that are gone or exiting, and the reservations whose scavenge
/// deadline has passed. The kernel's side of the protocol: it runs whenever the tier is
/// allocated from or reported on, so expired reservations never stand in anybody's way.
fn tidy(pools: &mut KVec<Pool>) {
    let now = now_ns();
    pools.retain(|p| {
        // SAFETY: `moreram_pid_exiting` takes its own RCU read lock.
        let gone = unsafe { shim::moreram_pid_exiting(p.process.as_ptr()) };
        if gone {
            POOLED_SYSTEM.fetch_sub(p.system.len() as u64, Relaxed);
        }
        !gone
    });
    for p in pools.iter_mut() {
        let expired: KVec<u32> = {
            let mut v = KVec::new();
            for (b, d) in p.deadlines.iter() {
                if *d <= now {
                    let _ = v.push(*b, GFP_KERNEL);
                }
            }
            v
        };
        for b in expired.iter() {
            let _ = p.set_vram(*b, 0);
        }
    }
    pools.retain(|p| !p.is_empty() || !p.deadlines.is_empty());
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

/// Runs `alloc` for `pages` pages of `bank` on behalf of `p`, if they fit in what is neither
/// allocated nor reserved for somebody else; reclaims other pools first when they do not.
/// Returns the allocation and the scavenge requests the allocation triggered, to deliver with
/// no lock held.
pub(crate) fn admit_vram<T>(
    bank: &Bank,
    p: &Process,
    pages: u64,
    alloc: impl FnOnce() -> Result<T>,
) -> Result<(T, KVec<Request>)> {
    let index = bank.index();
    let mut pools = POOLS.lock();
    tidy(&mut pools);
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

/// Checks `bank`'s watermarks after an allocation by `p`: below min, reclaims other pools at
/// once; below low, asks every process with pool pages there that has not been asked yet.
fn watermarks(pools: &mut KVec<Pool>, bank: &Bank, p: &Process) -> Result<KVec<Request>> {
    let index = bank.index();
    let (low, min, deadline_ms) = bank.watermarks();
    let free = bank.free() >> PAGE_SHIFT;
    let (take, ask) = pressure(free, reserved(pools, index, None), low, min);
    if take > 0 {
        reclaim(pools, index, p, take);
    }
    let mut requests = KVec::new();
    if ask {
        let deadline = now_ns().saturating_add((deadline_ms as i64).saturating_mul(1_000_000));
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

/// Pages of a freed allocation go to the pool of the process that owned them.
pub(crate) fn credit_vram(p: &Process, bank: u32, pages: u64) {
    let mut pools = POOLS.lock();
    if let Ok(pool) = pool_of(&mut pools, p) {
        let n = pool.vram_pages(bank);
        let _ = pool.set_vram(bank, n + pages);
    }
}

/// A system page of a freed allocation goes to the pool of the process that owned it.
pub(crate) fn credit_page(p: &Process, page: Page) {
    let mut pools = POOLS.lock();
    if let Ok(pool) = pool_of(&mut pools, p) {
        if pool.system.push(page, GFP_KERNEL).is_ok() {
            POOLED_SYSTEM.fetch_add(1, Relaxed);
        }
    }
}

/// Up to `n` system pages from `p`'s pool, zeroed.
pub(crate) fn take_pages(p: &Process, n: usize) -> KVec<Page> {
    let mut out = KVec::new();
    let mut pools = POOLS.lock();
    tidy(&mut pools);
    if let Some(pool) = pools.iter_mut().find(|x| x.process == *p) {
        while out.len() < n {
            let Some(page) = pool.system.pop() else { break };
            // SAFETY: the whole page; it is ours and nobody maps it.
            let _ = unsafe { page.fill_zero_raw(0, PAGE_SIZE) };
            POOLED_SYSTEM.fetch_sub(1, Relaxed);
            if out.push(page, GFP_KERNEL).is_err() {
                break;
            }
        }
    }
    out
}

/// `MORERAM_IOC_RESERVE` of VRAM: `pages` pages of `bank` into `p`'s pool.
pub(crate) fn reserve_vram(bank: &Bank, p: &Process, pages: u64) -> Result<KVec<Request>> {
    let index = bank.index();
    let mut pools = POOLS.lock();
    tidy(&mut pools);
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

/// `MORERAM_IOC_RESERVE` of system pages.
pub(crate) fn reserve_system(p: &Process, pages: usize) -> Result {
    let mut fresh = KVec::with_capacity(pages, GFP_KERNEL)?;
    for _ in 0..pages {
        fresh.push(
            Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN).map_err(|_| ENOMEM)?,
            GFP_KERNEL,
        )?;
    }
    let mut pools = POOLS.lock();
    let pool = pool_of(&mut pools, p)?;
    pool.system.reserve(pages, GFP_KERNEL)?;
    for page in fresh.into_iter() {
        let _ = pool.system.push_within_capacity(page);
        POOLED_SYSTEM.fetch_add(1, Relaxed);
    }
    Ok(())
}

/// `MORERAM_IOC_SCAVENGE`: gives back every unused page of `p`'s pool. Returns the bytes of
/// VRAM and of system pages given back.
pub(crate) fn scavenge(p: &Process) -> (u64, u64) {
    let gone = {
        let mut pools = POOLS.lock();
        let Some(i) = pools.iter().position(|x| x.process == *p) else {
            return (0, 0);
        };
        pools.remove(i).ok()
    };
    let Some(pool) = gone else { return (0, 0) };
    let vram: u64 = pool.vram.iter().map(|(_, n)| *n).sum();
    let system = pool.system.len() as u64;
    POOLED_SYSTEM.fetch_sub(system, Relaxed);
    // The pages themselves are freed here, outside the lock.
    (vram << PAGE_SHIFT, system << PAGE_SHIFT)
}

/// Bytes of VRAM and of system pages in `p`'s pool.
pub(crate) fn sizes(p: &Process) -> (u64, u64) {
    let mut pools = POOLS.lock();
    tidy(&mut pools);
    pools.iter().find(|x| x.process == *p).map_or((0, 0), |x| {
        let v: u64 = x.vram.iter().map(|(_, n)| *n).sum();
        (v << PAGE_SHIFT, (x.system.len() as u64) << PAGE_SHIFT)
    })
}

/// Bytes of `bank` reserved in all pools.
pub(crate) fn pooled(bank: u32) -> u64 {
    let mut pools = POOLS.lock();
    tidy(&mut pools);
    reserved(&pools, bank, None) << PAGE_SHIFT
}

/// A bank went away: its reservations go with it.
pub(crate) fn forget_bank(bank: u32) {
    let mut pools = POOLS.lock();
    for p in pools.iter_mut() {
        let _ = p.set_vram(bank, 0);
    }
}

/// The pools, for `moreram/processes` in debugfs.
pub(crate) fn debug_print(m: &kernel::seq_file::SeqFile) {
    let pools = POOLS.lock();
    for p in pools.iter() {
        kernel::seq_print!(
            m,
            "pool of pid {}: {} system pages",
            p.process.nr(),
            p.system.len()
        );
        for (b, n) in p.vram.iter() {
            kernel::seq_print!(m, ", bank {}: {} pages", b, n);
        }
        for (b, d) in p.deadlines.iter() {
            kernel::seq_print!(m, ", bank {} asked back by {} ns", b, d);
        }
        kernel::seq_print!(m, "\n");
    }
}

/// Drops every pool (module exit).
pub(crate) fn clear() {
    let gone = core::mem::take(&mut *POOLS.lock());
    POOLED_SYSTEM.store(0, Relaxed);
    drop(gone);
}

// --- the shrinker: pooled system pages back to the kernel under memory pressure -------------

/// The registered shrinker, or NULL.
struct ShrinkerPtr(*mut bindings::shrinker);

// SAFETY: the pointer is only used to free the shrinker at module exit.
unsafe impl Send for ShrinkerPtr {}

kernel::sync::global_lock! {
    // SAFETY: `init` runs in module init.
    unsafe(uninit) static SHRINKER: Mutex<ShrinkerPtr> = ShrinkerPtr(core::ptr::null_mut());
}

/// # Safety
///
/// Called by the mm with our registered shrinker.
unsafe extern "C" fn count_objects(
    _s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> kernel::ffi::c_ulong {
    let n = POOLED_SYSTEM.load(Relaxed) as kernel::ffi::c_ulong;
    if n == 0 {
        bindings::SHRINK_EMPTY as kernel::ffi::c_ulong
    } else {
        n
    }
}

/// # Safety
///
/// Called by the mm with our registered shrinker and a valid `shrink_control`.
unsafe extern "C" fn scan_objects(
    _s: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> kernel::ffi::c_ulong {
    // SAFETY: the mm passes a valid shrink_control.
    let want = unsafe { (*sc).nr_to_scan };
    // Reclaim can run under any of our locks: only ever try.
    let Some(mut pools) = POOLS.try_lock() else {
        return bindings::SHRINK_STOP as kernel::ffi::c_ulong;
    };
    let mut freed = KVec::new();
    while freed.len() < want {
        let Some(pool) = pools
            .iter_mut()
            .filter(|p| !p.system.is_empty())
            .max_by_key(|p| p.system.len())
        else {
            break;
        };
        match pool.system.pop() {
            Some(page) => {
                if freed.push(page, GFP_NOWAIT).is_err() {
                    break;
                }
            }
            None => break,
        }
    }
    drop(pools);
    POOLED_SYSTEM.fetch_sub(freed.len() as u64, Relaxed);
    let n = freed.len();
    drop(freed);
    n as kernel::ffi::c_ulong
}

/// Registers the shrinker. Called once, from module init.
pub(crate) fn register_shrinker() -> Result {
    // SAFETY: called once, before any other use of `SHRINKER`.
    unsafe { SHRINKER.init() };
    // SAFETY: the format is a plain static string with no conversion.
    let s = unsafe { bindings::shrinker_alloc(0, c"moreram-pool".as_char_ptr()) };
    if s.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `s` is a freshly allocated, unregistered shrinker we own.
    unsafe {
        (*s).count_objects = Some(count_objects);
        (*s).scan_objects = Some(scan_objects);
        // Pooled pages cost nothing to make again: trim them aggressively under pressure.
        (*s).seeks = 0;
        bindings::shrinker_register(s);
    }
    SHRINKER.lock().0 = s;
    Ok(())
}

/// Unregisters and frees the shrinker (module exit), before the pools go.
pub(crate) fn unregister_shrinker() {
    let s = core::mem::take(&mut SHRINKER.lock().0);
    if !s.is_null() {
        // SAFETY: registered in `register_shrinker`; `shrinker_free` waits for running scans.
        unsafe { bindings::shrinker_free(s) };
    }
}

#[kunit_tests(moreram_pool)]
mod tests {
    use super::{pressure, reclaim, reserved, Pool};
    use crate::rights::Process;
    use kernel::prelude::*;

    fn pool(p: &Process, bank: u32, pages: u64) -> Result<Pool> {
        let mut vram = KVec::new();
        vram.push((bank, pages), GFP_KERNEL)?;
        Ok(Pool {
            process: p.clone(),
            vram,
            system: KVec::new(),
            deadlines: KVec::new(),
        })
    }

    #[test]
    fn reservations_and_reclaim() -> Result {
        // Two processes: this KUnit thread's, and init's.
        let me = Process::current();
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
