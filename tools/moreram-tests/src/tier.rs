//! Tests of the memory tier: allocation, mapping, zeroing, fallback, lifetimes.

use crate::{check, expect_errno, owners::spawn, Test, TestResult};
use moreram::{sys, Bank, Moreram, Placement, Tier};
use std::{io, os::fd::AsFd, process::ExitCode};

const PAGE: u64 = 4096;

/// The tests of this file. `marker` never returns: the guest runs its group, `hold`, in the
/// background.
pub const TESTS: &[Test] = &[
    Test::new("alloc-map-free", &["tier"], |_| alloc_map_free()),
    Test::new("exhaustion-and-fallback", &["tier"], |_| {
        exhaustion_and_fallback()
    }),
    Test::new("zeroing", &["tier"], |_| zeroing()),
    Test::new("alloc-bad-input", &["tier"], |_| alloc_bad_input()),
    Test::new("mmap-bad-input", &["tier"], |_| mmap_bad_input()),
    Test::new("free-while-mapped", &["tier"], |_| free_while_mapped()),
    Test::new("close-while-mapped", &["tier"], |_| close_while_mapped()),
    Test::new("fork", &["tier"], |_| fork()),
    Test::new("fork-copy", &["tier"], |_| fork_copy()),
    Test::new("mmap-read-only-file", &["tier"], |_| mmap_read_only_file()),
    Test::new("unbind-while-mapped", &["tier"], |_| unbind_while_mapped()),
    Test::new("write-combining", &["tier"], |_| write_combining()),
    Test::new("marker", &["hold"], |_| marker()),
];

fn open() -> Result<Moreram, String> {
    Moreram::open().map_err(|e| format!("open: {e}"))
}

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// The bank of the given PCI vendor.
fn bank_of(mr: &Moreram, vendor: u16) -> Result<Bank, String> {
    mr.banks()
        .map_err(e("BANKS"))?
        .into_iter()
        .find(|b| b.vendor == vendor)
        .ok_or(format!("no bank of vendor {vendor:04x}"))
}

fn ivshmem(mr: &Moreram) -> Result<Bank, String> {
    bank_of(mr, 0x1af4)
}

fn bochs(mr: &Moreram) -> Result<Bank, String> {
    bank_of(mr, 0x1234)
}

fn fill(m: &mut moreram::Mapping, seed: u64) {
    for (i, w) in m.as_mut_slice().chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&(seed ^ i as u64).to_ne_bytes());
    }
}

fn verify(m: &moreram::Mapping, seed: u64) -> TestResult {
    for (i, w) in m.as_slice().chunks_exact(8).enumerate() {
        let v = u64::from_ne_bytes(w.try_into().unwrap());
        check!(
            v == seed ^ i as u64,
            "word {i}: {v:#x}, expected {:#x}",
            seed ^ i as u64
        );
    }
    Ok(())
}

fn all_zero(m: &moreram::Mapping) -> TestResult {
    match m.as_slice().iter().position(|&b| b != 0) {
        Some(i) => Err(format!(
            "byte {i} of {} is {:#x}, not zero",
            m.len(),
            m.as_slice()[i]
        )),
        None => Ok(()),
    }
}

