//! Tests of what one user can make the module do or hold, and of calls that must leave nothing
//! behind when they fail.

use crate::{
    check, expect_errno,
    owners::spawn,
    pools::{bochs, Knobs},
    Test, TestResult,
};
use moreram::{sys, Control, Moreram, Placement};
use std::{
    io,
    mem::size_of,
    os::fd::{AsFd, AsRawFd},
};

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

/// The tests of this file.
pub const TESTS: &[Test] = &[
    Test::new("give-needs-holder", &["limits"], |_| give_needs_holder()),
    Test::new("import-same-file", &["limits"], |_| import_same_file()),
    Test::new("result-unwritable", &["limits"], |_| result_unwritable()),
    Test::new("read-fault-keeps-event", &["limits"], |_| {
        read_fault_keeps_event()
    }),
];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn open() -> Result<Moreram, String> {
    Moreram::open().map_err(e("open"))
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
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
