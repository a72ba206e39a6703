//! Tests of pools, scavenging, watermarks and the low-memory notification.

use crate::{
    check, expect_errno,
    owners::{spawn, Child},
    Test, TestResult,
};
use moreram::{Bank, Moreram, Placement, Tier};
use std::io;

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

/// The tests of this file. `reload` checks the knobs after a reload with a module parameter.
pub const TESTS: &[Test] = &[
    Test::new("watermark-sysfs", &["pools", "reload"], |_| {
        watermark_sysfs()
    }),
    Test::new("pool-reserve-scavenge", &["pools"], |_| reserve_scavenge()),
    Test::new("scavenge-notify-8", &["pools"], |_| notify(8)),
    Test::new("scavenge-notify-64", &["pools"], |_| notify(64)),
    Test::new("scavenge-deadline", &["pools"], |_| deadline()),
    Test::new("scavenge-signal", &["pools"], |_| signal()),
    Test::new("pool-shrinker", &["pools"], |_| shrinker()),
    Test::new("pool-shrinker-pressure", &["pools"], |_| {
        shrinker_pressure()
    }),
];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

pub(crate) fn bochs(mr: &Moreram) -> Result<Bank, String> {
    mr.banks()
        .map_err(e("BANKS"))?
        .into_iter()
        .find(|b| b.vendor == 0x1234)
        .ok_or_else(|| "no bochs bank".to_string())
}

fn knob(b: &Bank, name: &str) -> String {
    format!("/sys/bus/pci/devices/{}/moreram/{name}", b.pci)
}

fn read_knob(b: &Bank, name: &str) -> Result<u64, String> {
    let p = knob(b, name);
    std::fs::read_to_string(&p)
        .map_err(|er| format!("{p}: {er}"))?
        .trim()
        .parse()
        .map_err(|er| format!("{p}: {er}"))
}

fn write_knob(b: &Bank, name: &str, v: &str) -> io::Result<()> {
    std::fs::write(knob(b, name), v)
}

/// Sets the bochs bank's watermarks and deadline for a test; puts the old ones back on drop.
pub(crate) struct Knobs {
    bank: Bank,
    old: [u64; 3],
}

impl Knobs {
    pub(crate) fn set(bank: &Bank, low: u64, min: u64, deadline_ms: u64) -> Result<Self, String> {
        let old = [
            read_knob(bank, "low_watermark")?,
            read_knob(bank, "min_watermark")?,
            read_knob(bank, "scavenge_deadline_ms")?,
        ];
        let w = |n: &str, v: u64| {
            write_knob(bank, n, &v.to_string()).map_err(|er| format!("{n}={v}: {er}"))
        };
        w("min_watermark", 0)?;
        w("low_watermark", low)?;
        w("min_watermark", min)?;
        w("scavenge_deadline_ms", deadline_ms)?;
        Ok(Knobs {
            bank: bank.clone(),
            old,
        })
    }
}