/// A 4 KiB allocation prefers VRAM, maps, reads as zeros, keeps what is written, is reported by
/// QUERY and TIER, and frees exactly once.
fn alloc_map_free() -> TestResult {
    let mr = open()?;
    let before = mr.tier().map_err(e("TIER"))?;
    let a = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    check!(
        matches!(a.tier(), Tier::Vram(_)),
        "4 KiB went to {}, VRAM is free",
        a.tier()
    );
    check!(
        a.handle() != 0 && a.mmap_offset() % PAGE == 0,
        "handle {} offset {:#x}",
        a.handle(),
        a.mmap_offset()
    );
    let mut m = a.map().map_err(e("mmap"))?;
    all_zero(&m)?;
    fill(&mut m, 0x5eed);
    verify(&m, 0x5eed)?;
    let q = a.query().map_err(e("QUERY"))?;
    check!(
        q.size == PAGE && matches!(q.tier, Tier::Vram(_)) && q.mappings == 1,
        "QUERY: {q:?}"
    );
    check!(
        q.mmap_offset == a.mmap_offset(),
        "QUERY offset {:#x}",
        q.mmap_offset
    );
    let t = mr.tier().map_err(e("TIER"))?;
    check!(
        t.file_vram == PAGE && t.file_allocs == 1,
        "TIER after alloc: {t:?}"
    );
    check!(
        t.vram_free == before.vram_free - PAGE,
        "vram_free {} -> {}",
        before.vram_free,
        t.vram_free
    );
    drop(m);
    check!(
        a.query().map_err(e("QUERY"))?.mappings == 0,
        "mapping count after munmap"
    );
    let handle = a.handle();
    a.free().map_err(e("FREE"))?;
    expect_errno("QUERY after FREE", mr.query_raw(handle), libc::ENOENT)?;
    expect_errno("double FREE", mr.free_raw(handle), libc::ENOENT)?;
    let t = mr.tier().map_err(e("TIER"))?;
    check!(
        t.vram_free == before.vram_free && t.file_allocs == 0,
        "after FREE: {t:?}"
    );
    Ok(())
}

/// Fill both banks: VRAM-only then fails with ENOSPC, the default falls back to system pages,
/// the reports agree with what was allocated, and freeing gives every byte back.
fn exhaustion_and_fallback() -> TestResult {
    let mr = open()?;
    let (iv, bo) = (ivshmem(&mr)?, bochs(&mr)?);
    check!(
        iv.free == iv.size && bo.free == bo.size,
        "banks not empty at start"
    );
    check!(
        iv.largest_free == iv.size,
        "largest free {} of an empty {}",
        iv.largest_free,
        iv.size
    );
    // The largest allocation: a whole bank, in one contiguous block.
    let whole = mr
        .alloc(iv.size, Placement::Bank(iv.index), true)
        .map_err(e("whole ivshmem bank"))?;
    check!(
        whole.tier() == Tier::Vram(iv.index),
        "whole bank went to {}",
        whole.tier()
    );
    let iv2 = ivshmem(&mr)?;
    check!(
        iv2.free == 0 && iv2.largest_free == 0,
        "full bank reports {} free, largest {}",
        iv2.free,
        iv2.largest_free
    );
    expect_errno(
        "bank full",
        mr.alloc(PAGE, Placement::Bank(iv.index), false),
        libc::ENOSPC,
    )?;
    // Fill the other bank in pieces: half, quarter, ... down to a page, then the last page.
    let mut pieces = Vec::new();
    let mut left = bo.size;
    while left > 0 {
        let sz = if left > PAGE { left / 2 } else { PAGE };
        let a = mr
            .alloc(sz, Placement::VramOnly, false)
            .map_err(e("filling bochs"))?;
        check!(
            a.tier() == Tier::Vram(bo.index),
            "piece of {sz} went to {}",
            a.tier()
        );
        pieces.push(a);
        left -= sz;
    }
    expect_errno(
        "VRAM-only when full",
        mr.alloc(PAGE, Placement::VramOnly, false),
        libc::ENOSPC,
    )?;
    let t0 = mr.tier().map_err(e("TIER"))?;
    check!(
        t0.vram_free == 0 && t0.file_vram == iv.size + bo.size,
        "TIER when full: {t0:?}"
    );
    let fb = mr
        .alloc(16 * PAGE, Placement::PreferVram, false)
        .map_err(e("fallback"))?;
    check!(
        fb.tier() == Tier::System,
        "prefer-VRAM with VRAM full went to {}",
        fb.tier()
    );
    let mut m = fb.map().map_err(e("mmap fallback"))?;
    all_zero(&m)?;
    fill(&mut m, 7);
    verify(&m, 7)?;
    drop(m);
    let t1 = mr.tier().map_err(e("TIER"))?;
    check!(
        t1.system_used == t0.system_used + 16 * PAGE && t1.file_system == 16 * PAGE,
        "system accounting: {t1:?}"
    );
    // Free a middle piece: its space, and only that, comes back.
    let mid = pieces.remove(1);
    let mid_size = mid.size();
    mid.free().map_err(e("FREE piece"))?;
    let bo2 = bochs(&mr)?;
    check!(
        bo2.free == mid_size && bo2.largest_free == mid_size,
        "after freeing {}: free {} largest {}",
        mid_size,
        bo2.free,
        bo2.largest_free
    );
    for a in pieces.into_iter().chain([whole, fb]) {
        a.free().map_err(e("FREE"))?;
    }
    let t2 = mr.tier().map_err(e("TIER"))?;
    check!(
        t2.vram_free == t2.vram_size && t2.system_used == t0.system_used && t2.file_allocs == 0,
        "after freeing all: {t2:?}"
    );
    for b in mr.banks().map_err(e("BANKS"))? {
        check!(
            b.free == b.size && b.largest_free == b.size,
            "bank {} not whole again: {b:?}",
            b.index
        );
    }
    println!(
        "moreram-info: largest allocation served: {} MiB (whole bank, contiguous)",
        iv.size >> 20
    );
    Ok(())
}

