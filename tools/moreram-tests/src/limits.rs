//! Tests of what one user can make the module do or hold, and of calls that must leave nothing
//! behind when they fail. `quota` runs after a reload with small limits, which the guest passes
//! in `MORERAM_LIMITS`.

use crate::{
    check, expect_errno,
    owners::{spawn, Child},
    pools::{bochs, Knobs},
    Test, TestResult,
};
use moreram::{sys, Control, Moreram, Placement};
use std::{
    fs::File,
    io::{self, Read},
    mem::size_of,
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

/// The tests of this file.
pub const TESTS: &[Test] = &[
    Test::new("notify-other-user", &["limits"], |_| notify_other_user()),
    Test::new("notify-creds-changed", &["limits"], |_| {
        notify_creds_changed()
    }),
    Test::new("give-needs-holder", &["limits"], |_| give_needs_holder()),
    Test::new("import-same-file", &["limits"], |_| import_same_file()),
    Test::new("result-unwritable", &["limits"], |_| result_unwritable()),
    Test::new("read-fault-keeps-event", &["limits"], |_| {
        read_fault_keeps_event()
    }),
    Test::new("events-coalesce", &["limits"], |_| events_coalesce()),
    Test::new("rights-bounds", &["limits"], |_| rights_bounds()),
    Test::new("failed-alloc-offsets", &["limits"], |_| {
        failed_alloc_offsets()
    }),
    Test::new("close-many-shares", &["limits"], |_| close_many_shares()),
    Test::new("reserve-huge", &["limits"], |_| reserve_huge()),
    Test::new("handle-quota", &["quota"], |_| handle_quota()),
    Test::new("share-quota", &["quota"], |_| share_quota()),
];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn open() -> Result<Moreram, String> {
    Moreram::open().map_err(e("open"))
}

fn errno_of<T>(r: io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

/// Makes this process `uid` for good: real, effective and saved user and group.
fn become_user(uid: u32) -> bool {
    // SAFETY: plain credential calls for this process.
    unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(uid, uid, uid) == 0
            && libc::setresuid(uid, uid, uid) == 0
    }
}

fn set_nonblocking(mr: &Moreram) {
    let fd = mr.as_fd().as_raw_fd();
    // SAFETY: flags of our own descriptor.
    unsafe {
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
}

/// Blocks SIGUSR1 in this process, so that it waits to be taken; returns the set to wait on.
fn block_sigusr1() -> libc::sigset_t {
    // SAFETY: an empty set is a valid `sigset_t` once initialised by `sigemptyset`.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: signal-mask calls for this process on a set of our own.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Whether a signal of `set` arrives within `ms` milliseconds.
fn signal_within(set: &libc::sigset_t, ms: i64) -> bool {
    let ts = libc::timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    // SAFETY: waits on a valid set with a valid timeout.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) > 0 }
}

/// Whether a scavenge request waits on `mr` within `ms` milliseconds.
fn event_within(mr: &Moreram, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: mr.as_fd().as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 && p.revents & libc::POLLPRI != 0 }
}

/// A copy of a value in a page that the kernel can read but not write.
struct ReadOnly {
    ptr: *mut libc::c_void,
}

impl ReadOnly {
    fn new<T>(v: &T) -> Result<Self, String> {
        // SAFETY: a fresh anonymous mapping of our own.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        // SAFETY: `T` fits in the page, which is ours and writable until the `mprotect`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref(v).cast::<u8>(),
                ptr.cast(),
                size_of::<T>(),
            );
            libc::mprotect(ptr, PAGE as usize, libc::PROT_READ);
        }
        Ok(ReadOnly { ptr })
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr, PAGE as usize) };
    }
}

/// Sets the bochs bank's watermarks so that reserving 32 MiB of it asks the reserving process to
/// give it back (its pool then leaves less than 40 MiB of the 64 unreserved); the bank must be
/// free. Returns the bank and the knobs, which go back on drop.
fn asking_bank(mr: &Moreram) -> Result<(u32, Knobs), String> {
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(mr)?;
    check!(
        bo.free == bo.size && bo.pooled == 0,
        "bochs bank not free: {} of {} free, {} pooled",
        bo.free,
        bo.size,
        bo.pooled
    );
    let knobs = Knobs::set(&bo, 40 * MIB, 0, 30_000)?;
    Ok((bo.index, knobs))
}