impl Drop for Knobs {
    fn drop(&mut self) {
        let _ = write_knob(&self.bank, "min_watermark", "0");
        let _ = write_knob(&self.bank, "low_watermark", &self.old[0].to_string());
        let _ = write_knob(&self.bank, "min_watermark", &self.old[1].to_string());
        let _ = write_knob(&self.bank, "scavenge_deadline_ms", &self.old[2].to_string());
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// RESERVE fills the caller's pool exactly, allocations are served from it, freed memory stays
/// in it, SCAVENGE returns exactly what is unused, and bad requests fail cleanly.
fn reserve_scavenge() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    let raw = |size, bank, flags| {
        let mut r = moreram::sys::moreram_reserve {
            size,
            bank,
            flags,
            ..Default::default()
        };
        // SAFETY: `r` is a `moreram_reserve`.
        unsafe {
            moreram::sys::ioctl(
                std::os::fd::AsFd::as_fd(&mr),
                moreram::sys::MORERAM_IOC_RESERVE,
                &mut r,
            )
        }
    };
    expect_errno("size 0", raw(0, bo.index, 0), libc::EINVAL)?;
    expect_errno("size unaligned", raw(PAGE + 1, bo.index, 0), libc::EINVAL)?;
    expect_errno("unknown flag", raw(PAGE, bo.index, 2), libc::EINVAL)?;
    expect_errno(
        "system with a bank",
        raw(PAGE, 1, moreram::sys::MORERAM_RESERVE_SYSTEM),
        libc::EINVAL,
    )?;
    expect_errno("no such bank", raw(PAGE, 99, 0), libc::ENODEV)?;
    expect_errno(
        "more than there is",
        mr.reserve_vram(bo.index, bo.size + PAGE),
        libc::ENOSPC,
    )?;
    let t = mr.tier().map_err(e("TIER"))?;
    check!(
        t.pool_vram == 0 && t.pool_system == 0,
        "failed reserves left something: {t:?}"
    );

    mr.reserve_vram(bo.index, MIB).map_err(e("RESERVE"))?;
    let t = mr.tier().map_err(e("TIER"))?;
    check!(t.pool_vram == MIB, "pool after RESERVE: {}", t.pool_vram);
    let b = bochs(&mr)?;
    check!(
        b.pooled == MIB && b.free == bo.free,
        "bank after RESERVE: {b:?}"
    );
    let a = mr
        .alloc(MIB, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_vram == 0,
        "allocation not served from the pool"
    );
    a.free().map_err(e("FREE"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_vram == MIB,
        "freed VRAM not kept in the pool"
    );
    check!(
        bochs(&mr)?.free == bo.free,
        "freed VRAM not free in the bank"
    );
    let (v, s) = mr.scavenge().map_err(e("SCAVENGE"))?;
    check!(
        v == MIB && s == 0,
        "SCAVENGE returned {v} + {s}, expected {MIB}"
    );
    check!(bochs(&mr)?.pooled == 0, "bank still has pooled pages");

    mr.reserve_system(64 * PAGE).map_err(e("RESERVE system"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_system == 64 * PAGE,
        "system pool after RESERVE"
    );
    let s1 = mr
        .alloc(64 * PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC system"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_system == 0,
        "system allocation not from the pool"
    );
    let mut m = s1.map().map_err(e("mmap"))?;
    check!(
        m.as_slice().iter().all(|&x| x == 0),
        "pooled system pages not zeroed"
    );
    m.as_mut_slice().fill(0x5a);
    drop(m);
    s1.free().map_err(e("FREE"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_system == 64 * PAGE,
        "freed system pages not pooled"
    );
    let s2 = mr
        .alloc(16 * PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC system again"))?;
    check!(
        s2.map()
            .map_err(e("mmap"))?
            .as_slice()
            .iter()
            .all(|&x| x == 0),
        "reused pool pages not zeroed"
    );
    let (v, s) = mr.scavenge().map_err(e("SCAVENGE"))?;
    check!(
        v == 0 && s == 48 * PAGE,
        "SCAVENGE returned {v} + {s}, expected 48 pages"
    );
    s2.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;

    // Another process's allocation that does not fit otherwise takes the pool back at once.
    let bo = bochs(&mr)?;
    mr.reserve_vram(bo.index, bo.free)
        .map_err(e("RESERVE all"))?;
    let bank = bo.index;
    let mut child = spawn(move |c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let _a = match mine.alloc(MIB, Placement::Bank(bank), false) {
            Ok(a) if a.tier() != Tier::System => a,
            _ => return 11,
        };
        c.send(1);
        c.recv();
        0
    });
    let allocated = child.chan.recv() == 1;
    let left = mr.tier().map_err(e("TIER"))?.pool_vram;
    child.chan.send(0);
    let (sig, code) = child.wait();
    check!(
        allocated && sig == 0 && code == 0,
        "the other process could not allocate: exit {code}"
    );
    // It took what it needed, and then enough to keep the min watermark free.
    check!(
        left == bo.free - MIB - bo.min_watermark,
        "pool after the other's allocation: {left}, expected {}",
        bo.free - MIB - bo.min_watermark
    );
    mr.scavenge().map_err(e("SCAVENGE"))?;
    Ok(())
}

/// `n` processes hold pool memory and wait (half with poll, half with epoll); an allocation
/// crosses the low watermark; every holder is woken, reads its request, and scavenges; the
/// allocation is served from the bank. Prints the time from crossing to the last page back.
fn notify(n: u64) -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    check!(bo.free == bo.size, "bochs bank not empty");
    let _knobs = Knobs::set(&bo, 8 * MIB, 0, 30_000)?;
    let share = 32 * MIB / n;
    let bank = bo.index;
    let mut holders: Vec<Child> = Vec::new();
    for i in 0..n {
        holders.push(spawn(move |c| {
            let Ok(mine) = Moreram::open() else { return 10 };
            if let Err(er) = mine.reserve_vram(bank, share) {
                return 100 + er.raw_os_error().unwrap_or(0);
            }
            c.send(1);
            let fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&mine));
            let woken = if i % 2 == 0 {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLPRI,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 20_000) == 1 && p.revents & libc::POLLPRI != 0 }
            } else {
                // SAFETY: plain epoll calls on our own descriptors.
                unsafe {
                    let ep = libc::epoll_create1(0);
                    let mut ev = libc::epoll_event {
                        events: libc::EPOLLPRI as u32,
                        u64: 0,
                    };
                    libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                    let mut out = libc::epoll_event { events: 0, u64: 0 };
                    libc::epoll_wait(ep, &mut out, 1, 20_000) == 1
                }
            };
            if !woken {
                return 12;
            }
            let deadline = match mine.read_event() {
                Ok(r) if r.bank == bank && r.bytes == share && r.deadline_ns > now_ns() => {
                    r.deadline_ns
                }
                _ => return 13,
            };
            match mine.scavenge() {
                Ok((v, 0)) if v == share => {}
                _ => return 14,
            }
            // The kernel crossed the watermark at the request's deadline minus the 30 s set.
            c.send(now_ns().saturating_sub(deadline - 30_000_000_000));
            0
        }));
    }
    for h in holders.iter_mut() {
        if h.chan.recv() != 1 {
            let pooled = bochs(&mr)?.pooled;
            let pid = h.pid;
            let (_, code) = holders.remove(0).wait();
            return Err(format!(
                "holder {pid} could not reserve (exit {code}); pooled {pooled}"
            ));
        }
    }
    check!(
        bochs(&mr)?.pooled == 32 * MIB,
        "pooled before: {}",
        bochs(&mr)?.pooled
    );
    // Unreserved: 32 MiB. This leaves 4 MiB, under the 8 MiB low watermark.
    let a = mr
        .alloc(28 * MIB, Placement::Bank(bank), false)
        .map_err(e("ALLOC"))?;
    check!(
        a.tier() == Tier::Vram(bank),
        "crossing allocation went to {}",
        a.tier()
    );
    // Each holder reports the time from the crossing to its pool being back.
    let mut last = 0;
    for h in holders {
        let pid = h.pid;
        let mut h = h;
        let t = h.chan.recv();
        let (sig, code) = h.wait();
        check!(
            sig == 0 && code == 0,
            "holder {pid}: exit {code}, signal {sig}"
        );
        last = last.max(t);
    }
    check!(bochs(&mr)?.pooled == 0, "pool memory left after scavenging");
    let b = mr
        .alloc(32 * MIB, Placement::Bank(bank), false)
        .map_err(e("ALLOC after scavenge"))?;
    check!(
        b.tier() == Tier::Vram(bank),
        "allocation after scavenging went to {}",
        b.tier()
    );
    a.free().map_err(e("FREE"))?;
    b.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    println!(
        "moreram-info: scavenge with {n} holders: {:.2} ms from crossing the low watermark to the last page back",
        last as f64 / 1e6
    );
    Ok(())
}