/// Bytes written before a free never show in a later allocation, in this process or another.
fn zeroing() -> TestResult {
    let mr = open()?;
    let bo = bochs(&mr)?;
    for round in 0..2 {
        let a = mr
            .alloc(bo.size, Placement::Bank(bo.index), false)
            .map_err(e("whole bochs bank"))?;
        let mut m = a.map().map_err(e("mmap"))?;
        all_zero(&m).map_err(|w| format!("round {round}: {w}"))?;
        fill(&mut m, 0xa5a5_a5a5_a5a5_a5a5);
        drop(m);
        a.free().map_err(e("FREE"))?;
    }
    // Another process takes the same pages (the whole bank) after our pattern.
    let a = mr
        .alloc(bo.size, Placement::Bank(bo.index), false)
        .map_err(e("whole bank"))?;
    fill(&mut a.map().map_err(e("mmap"))?, 0x1234);
    a.free().map_err(e("FREE"))?;
    crate::run_child(&["zero-check", &bo.index.to_string(), &bo.size.to_string()])?;
    // System pages too.
    let s = mr
        .alloc(64 * PAGE, Placement::SystemOnly, false)
        .map_err(e("system"))?;
    let mut m = s.map().map_err(e("mmap system"))?;
    all_zero(&m)?;
    fill(&mut m, 0xdead);
    drop(m);
    s.free().map_err(e("FREE"))?;
    let s = mr
        .alloc(64 * PAGE, Placement::SystemOnly, false)
        .map_err(e("system again"))?;
    all_zero(&s.map().map_err(e("mmap system"))?)?;
    Ok(())
}

/// Child: allocate `size` bytes of bank `bank` and check they read as zeros.
pub fn child_zero_check(args: &[String]) -> ExitCode {
    let go = || -> TestResult {
        let bank: u32 = args.first().ok_or("bank")?.parse().map_err(|_| "bank")?;
        let size: u64 = args.get(1).ok_or("size")?.parse().map_err(|_| "size")?;
        let mr = open()?;
        let a = mr
            .alloc(size, Placement::Bank(bank), false)
            .map_err(e("ALLOC"))?;
        all_zero(&a.map().map_err(e("mmap"))?)
    };
    match go() {
        Ok(()) => ExitCode::SUCCESS,
        Err(w) => {
            eprintln!("zero-check: {w}");
            ExitCode::FAILURE
        }
    }
}

fn alloc_req(mr: &Moreram, req: sys::moreram_alloc) -> io::Result<sys::moreram_alloc> {
    let mut r = req;
    mr.alloc_raw(&mut r).map(|()| r)
}