/// A process holding an inherited `/dev/moreram` descriptor of a root process, as another user,
/// may not make the module signal root: `NOTIFY` fails with `EPERM`. Turning the signal off, and
/// a signal to itself, are allowed.
fn notify_other_user() -> TestResult {
    let opener = spawn(|_| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let user = spawn(|_| {
            if !become_user(65534) {
                return 20;
            }
            if errno_of(mine.notify_signal(libc::SIGUSR1)) != libc::EPERM {
                return 21;
            }
            if mine.notify_signal(0).is_err() {
                return 22;
            }
            let Ok(own) = Moreram::open() else { return 23 };
            if own.notify_signal(libc::SIGUSR1).is_err() {
                return 24;
            }
            0
        });
        match user.wait() {
            (0, 0) => {}
            (0, code) => return code,
            _ => return 11,
        }
        if mine.notify_signal(libc::SIGUSR1).is_err() {
            return 12;
        }
        0
    });
    let (sig, code) = opener.wait();
    check!(
        sig == 0 && code == 0,
        "exit {code}, signal {sig} (21: another user's NOTIFY on root's file was not refused)"
    );
    Ok(())
}

/// The signal is checked again when it is sent, with the credentials of the process that asked
/// for it: a process that set it while it could signal the opener, and could not any more when
/// the request came (the opener became root), does not signal it. The request itself arrives.
fn notify_creds_changed() -> TestResult {
    let mr = open()?;
    let (bank, _knobs) = asking_bank(&mr)?;
    let opener = spawn(move |_| {
        let set = block_sigusr1();
        let Ok(mine) = Moreram::open() else { return 10 };
        // Nobody for now, root as the saved user.
        // SAFETY: a credential call for this process.
        if unsafe { libc::setresuid(65534, 65534, 0) } != 0 {
            return 11;
        }
        // Another process of nobody may signal it, so may ask for the signal.
        let setter = spawn(|_| {
            // SAFETY: as above.
            if unsafe { libc::setresuid(65534, 65534, 65534) } != 0 {
                return 20;
            }
            match mine.notify_signal(libc::SIGUSR1) {
                Ok(()) => 0,
                Err(_) => 21,
            }
        });
        match setter.wait() {
            (0, 0) => {}
            (0, code) => return code,
            _ => return 12,
        }
        // Root again, which nobody may not signal.
        // SAFETY: as above.
        if unsafe { libc::setresuid(0, 0, 0) } != 0 {
            return 13;
        }
        if mine.reserve_vram(bank, 32 * MIB).is_err() {
            return 14;
        }
        if !event_within(&mine, 10_000) || mine.read_event().is_err() {
            return 15;
        }
        let signalled = signal_within(&set, 500);
        let _ = mine.scavenge();
        if signalled {
            16
        } else {
            0
        }
    });
    let (sig, code) = opener.wait();
    mr.scavenge().map_err(e("SCAVENGE"))?;
    check!(
        sig == 0 && code == 0,
        "exit {code}, signal {sig} (16: the signal reached a process its setter may not signal)"
    );
    Ok(())
}

/// GIVE needs the receiver's consent: it must hold a handle to the allocation. Neither a process
/// that never imported it nor init can be made an owner; once imported, it can.
fn give_needs_holder() -> TestResult {
    let mr = open()?;
    let a = mr
        .alloc(4 * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let mut b = spawn(|c| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(h) = mine.import(c.recv()) else {
            return 11;
        };
        c.send(1);
        c.recv();
        match h.rights(0, PAGE) {
            Ok(r) if r.caller.owner => 0,
            _ => 12,
        }
    });
    let refused = expect_errno(
        "GIVE to a process that holds no handle",
        a.control(Control::Give(b.pid), 0, PAGE),
        libc::EACCES,
    )
    .and_then(|()| {
        expect_errno(
            "GIVE to init",
            a.control(Control::Give(1), 0, PAGE),
            libc::EACCES,
        )
    });
    if let Err(why) = refused {
        b.chan.send(u64::MAX);
        b.wait();
        return Err(why);
    }
    let r = a.rights(0, 4 * PAGE).map_err(e("RIGHTS"))?;
    check!(
        r.owner == getpid() && !r.mixed,
        "a refused GIVE changed the rights: {r:?}"
    );
    b.chan.send(a.share(None).map_err(e("SHARE"))?);
    check!(b.chan.recv() == 1, "the receiver could not import");
    let given = a.control(Control::Give(b.pid), 0, PAGE);
    b.chan.send(0);
    let (sig, code) = b.wait();
    given.map_err(e("GIVE to a holder"))?;
    check!(sig == 0 && code == 0, "receiver: exit {code}, signal {sig}");
    a.free().map_err(e("FREE"))?;
    Ok(())
}