/// A holder that ignores the request loses its pool memory after the deadline and keeps every
/// byte of its live allocation.
fn deadline() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    let _knobs = Knobs::set(&bo, 8 * MIB, 0, 300)?;
    let bank = bo.index;
    let mut h = spawn(move |c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(live) = mine.alloc(MIB, Placement::Bank(bank), false) else {
            return 11;
        };
        let Ok(mut m) = live.map() else {
            return 12;
        };
        for (i, x) in m.as_mut_slice().iter_mut().enumerate() {
            *x = (i % 253) as u8;
        }
        if mine.reserve_vram(bank, 32 * MIB).is_err() {
            return 13;
        }
        c.send(1);
        c.recv(); // ignore every request until asked to check
        if !m
            .as_slice()
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i % 253) as u8)
        {
            return 14;
        }
        match mine.tier() {
            Ok(t) if t.pool_vram == 0 => 0,
            _ => 15,
        }
    });
    check!(h.chan.recv() == 1, "holder could not set up");
    let a = mr
        .alloc(24 * MIB, Placement::Bank(bank), false)
        .map_err(e("ALLOC"))?;
    check!(
        bochs(&mr)?.pooled == 32 * MIB,
        "pool reclaimed before the deadline"
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    let pooled = bochs(&mr)?.pooled;
    h.chan.send(0);
    let (sig, code) = h.wait();
    a.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    check!(
        pooled == 0,
        "{pooled} bytes still pooled after the deadline"
    );
    check!(
        sig == 0 && code == 0,
        "holder: exit {code}, signal {sig} (14: live data changed)"
    );
    Ok(())
}