/// Every malformed request gets its documented errno and allocates nothing.
fn alloc_bad_input() -> TestResult {
    let mr = open()?;
    let before = mr.tier().map_err(e("TIER"))?;
    let ok = sys::moreram_alloc {
        size: PAGE,
        ..Default::default()
    };
    let cases: &[(&str, sys::moreram_alloc, i32)] = &[
        ("size 0", sys::moreram_alloc { size: 0, ..ok }, libc::EINVAL),
        (
            "size not page aligned",
            sys::moreram_alloc {
                size: PAGE + 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "size over MAX_ALLOC",
            sys::moreram_alloc {
                size: sys::MORERAM_MAX_ALLOC + PAGE,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "size near 2^64",
            sys::moreram_alloc {
                size: u64::MAX - PAGE + 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "VRAM-only larger than any bank",
            sys::moreram_alloc {
                size: 1 << 30,
                flags: sys::MORERAM_ALLOC_VRAM_ONLY,
                ..ok
            },
            libc::E2BIG,
        ),
        (
            "system larger than RAM",
            sys::moreram_alloc {
                size: 1 << 39,
                flags: sys::MORERAM_ALLOC_SYSTEM_ONLY,
                ..ok
            },
            libc::ENOMEM,
        ),
        (
            "unknown flag",
            sys::moreram_alloc {
                flags: sys::MORERAM_ALLOC_FLAGS_ALL + 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "high unknown flag",
            sys::moreram_alloc {
                flags: 1 << 31,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "VRAM-only and system-only",
            sys::moreram_alloc {
                flags: sys::MORERAM_ALLOC_VRAM_ONLY | sys::MORERAM_ALLOC_SYSTEM_ONLY,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "contiguous system pages",
            sys::moreram_alloc {
                flags: sys::MORERAM_ALLOC_CONTIGUOUS | sys::MORERAM_ALLOC_SYSTEM_ONLY,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "bank without the BANK flag",
            sys::moreram_alloc { bank: 1, ..ok },
            libc::EINVAL,
        ),
        (
            "no such bank",
            sys::moreram_alloc {
                flags: sys::MORERAM_ALLOC_BANK,
                bank: 99,
                ..ok
            },
            libc::ENODEV,
        ),
        (
            "reserved0",
            sys::moreram_alloc { reserved0: 1, ..ok },
            libc::EINVAL,
        ),
        (
            "reserved[3]",
            sys::moreram_alloc {
                reserved: [0, 0, 0, 1],
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "output handle set",
            sys::moreram_alloc { handle: 5, ..ok },
            libc::EINVAL,
        ),
        (
            "output offset set",
            sys::moreram_alloc {
                mmap_offset: PAGE,
                ..ok
            },
            libc::EINVAL,
        ),
    ];
    for (what, req, want) in cases {
        expect_errno(what, alloc_req(&mr, *req), *want)?;
    }
    // SAFETY: NULL is the point: the kernel must not dereference it.
    let r = unsafe {
        sys::ioctl::<sys::moreram_alloc>(mr.as_fd(), sys::MORERAM_IOC_ALLOC, std::ptr::null_mut())
    };
    expect_errno("NULL argument", r, libc::EFAULT)?;
    expect_errno("FREE unknown handle", mr.free_raw(12345), libc::ENOENT)?;
    expect_errno("QUERY unknown handle", mr.query_raw(12345), libc::ENOENT)?;
    expect_errno("FREE handle 0", mr.free_raw(0), libc::ENOENT)?;
    let a = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let mut fr = sys::moreram_handle {
        handle: a.handle(),
        reserved0: 1,
        ..Default::default()
    };
    // SAFETY: `fr` is a `moreram_handle`.
    let r = unsafe { sys::ioctl(mr.as_fd(), sys::MORERAM_IOC_FREE, &mut fr) };
    expect_errno("FREE reserved0", r, libc::EINVAL)?;
    let mut q = sys::moreram_query {
        handle: a.handle(),
        size: 1,
        ..Default::default()
    };
    // SAFETY: `q` is a `moreram_query`.
    let r = unsafe { sys::ioctl(mr.as_fd(), sys::MORERAM_IOC_QUERY, &mut q) };
    expect_errno("QUERY output field set", r, libc::EINVAL)?;
    let mut t = sys::moreram_tier {
        reserved1: 1,
        ..Default::default()
    };
    // SAFETY: `t` is a `moreram_tier`.
    let r = unsafe { sys::ioctl(mr.as_fd(), sys::MORERAM_IOC_TIER, &mut t) };
    expect_errno("TIER input not zero", r, libc::EINVAL)?;
    // Another file's handle means nothing here.
    let other = open()?;
    expect_errno(
        "FREE through another file",
        other.free_raw(a.handle()),
        libc::ENOENT,
    )?;
    let handle = a.handle();
    a.free().map_err(e("FREE"))?;
    expect_errno(
        "ioctl on a freed handle",
        mr.query_raw(handle),
        libc::ENOENT,
    )?;
    let after = mr.tier().map_err(e("TIER"))?;
    check!(
        after.vram_free == before.vram_free
            && after.system_used == before.system_used
            && after.file_allocs == 0,
        "bad input leaked: {before:?} -> {after:?}"
    );
    Ok(())
}

/// mmap checks offset, length, sharing and execute permission against the allocation.
fn mmap_bad_input() -> TestResult {
    let mr = open()?;
    let a = mr
        .alloc(4 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    expect_errno(
        "offset of no allocation",
        mr.map_raw(
            a.mmap_offset() + (1 << 40),
            PAGE as usize,
            rw,
            libc::MAP_SHARED,
        ),
        libc::EINVAL,
    )?;
    expect_errno(
        "offset 0",
        mr.map_raw(0, PAGE as usize, rw, libc::MAP_SHARED),
        libc::EINVAL,
    )?;
    expect_errno(
        "past the end",
        mr.map_raw(a.mmap_offset(), 5 * PAGE as usize, rw, libc::MAP_SHARED),
        libc::EINVAL,
    )?;
    expect_errno(
        "tail past the end",
        mr.map_raw(
            a.mmap_offset() + 3 * PAGE,
            2 * PAGE as usize,
            rw,
            libc::MAP_SHARED,
        ),
        libc::EINVAL,
    )?;
    expect_errno(
        "MAP_PRIVATE",
        mr.map_raw(a.mmap_offset(), PAGE as usize, rw, libc::MAP_PRIVATE),
        libc::EINVAL,
    )?;
    expect_errno(
        "PROT_EXEC",
        mr.map_raw(
            a.mmap_offset(),
            PAGE as usize,
            rw | libc::PROT_EXEC,
            libc::MAP_SHARED,
        ),
        libc::EPERM,
    )?;
    let other = open()?;
    expect_errno(
        "another file's offset",
        other.map_raw(a.mmap_offset(), PAGE as usize, rw, libc::MAP_SHARED),
        libc::EINVAL,
    )?;
    // A sub-range maps, and sees the same bytes as the whole.
    let mut whole = a.map().map_err(e("mmap"))?;
    fill(&mut whole, 99);
    let part = mr
        .map_raw(
            a.mmap_offset() + 2 * PAGE,
            2 * PAGE as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
        )
        .map_err(e("sub-range"))?;
    check!(
        part.as_slice() == &whole.as_slice()[2 * PAGE as usize..],
        "sub-range mapping differs"
    );
    // SAFETY: changes protection of our own mapping.
    let r = unsafe {
        libc::mprotect(
            whole.as_ptr().cast(),
            PAGE as usize,
            libc::PROT_READ | libc::PROT_EXEC,
        )
    };
    check!(
        r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EACCES),
        "mprotect(PROT_EXEC) allowed"
    );
    // SAFETY: asks to grow our own mapping in place; the kernel must refuse.
    let r = unsafe {
        libc::mremap(
            whole.as_ptr().cast(),
            4 * PAGE as usize,
            8 * PAGE as usize,
            0,
        )
    };
    check!(r == libc::MAP_FAILED, "mremap grew the mapping");
    drop((whole, part));
    a.free().map_err(e("FREE"))?;
    Ok(())
}

/// FREE while mapped: the pages stay allocated and readable until munmap, but they are ownerless
/// now: nobody may write them, not even the process that mapped them writable.
fn free_while_mapped() -> TestResult {
    let mr = open()?;
    let bo = bochs(&mr)?;
    let (sig, code) = spawn(|_| {
        let r = (|| -> Result<(), i32> {
            let a = mr
                .alloc(8 * PAGE, Placement::Bank(bo.index), false)
                .map_err(|_| 10)?;
            let mut m = a.map().map_err(|_| 11)?;
            fill(&mut m, 42);
            a.free().map_err(|_| 12)?;
            verify(&m, 42).map_err(|_| 13)?;
            if bochs(&mr).map_err(|_| 14)?.free != bo.free - 8 * PAGE {
                // The pages went back while still mapped.
                return Err(15);
            }
            // SAFETY: must raise SIGBUS: the page has no owner any more.
            unsafe { std::ptr::write_volatile(m.as_ptr().add(PAGE as usize), 43) };
            Err(16)
        })();
        r.err().unwrap_or(0)
    })
    .wait();
    check!(
        sig == libc::SIGBUS,
        "write to a freed, still mapped page: signal {sig}, exit {code}; expected SIGBUS"
    );
    check!(
        bochs(&mr)?.free == bo.free,
        "pages not back after the mapping went"
    );
    Ok(())
}

/// Closing the file while mapped: the mapping keeps working. A mapping holds the file, so the
/// file's release (which frees all it allocated) comes with the last munmap, not with close.
fn close_while_mapped() -> TestResult {
    let watcher = open()?;
    let bo = bochs(&watcher)?;
    let mr = open()?;
    let a = mr
        .alloc(8 * PAGE, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    let mut m = a.map().map_err(e("mmap"))?;
    // Both allocations stay until the file goes.
    a.into_raw();
    mr.alloc(8 * PAGE, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC unmapped"))?
        .into_raw();
    fill(&mut m, 77);
    drop(mr);
    verify(&m, 77)?;
    fill(&mut m, 78);
    verify(&m, 78)?;
    check!(
        bochs(&watcher)?.free == bo.free - 16 * PAGE,
        "close freed memory while the file was still mapped"
    );
    drop(m);
    check!(
        bochs(&watcher)?.free == bo.free,
        "the last munmap after close did not free the file's allocations"
    );
    Ok(())
}

/// fork: mappings are not inherited (the child faults with SIGSEGV at that address); the
/// parent's mapping is untouched; the child, another process of the same user, can map the
/// allocation read-only through the inherited file, but not writable.
fn fork() -> TestResult {
    let mr = open()?;
    let a = mr
        .alloc(2 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let mut m = a.map().map_err(e("mmap"))?;
    fill(&mut m, 5);
    let addr = m.as_ptr();
    let touch = |expect_signal: i32, act: &dyn Fn() -> i32| -> TestResult {
        let (sig, code) = spawn(|_| act()).wait();
        check!(
            sig == expect_signal && (sig != 0 || code == 0),
            "child ended with signal {sig}, exit {code}; expected signal {expect_signal}"
        );
        Ok(())
    };
    touch(libc::SIGSEGV, &|| {
        // SAFETY: the child reads an address that is not mapped in it; the fault is the test.
        unsafe { std::ptr::read_volatile(addr) };
        0
    })?;
    let a2 = &a;
    touch(0, &|| {
        // The child is another process: it may read (same user), not write.
        let ro = mr.map_raw(
            a2.mmap_offset(),
            a2.size() as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
        );
        let rw = a2.map();
        let ok = ro.map(|c| verify(&c, 5).is_ok()).unwrap_or(false)
            && rw.err().and_then(|e| e.raw_os_error()) == Some(libc::EACCES);
        if ok {
            0
        } else {
            3
        }
    })?;
    verify(&m, 5)?;
    fill(&mut m, 6);
    verify(&m, 6)?;
    drop(m);
    a.free().map_err(e("FREE"))?;
    Ok(())
}

/// A file opened read-only can still allocate and map its memory to read: a shared mapping of
/// it has `VM_MAYSHARE` but not `VM_SHARED`, which the kernel clears for a file not open for
/// writing (the module once refused it with `EINVAL`); a writable one is the kernel's `EACCES`.
fn mmap_read_only_file() -> TestResult {
    // SAFETY: a constant NUL-terminated path; the descriptor is ours, closed below.
    let fd = unsafe { libc::open(c"/dev/moreram".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    check!(fd >= 0, "open O_RDONLY: {}", io::Error::last_os_error());
    // SAFETY: `fd` is open until the end of this function.
    let file = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut req = sys::moreram_alloc {
        size: 2 * PAGE,
        ..Default::default()
    };
    sys::alloc(file.as_fd(), &mut req).map_err(e("ALLOC"))?;
    let len = 2 * PAGE as usize;
    let map = |prot: i32| {
        // SAFETY: a new mapping at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd,
                req.mmap_offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(p)
        }
    };
    let rw = map(libc::PROT_READ | libc::PROT_WRITE);
    let ro = map(libc::PROT_READ);
    let zero = ro.map(|p| {
        // SAFETY: `p` maps `len` readable bytes.
        let z = (0..len)
            .step_by(8)
            .all(|o| unsafe { p.cast::<u8>().add(o).cast::<u64>().read_volatile() } == 0);
        // SAFETY: our mapping.
        unsafe { libc::munmap(p, len) };
        z
    });
    check!(
        rw == Err(libc::EACCES),
        "writable shared mapping of a read-only file: {rw:?}, expected EACCES"
    );
    check!(
        zero == Ok(true),
        "read-only shared mapping of a read-only file: {zero:?}, expected it to map zeroed memory"
    );
    Ok(())
}

/// Bytes free in every bank, and system bytes the tier holds.
fn tier_usage(mr: &Moreram) -> Result<(u64, u64), String> {
    let t = mr.tier().map_err(e("TIER"))?;
    Ok((t.vram_free, t.system_used))
}

/// `MORERAM_ALLOC_FORK_COPY`: a forked child gets the mapping as it was at the fork, in memory
/// of its own: afterwards neither sees the other's writes, the child may write its copy (it owns
/// it) and its children get copies in turn, and the copy goes back when the child exits. In
/// VRAM and in system pages; half of the mapping with `MADV_KEEPONFORK`, which must not make
/// the kernel share the parent's pages with the child.
fn fork_copy() -> TestResult {
    let mr = open()?;
    for (flags, what) in [
        (0, "VRAM"),
        (sys::MORERAM_ALLOC_SYSTEM_ONLY, "system pages"),
    ] {
        let before = tier_usage(&mr)?;
        let len = 8 * PAGE as usize;
        let mut req = sys::moreram_alloc {
            size: len as u64,
            flags: flags | sys::MORERAM_ALLOC_FORK_COPY,
            ..Default::default()
        };
        mr.alloc_raw(&mut req).map_err(e("ALLOC"))?;
        let mut m = mr
            .map_raw(
                req.mmap_offset,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
            )
            .map_err(e("mmap"))?;
        fill(&mut m, 21);
        // SAFETY: the upper half of our own mapping; only its fork behaviour changes.
        unsafe {
            libc::madvise(
                m.as_ptr().add(len / 2).cast(),
                len / 2,
                libc::MADV_KEEPONFORK,
            )
        };
        let m2 = &mut m;
        let child = spawn(move |chan| {
            if verify(m2, 21).is_err() {
                return 1;
            }
            fill(m2, 22);
            chan.send(1);
            // The parent writes meanwhile.
            let _ = chan.recv();
            if verify(m2, 22).is_err() {
                return 2;
            }
            let m3 = &mut *m2;
            let (sig, code) = spawn(move |_| {
                if verify(m3, 22).is_err() {
                    return 1;
                }
                fill(m3, 24);
                i32::from(verify(m3, 24).is_err())
            })
            .wait();
            if (sig, code) != (0, 0) {
                return 10 + code.max(0);
            }
            i32::from(verify(m2, 22).is_err()) * 3
        });
        let mut chan = child.chan;
        check!(chan.recv() == 1, "{what}: the child did not get to write");
        verify(&m, 21)
            .map_err(|err| format!("{what}: the parent sees the child's write: {err}"))?;
        fill(&mut m, 23);
        chan.send(1);
        let (sig, code) = crate::owners::Child {
            pid: child.pid,
            chan,
        }
        .wait();
        check!(
            (sig, code) == (0, 0),
            "{what}: child ended with signal {sig}, exit {code} (1: no copy of the parent's \
             data, 2: sees the parent's later write, 11-13: grandchild, 3: sees the grandchild's \
             write)"
        );
        verify(&m, 23)?;
        drop(m);
        mr.free_raw(req.handle).map_err(e("FREE"))?;
        let after = tier_usage(&mr)?;
        check!(
            after == before,
            "{what}: (VRAM free, system bytes) {before:?} before, {after:?} after the children"
        );
    }
    Ok(())
}

/// Unbinding a device whose pages are mapped zaps them: the next access is SIGBUS, not stale
/// memory, and the device binds again with all its memory free.
fn unbind_while_mapped() -> TestResult {
    let mr = open()?;
    let bo = bochs(&mr)?;
    let addr = bo.pci.to_string();
    let a = mr
        .alloc(4 * PAGE, Placement::Bank(bo.index), false)
        .map_err(e("ALLOC"))?;
    let mut m = a.map().map_err(e("mmap"))?;
    fill(&mut m, 11);
    let p = m.as_ptr();
    // The child re-maps the allocation through the inherited file (fork does not copy the
    // mapping), unbinds the device, and touches the page.
    let (sig, code) = spawn(|_| {
        let r = (|| -> Result<(), i32> {
            // Another process: read-only.
            let c = mr
                .map_raw(
                    a.mmap_offset(),
                    a.size() as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                )
                .map_err(|_| 10)?;
            verify(&c, 11).map_err(|_| 11)?;
            std::fs::write("/sys/bus/pci/drivers/moreram/unbind", &addr).map_err(|_| 12)?;
            // SAFETY: must raise SIGBUS: the pages were zapped and the bank revoked.
            unsafe { std::ptr::read_volatile(c.as_ptr()) };
            Err(13)
        })();
        r.err().unwrap_or(0)
    })
    .wait();
    // The parent's mapping is gone too: reading it through /proc/self/mem faults the page
    // without killing us, and must fail.
    let mut buf = [0u8; 8];
    let mem = std::fs::File::open("/proc/self/mem").map_err(e("/proc/self/mem"));
    let read = mem.and_then(|f| {
        use std::os::unix::fs::FileExt;
        f.read_at(&mut buf, p as u64).map_err(|er| er.to_string())
    });
    let rebind = std::fs::write("/sys/bus/pci/drivers/moreram/bind", &addr);
    check!(
        sig == libc::SIGBUS,
        "child: signal {sig}, exit {code}; expected SIGBUS"
    );
    check!(
        read.is_err(),
        "the parent could still read the unbound bank: {buf:?}"
    );
    rebind.map_err(e("rebind"))?;
    drop(m);
    let _ = a.free();
    // Freeing the old bank's allocation credits no pool of the new bank, which never had it.
    let bo2 = bochs(&mr)?;
    check!(
        bo2.free == bo2.size && bo2.pooled == 0,
        "rebound bank not empty, or a pool of it holds the old bank's pages: {bo2:?}"
    );
    Ok(())
}

/// Leaves a marker in the ivshmem bank for the host to find in the BAR's backing file: proof that
/// bytes written through a mapping land in device memory. The process then holds the memory until
/// the VM stops (an owner's pages are zeroed when it lets go of them).
fn marker() -> TestResult {
    let mr = open()?;
    let iv = ivshmem(&mr)?;
    let a = mr
        .alloc(PAGE, Placement::Bank(iv.index), false)
        .map_err(e("ALLOC"))?;
    let mut m = a.map().map_err(e("mmap"))?;
    let nonce = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let text = format!("moreram-marker-{}", nonce.trim());
    m.as_mut_slice()[..text.len()].copy_from_slice(text.as_bytes());
    println!("moreram-marker: {text}");
    println!("moreram-test: ok marker");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Every bank's BAR is reserved write-combining in PAT's memtype list, which is the cache mode
/// user mappings of its pages get.
fn write_combining() -> TestResult {
    let mr = open()?;
    let path = "/sys/kernel/debug/x86/pat_memtype_list";
    let list = std::fs::read_to_string(path).map_err(|er| format!("{path}: {er} (is PAT on?)"))?;
    for b in mr.banks().map_err(e("BANKS"))? {
        let want = format!(
            "[mem 0x{:016x}-0x{:016x}] write-combining",
            b.bar_start,
            b.bar_start + b.bar_len
        );
        check!(
            list.lines().any(|l| l.contains(&want)),
            "bank {}: no '{want}' in {path}",
            b.index
        );
    }
    Ok(())
}