/// An allocation imported into the file that made it has two handles there; freeing either
/// leaves the other usable, mmap included.
fn import_same_file() -> TestResult {
    let mr = open()?;
    for free_made in [true, false] {
        let a = mr
            .alloc(2 * PAGE, Placement::PreferVram, false)
            .map_err(e("ALLOC"))?;
        let b = mr
            .import(a.share(None).map_err(e("SHARE"))?)
            .map_err(e("IMPORT"))?;
        check!(
            a.handle() != b.handle() && a.mmap_offset() == b.mmap_offset(),
            "two handles {} and {} at {:#x} and {:#x}",
            a.handle(),
            b.handle(),
            a.mmap_offset(),
            b.mmap_offset()
        );
        let (gone, kept) = if free_made { (a, b) } else { (b, a) };
        gone.free().map_err(e("FREE"))?;
        kept.query().map_err(e("QUERY of the handle left"))?;
        let mut m = kept.map().map_err(e(if free_made {
            "mmap through the imported handle after freeing the first"
        } else {
            "mmap through the first handle after freeing the imported one"
        }))?;
        m.as_mut_slice().fill(0x5a);
        check!(
            m.as_slice().iter().all(|&x| x == 0x5a),
            "the mapping does not hold what was written"
        );
        drop(m);
        kept.free().map_err(e("FREE"))?;
    }
    Ok(())
}