/// With `MORERAM_IOC_NOTIFY`, a request also comes as a signal.
fn signal() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    let _knobs = Knobs::set(&bo, 8 * MIB, 0, 30_000)?;
    let bank = bo.index;
    let mut h = spawn(move |c| {
        // SAFETY: plain signal-mask calls for this process.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let Ok(mine) = Moreram::open() else { return 10 };
        if mine.notify_signal(libc::SIGUSR1).is_err() || mine.reserve_vram(bank, 32 * MIB).is_err()
        {
            return 11;
        }
        c.send(1);
        let ts = libc::timespec {
            tv_sec: 20,
            tv_nsec: 0,
        };
        // SAFETY: waits for the blocked signal.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        if sig != libc::SIGUSR1 {
            return 12;
        }
        if mine.read_event().is_err() || mine.scavenge().is_err() {
            return 13;
        }
        0
    });
    check!(h.chan.recv() == 1, "holder could not set up");
    let a = mr
        .alloc(28 * MIB, Placement::Bank(bank), false)
        .map_err(e("ALLOC"))?;
    let (sig, code) = h.wait();
    a.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    check!(sig == 0 && code == 0, "holder: exit {code}, signal {sig}");
    Ok(())
}

/// Pooled system pages go back to the kernel when it reclaims memory (`drop_caches` runs every
/// shrinker; each pass trims half of what is pooled, as for other objects that cost no I/O).
fn shrinker() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let a = mr
        .alloc(256 * PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC"))?;
    a.free().map_err(e("FREE"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_system == 256 * PAGE,
        "freed pages not pooled"
    );
    let mut passes = 0;
    let mut left = 256 * PAGE;
    while left > 0 && passes < 12 {
        std::fs::write("/proc/sys/vm/drop_caches", "2")
            .map_err(|er| format!("drop_caches: {er}"))?;
        let now = mr.tier().map_err(e("TIER"))?.pool_system;
        check!(
            now < left,
            "a reclaim pass released nothing ({now} bytes pooled)"
        );
        left = now;
        passes += 1;
    }
    check!(
        left == 0,
        "{left} bytes still pooled after {passes} reclaim passes"
    );
    Ok(())
}

/// Under real memory pressure (another process fills memory), the kernel takes pooled system
/// pages back before anything is killed.
fn shrinker_pressure() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let a = mr
        .alloc(1024 * PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC"))?;
    a.free().map_err(e("FREE"))?;
    check!(
        mr.tier().map_err(e("TIER"))?.pool_system == 1024 * PAGE,
        "freed pages not pooled"
    );
    let mut hog = spawn(|c| {
        let mut held = Vec::new();
        loop {
            // 2 MiB at a time, touched, until told to stop: small steps, since once the pool is
            // gone nothing else can be reclaimed and a big step would end in the OOM killer.
            let len = 2 << 20;
            // SAFETY: a fresh anonymous mapping of our own.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return 10;
            }
            for off in (0..len).step_by(4096) {
                // SAFETY: inside the mapping.
                unsafe { p.cast::<u8>().add(off).write_volatile(1) };
            }
            held.push(p);
            c.send(held.len() as u64);
            if c.recv() == 0 {
                return 0;
            }
        }
    });
    let mut result = Err("the pool was not reclaimed before the hog stopped".to_string());
    loop {
        let n = hog.chan.recv();
        if n == u64::MAX {
            break;
        }
        let left = mr.tier().map_err(e("TIER"))?.pool_system;
        if left == 0 {
            result = Ok(n);
            hog.chan.send(0);
            break;
        }
        // Stop well before the whole guest (1 GiB) is used.
        if n >= 448 {
            hog.chan.send(0);
            break;
        }
        hog.chan.send(1);
    }
    let (sig, code) = hog.wait();
    let n = result?;
    check!(
        sig == 0 && code == 0,
        "memory hog: exit {code}, signal {sig}"
    );
    println!(
        "moreram-info: pooled system pages reclaimed after {} MiB of memory pressure",
        n * 2
    );
    Ok(())
}