/// An ALLOC or IMPORT whose answer cannot be written back (the argument is in a read-only page)
/// fails with `EFAULT` and leaves nothing: no handle the caller never learned, no memory held.
fn result_unwritable() -> TestResult {
    let mr = open()?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let bo = bochs(&mr)?;
    for (what, flags, bank) in [
        ("system pages", sys::MORERAM_ALLOC_SYSTEM_ONLY, 0),
        ("VRAM", sys::MORERAM_ALLOC_BANK, bo.index),
    ] {
        let before = mr.tier().map_err(e("TIER"))?;
        let free = bochs(&mr)?.free;
        let arg = ReadOnly::new(&sys::moreram_alloc {
            size: 16 * PAGE,
            flags,
            bank,
            ..Default::default()
        })?;
        // SAFETY: a `moreram_alloc` the kernel may read; its writes fault.
        let r = unsafe { sys::ioctl(mr.as_fd(), sys::MORERAM_IOC_ALLOC, arg.ptr) };
        expect_errno(
            &format!("ALLOC of {what} into a read-only argument"),
            r,
            libc::EFAULT,
        )?;
        let now = mr.tier().map_err(e("TIER"))?;
        check!(
            now.file_allocs == before.file_allocs
                && now.file_vram == before.file_vram
                && now.file_system == before.file_system
                && now.system_used == before.system_used,
            "ALLOC of {what} that could not answer left {} handles ({} before), {} bytes of \
             system pages in use ({} before)",
            now.file_allocs,
            before.file_allocs,
            now.system_used,
            before.system_used
        );
        check!(
            bochs(&mr)?.free == free,
            "ALLOC of {what} that could not answer kept VRAM"
        );
    }
    let a = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let token = a.share(None).map_err(e("SHARE"))?;
    let before = mr.tier().map_err(e("TIER"))?;
    let arg = ReadOnly::new(&sys::moreram_import {
        token,
        ..Default::default()
    })?;
    // SAFETY: a `moreram_import` the kernel may read; its writes fault.
    let r = unsafe { sys::ioctl(mr.as_fd(), sys::MORERAM_IOC_IMPORT, arg.ptr) };
    expect_errno("IMPORT into a read-only argument", r, libc::EFAULT)?;
    let now = mr.tier().map_err(e("TIER"))?;
    check!(
        now.file_allocs == before.file_allocs,
        "IMPORT that could not answer left {} handles ({} before)",
        now.file_allocs,
        before.file_allocs
    );
    a.free().map_err(e("FREE"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    Ok(())
}

/// A `read()` whose copy to user memory faults fails with `EFAULT` and keeps the event for the
/// next read.
fn read_fault_keeps_event() -> TestResult {
    let mr = open()?;
    let (bank, _knobs) = asking_bank(&mr)?;
    mr.reserve_vram(bank, 32 * MIB).map_err(e("RESERVE"))?;
    let result = (|| {
        check!(event_within(&mr, 10_000), "no request after RESERVE");
        let buf = ReadOnly::new(&sys::moreram_event::default())?;
        let len = size_of::<sys::moreram_event>();
        // SAFETY: reads into a read-only page of ours: the kernel's copy faults.
        let n = unsafe { libc::read(mr.as_fd().as_raw_fd(), buf.ptr, len) };
        check!(
            n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT),
            "read() into a read-only buffer: {n}, expected EFAULT"
        );
        set_nonblocking(&mr);
        let ev = mr
            .read_event()
            .map_err(e("read() after the failed one: the event was lost"))?;
        check!(
            ev.bank == bank && ev.bytes == 32 * MIB,
            "event after the failed read: {ev:?}"
        );
        Ok(())
    })();
    mr.scavenge().map_err(e("SCAVENGE"))?;
    result
}

/// Requests a file has not read do not pile up: a newer request for a bank replaces the one
/// waiting, so after a hundred rounds one event waits.
fn events_coalesce() -> TestResult {
    let mr = open()?;
    let (bank, _knobs) = asking_bank(&mr)?;
    for _ in 0..100 {
        mr.reserve_vram(bank, 32 * MIB).map_err(e("RESERVE"))?;
        mr.scavenge().map_err(e("SCAVENGE"))?;
    }
    set_nonblocking(&mr);
    let ev = mr.read_event().map_err(e("read"))?;
    check!(ev.bank == bank && ev.bytes == 32 * MIB, "event: {ev:?}");
    let mut more = 0;
    while mr.read_event().is_ok() && more < 1000 {
        more += 1;
    }
    check!(
        more == 0,
        "{} events waited after 100 requests for one bank",
        more + 1
    );
    Ok(())
}

/// An allocation's rights are bounded: at most 4096 runs of pages with the same rights and 64
/// writers per page. A change past either fails with `ENOSPC` and changes nothing; changes that
/// shrink them still work.
fn rights_bounds() -> TestResult {
    const RUNS: u64 = 4096;
    const WRITERS: usize = 64;
    let mr = open()?;
    let npages = RUNS + 256;
    let a = mr
        .alloc(npages * PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    // One grantee, every other page: each grant adds two runs.
    let mut grantee = spawn(|c| {
        c.recv();
        0
    });
    let mut granted = 0;
    let failed = loop {
        let page = 2 * granted + 1;
        if page >= npages {
            break None;
        }
        match a.control(Control::GrantWrite(grantee.pid), page * PAGE, PAGE) {
            Ok(()) => granted += 1,
            Err(er) => break Some(er),
        }
    };
    let shrink = a.control(Control::RevokeWriteAll, 0, npages * PAGE);
    let after = a.rights(0, npages * PAGE);
    grantee.chan.send(0);
    grantee.wait();
    match failed {
        None => {
            return Err(format!(
                "{granted} grants, {} runs: no bound",
                2 * granted + 1
            ))
        }
        Some(er) => check!(
            er.raw_os_error() == Some(libc::ENOSPC) && 2 * granted + 3 > RUNS,
            "grant {} (to {} runs) failed with {er}; expected ENOSPC past {RUNS} runs",
            granted + 1,
            2 * granted + 3
        ),
    }
    shrink.map_err(e("REVOKE_WRITE of every writer at the bound"))?;
    let r = after.map_err(e("RIGHTS"))?;
    check!(!r.mixed && r.writers.is_empty(), "after revoking: {r:?}");
    // Writers of one page: one process each.
    let mut writers: Vec<Child> = (0..=WRITERS)
        .map(|_| {
            spawn(|c| {
                c.recv();
                0
            })
        })
        .collect();
    let mut result = Ok(());
    for (i, w) in writers.iter().enumerate() {
        let r = a.control(Control::GrantWrite(w.pid), 0, PAGE);
        result = if i < WRITERS {
            r.map_err(e("GRANT_WRITE under the bound"))
        } else {
            expect_errno("GRANT_WRITE to a 65th writer", r, libc::ENOSPC)
        };
        if result.is_err() {
            break;
        }
    }
    for w in writers.iter_mut() {
        w.chan.send(0);
    }
    for w in writers {
        w.wait();
    }
    result?;
    a.free().map_err(e("FREE"))?;
    Ok(())
}

/// A failed ALLOC gives its mmap offsets back: after a hundred of them, a new allocation gets
/// the offset an earlier, freed one had.
fn failed_alloc_offsets() -> TestResult {
    let mr = open()?;
    let a = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    let offset = a.mmap_offset();
    a.free().map_err(e("FREE"))?;
    for _ in 0..100 {
        let mut r = sys::moreram_alloc {
            size: 1 << 30,
            flags: sys::MORERAM_ALLOC_VRAM_ONLY,
            ..Default::default()
        };
        expect_errno(
            "ALLOC of VRAM larger than any bank",
            mr.alloc_raw(&mut r),
            libc::E2BIG,
        )?;
    }
    let b = mr
        .alloc(PAGE, Placement::PreferVram, false)
        .map_err(e("ALLOC"))?;
    check!(
        b.mmap_offset() == offset,
        "failed ALLOCs used offsets: a freed allocation had {offset:#x}, the next one has {:#x}",
        b.mmap_offset()
    );
    b.free().map_err(e("FREE"))?;
    Ok(())
}

/// Words shared with forked children (an anonymous shared mapping): they see each other's
/// stores.
struct Shared {
    ptr: *mut libc::c_void,
}

impl Shared {
    fn new() -> Result<Self, String> {
        // SAFETY: a fresh anonymous shared mapping of our own; zero-filled.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        Ok(Shared { ptr })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < PAGE as usize / 8);
        // SAFETY: inside the mapping, aligned, and only ever accessed atomically.
        unsafe { &*self.ptr.cast::<AtomicU64>().add(i) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr, PAGE as usize) };
    }
}

/// Closing a file with 5,000 share tokens holds up nobody: another process's SHAREs, which take
/// the same lock, go on meanwhile (before, the lock was held for the whole close, seconds that
/// grew with the square of the number of tokens). The closed file's tokens, and only they, go.
fn close_many_shares() -> TestResult {
    const N: usize = 5_000;
    // Words: go, stop, SHAREs made, the longest one (ns).
    let shared = Shared::new()?;
    let (go, stop) = (shared.word(0), shared.word(1));
    let (count, longest) = (shared.word(2), shared.word(3));
    // Forked first: it must not hold the file that closes.
    let sharer = spawn(|_| {
        let Ok(mine) = Moreram::open() else { return 10 };
        let Ok(b) = mine.alloc(PAGE, Placement::SystemOnly, false) else {
            return 11;
        };
        while go.load(Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        while stop.load(Relaxed) == 0 {
            let t = Instant::now();
            if b.share(None).is_err() {
                return 12;
            }
            longest.fetch_max(t.elapsed().as_nanos() as u64, Relaxed);
            count.fetch_add(1, Relaxed);
        }
        0
    });
    let run = || -> TestResult {
        let keep = open()?;
        let kept = keep
            .alloc(PAGE, Placement::PreferVram, false)
            .map_err(e("ALLOC"))?;
        let kept_token = kept.share(None).map_err(e("SHARE"))?;
        let mr = open()?;
        let a = mr
            .alloc(PAGE, Placement::PreferVram, false)
            .map_err(e("ALLOC"))?;
        let made = Instant::now();
        let mut tokens = Vec::with_capacity(N);
        for _ in 0..N {
            tokens.push(a.share(None).map_err(e("SHARE"))?);
        }
        let made = made.elapsed();
        let _ = a.into_raw();
        go.store(1, Relaxed);
        while count.load(Relaxed) < 10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        longest.store(0, Relaxed);
        let before = count.load(Relaxed);
        let closed = Instant::now();
        drop(mr);
        let closed = closed.elapsed();
        let during = count.load(Relaxed) - before;
        let longest = Duration::from_nanos(longest.load(Relaxed));
        println!(
            "moreram-info: close-many-shares: {N} SHAREs took {made:?}; closing their file took \
             {closed:?}, while another process made {during} SHAREs, the longest {longest:?}"
        );
        check!(
            longest < Duration::from_secs(1),
            "while a file with {N} tokens closed ({closed:?}), another process's SHARE waited \
             {longest:?}"
        );
        for t in [tokens[0], tokens[N / 2], tokens[N - 1]] {
            expect_errno(
                "IMPORT of a closed file's token",
                keep.import(t),
                libc::ENOENT,
            )?;
        }
        keep.import(kept_token)
            .map_err(e("IMPORT of another file's token"))?
            .free()
            .map_err(e("FREE"))?;
        kept.free().map_err(e("FREE"))
    };
    let result = run();
    go.store(1, Relaxed);
    stop.store(1, Relaxed);
    let (sig, code) = sharer.wait();
    result?;
    check!(sig == 0 && code == 0, "sharer: exit {code}, signal {sig}");
    Ok(())
}

/// Kernel log records from a point on.
struct Kmsg(File);

impl Kmsg {
    /// From now.
    fn now() -> Result<Self, String> {
        let f = File::open("/dev/kmsg").map_err(e("/dev/kmsg"))?;
        // SAFETY: our own descriptor.
        unsafe {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END);
        }
        Ok(Kmsg(f))
    }

    /// The records since that contain one of `needles`.
    fn find(&mut self, needles: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if needles.iter().any(|x| rec.contains(x)) {
                        found.push(rec);
                    }
                }
                // Overwritten records: go on with the next.
                Err(er) if er.raw_os_error() == Some(libc::EPIPE) => {}
                Err(_) => break,
            }
        }
        found
    }
}

/// A field of `/proc/meminfo`, in bytes.
fn meminfo(key: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/meminfo").map_err(e("/proc/meminfo"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb << 10)
        .ok_or(format!("no {key} in /proc/meminfo"))
}

/// System pages beyond what the machine has available fail at once with `ENOMEM`, for RESERVE
/// as for ALLOC: no warning from the page allocator, no OOM killer.
fn reserve_huge() -> TestResult {
    let mr = open()?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let mut kmsg = Kmsg::now()?;
    expect_errno(
        "RESERVE of 1 TiB of system pages",
        mr.reserve_system(1 << 40),
        libc::ENOMEM,
    )?;
    let total = meminfo("MemTotal")?;
    let available = meminfo("MemAvailable")?;
    let size = (available + (total - available) / 2) & !(PAGE - 1);
    check!(
        available < size && size < total,
        "no size between MemAvailable {available} and MemTotal {total}"
    );
    expect_errno(
        "RESERVE of more system pages than are available",
        mr.reserve_system(size),
        libc::ENOMEM,
    )?;
    expect_errno(
        "ALLOC of more system pages than are available",
        mr.alloc(size, Placement::SystemOnly, false),
        libc::ENOMEM,
    )?;
    let bad = kmsg.find(&["WARNING:", "invoked oom-killer", "Out of memory"]);
    check!(bad.is_empty(), "the kernel said: {}", bad.join(" | "));
    let t = mr.tier().map_err(e("TIER"))?;
    check!(
        t.pool_system == 0,
        "{} bytes left in the pool",
        t.pool_system
    );
    Ok(())
}