/// The watermarks and deadline in sysfs: defaults from the module parameters, writes checked.
fn watermark_sysfs() -> TestResult {
    let mr = Moreram::open().map_err(e("open"))?;
    let bo = bochs(&mr)?;
    let pct: u64 = std::env::var("MORERAM_LOW_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let low = read_knob(&bo, "low_watermark")?;
    let min = read_knob(&bo, "min_watermark")?;
    check!(
        low == bo.size / PAGE * pct / 100 * PAGE,
        "default low watermark {low}, expected {pct}%"
    );
    check!(
        min <= low && read_knob(&bo, "scavenge_deadline_ms")? == 1000,
        "defaults: min {min}"
    );
    check!(
        bo.low_watermark == low && bo.min_watermark == min,
        "BANKS disagrees with sysfs: {bo:?}"
    );
    for (name, v) in [
        ("low_watermark", "abc".to_string()),
        ("low_watermark", (bo.size + PAGE).to_string()),
        ("min_watermark", (low + PAGE).to_string()),
        ("scavenge_deadline_ms", "0".to_string()),
        ("scavenge_deadline_ms", "600001".to_string()),
    ] {
        let r = write_knob(&bo, name, &v);
        check!(r.is_err(), "{name}={v} accepted");
    }
    {
        let _k = Knobs::set(&bo, 16 * MIB, 4 * MIB, 250)?;
        let b = bochs(&mr)?;
        check!(
            b.low_watermark == 16 * MIB && b.min_watermark == 4 * MIB,
            "written values not in BANKS: {b:?}"
        );
        check!(
            read_knob(&bo, "scavenge_deadline_ms")? == 250,
            "deadline not written"
        );
    }
    check!(
        read_knob(&bo, "low_watermark")? == low,
        "old value not restored"
    );
    Ok(())
}