/// The limits the module was loaded with (`MORERAM_LIMITS`): handles per file and per user,
/// share tokens per file and per user.
fn limits() -> Result<[u32; 4], String> {
    let v = std::env::var("MORERAM_LIMITS").map_err(|_| "MORERAM_LIMITS not set")?;
    let n: Vec<u32> = v
        .split(',')
        .map(|x| x.parse().map_err(|_| format!("MORERAM_LIMITS={v}")))
        .collect::<Result<_, _>>()?;
    n.try_into().map_err(|_| format!("MORERAM_LIMITS={v}"))
}

/// IMPORTs `token` into `mr` until it fails: how many worked, and the errno (0: `cap` worked).
fn import_until(mr: &Moreram, token: u64, cap: u32) -> (u32, i32) {
    let mut n = 0;
    while n < cap {
        let mut req = sys::moreram_import {
            token,
            ..Default::default()
        };
        // Handles are freed with their file.
        if let Err(er) = sys::import(mr.as_fd(), &mut req) {
            return (n, er.raw_os_error().unwrap_or(0));
        }
        n += 1;
    }
    (n, 0)
}

/// A process of another user allocates and shares while root is at its limits.
fn other_user_not_held_back() -> TestResult {
    let child = spawn(|_| {
        if !become_user(65534) {
            return 10;
        }
        let Ok(mine) = Moreram::open() else { return 11 };
        let Ok(a) = mine.alloc(PAGE, Placement::SystemOnly, false) else {
            return 12;
        };
        match a.share(None) {
            Ok(_) => 0,
            Err(_) => 13,
        }
    });
    let (sig, code) = child.wait();
    check!(
        sig == 0 && code == 0,
        "another user was held back: exit {code}, signal {sig}"
    );
    Ok(())
}

/// Handles are bounded per file (`EMFILE`) and per user (`EDQUOT`); a handle freed, or a file
/// closed, gives its share back.
fn handle_quota() -> TestResult {
    let [per_file, per_user, _, _] = limits()?;
    check!(
        per_user > per_file + 1 && per_user < 2 * per_file,
        "limits {per_file}, {per_user}: this test needs file < user - 1 < 2 * file"
    );
    let mr0 = open()?;
    let a = mr0
        .alloc(PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC"))?;
    let token = a.share(None).map_err(e("SHARE"))?;
    let mr1 = open()?;
    let (n, errno) = import_until(&mr1, token, per_user);
    check!(
        n == per_file && errno == libc::EMFILE,
        "one file: {n} handles, then errno {errno}; expected {per_file}, then EMFILE"
    );
    let mr2 = open()?;
    let rest = per_user - per_file - 1;
    let (n, errno) = import_until(&mr2, token, per_user);
    check!(
        n == rest && errno == libc::EDQUOT,
        "second file: {n} handles, then errno {errno}; expected {rest}, then EDQUOT"
    );
    other_user_not_held_back()?;
    mr1.free_raw(1).map_err(e("FREE"))?;
    let (n, errno) = import_until(&mr2, token, per_user);
    check!(
        n == 1 && errno == libc::EDQUOT,
        "after a FREE: {n} handles, then errno {errno}; expected 1, then EDQUOT"
    );
    drop(mr1);
    let (n, errno) = import_until(&mr2, token, per_user);
    check!(
        n == per_file - rest - 1 && errno == libc::EMFILE,
        "after closing a file: {n} more handles, then errno {errno}; expected {}, then EMFILE",
        per_file - rest - 1
    );
    Ok(())
}

/// SHAREs until one fails: how many worked, and the errno (0: `cap` worked).
fn share_until(a: &moreram::Allocation<'_>, cap: u32) -> (u32, i32) {
    let mut n = 0;
    while n < cap {
        if let Err(er) = a.share(None) {
            return (n, er.raw_os_error().unwrap_or(0));
        }
        n += 1;
    }
    (n, 0)
}

/// Share tokens are bounded per file (`EMFILE`) and per user (`EDQUOT`); tokens go with the
/// handle they were made from.
fn share_quota() -> TestResult {
    let [_, _, per_file, per_user] = limits()?;
    check!(
        per_user > per_file && per_user < 2 * per_file,
        "limits {per_file}, {per_user}: this test needs file < user < 2 * file"
    );
    let mr1 = open()?;
    let a1 = mr1
        .alloc(PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC"))?;
    let (n, errno) = share_until(&a1, per_user);
    check!(
        n == per_file && errno == libc::EMFILE,
        "one file: {n} tokens, then errno {errno}; expected {per_file}, then EMFILE"
    );
    let mr2 = open()?;
    let a2 = mr2
        .alloc(PAGE, Placement::SystemOnly, false)
        .map_err(e("ALLOC"))?;
    let rest = per_user - per_file;
    let (n, errno) = share_until(&a2, per_user);
    check!(
        n == rest && errno == libc::EDQUOT,
        "second file: {n} tokens, then errno {errno}; expected {rest}, then EDQUOT"
    );
    other_user_not_held_back()?;
    a1.free().map_err(e("FREE"))?;
    let (n, errno) = share_until(&a2, per_user);
    check!(
        n == per_file - rest && errno == libc::EMFILE,
        "after freeing the first file's handle: {n} more tokens, then errno {errno}; expected \
         {}, then EMFILE",
        per_file - rest
    );
    Ok(())
}
