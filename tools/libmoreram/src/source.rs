// SPDX-License-Identifier: GPL-2.0
//! The tier memory source: `/dev/moreram`.

use crate::chunk::{Handle, Kind, Placement, Source, Tier};
use moreram::sys;
use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    sync::atomic::{AtomicI32, Ordering},
};

/// `/dev/moreram`, opened once per process (again in a forked child, lazily).
pub struct Kernel {
    fd: AtomicI32,
}

fn open_device() -> io::Result<i32> {
    let path = c"/dev/moreram";
    // SAFETY: a constant NUL-terminated path; the descriptor is ours.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

impl Kernel {
    /// Opens `/dev/moreram`: `ENOENT` without the node, `ENODEV`/`ENXIO` without the module.
    pub fn open() -> io::Result<Kernel> {
        Ok(Kernel {
            fd: AtomicI32::new(open_device()?),
        })
    }

    /// The file descriptor of this process (opened again after a fork).
    pub fn fd(&self) -> io::Result<i32> {
        let fd = self.fd.load(Ordering::Acquire);
        if fd >= 0 {
            return Ok(fd);
        }
        let new = open_device()?;
        match self
            .fd
            .compare_exchange(-1, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(new),
            Err(other) => {
                // SAFETY: `new` is ours and unused.
                unsafe { libc::close(new) };
                Ok(other)
            }
        }
    }
}

/// Borrows a raw descriptor for the `sys` wrappers.
pub fn borrow(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: the library's descriptors stay open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `ALLOC` with a placement: the request. Every allocation of the library is copied into a
/// child at `fork()` (`MORERAM_ALLOC_FORK_COPY`), as anonymous memory is: the child's heap is
/// the parent's as it was, and its own.
pub fn alloc_request(len: usize, placement: Placement) -> sys::moreram_alloc {
    let (mut flags, bank) = match placement.kind {
        Kind::Any => (0, 0),
        Kind::VramOnly => (sys::MORERAM_ALLOC_VRAM_ONLY, 0),
        Kind::SystemOnly => (sys::MORERAM_ALLOC_SYSTEM_ONLY, 0),
        Kind::Bank(b) => (sys::MORERAM_ALLOC_BANK, b),
    };
    if placement.contiguous {
        flags |= sys::MORERAM_ALLOC_CONTIGUOUS;
    }
    flags |= sys::MORERAM_ALLOC_FORK_COPY;
    sys::moreram_alloc {
        size: len as u64,
        flags,
        bank,
        ..Default::default()
    }
}

/// Maps `len` bytes of an allocation of `fd` at `addr`, replacing what is there.
pub fn map_fixed(fd: i32, addr: usize, len: usize, offset: u64, prot: i32) -> io::Result<()> {
    // SAFETY: `addr..addr + len` is reserved address space of the library's; MAP_FIXED
    // replaces only that.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The tier from `ALLOC`'s or `IMPORT`'s answer.
pub fn tier(tier: u32, bank: u32) -> Tier {
    if tier == sys::MORERAM_TIER_VRAM {
        Tier::Vram(bank)
    } else {
        Tier::System
    }
}

impl Source for Kernel {
    fn map(&self, addr: usize, len: usize, placement: Placement) -> io::Result<(Handle, Tier)> {
        let fd = self.fd()?;
        let mut req = alloc_request(len, placement);
        sys::alloc(borrow(fd), &mut req)?;
        let handle = Handle {
            fd,
            handle: req.handle,
            mmap_offset: req.mmap_offset,
        };
        if let Err(e) = map_fixed(
            fd,
            addr,
            len,
            req.mmap_offset,
            libc::PROT_READ | libc::PROT_WRITE,
        ) {
            self.free(handle);
            return Err(e);
        }
        Ok((handle, tier(req.tier, req.bank_used)))
    }

    fn free(&self, h: Handle) {
        let req = sys::moreram_handle {
            handle: h.handle,
            ..Default::default()
        };
        let _ = sys::free(borrow(h.fd), &req);
    }

    fn forked(&self) {
        // The descriptor is shared with the parent, and so are its handles: the child makes
        // its own allocations through a file of its own (opened on first use).
        self.fd.store(-1, Ordering::Release);
    }
}

impl AsRawFd for Kernel {
    fn as_raw_fd(&self) -> i32 {
        self.fd.load(Ordering::Acquire)
    }
}

/// Anonymous memory in place of the kernel: for the host tests only.
#[cfg(test)]
pub struct Anon {
    next: std::sync::atomic::AtomicU32,
}

#[cfg(test)]
#[allow(clippy::new_without_default)]
impl Anon {
    /// A source whose handles count from 1.
    pub const fn new() -> Self {
        Anon {
            next: std::sync::atomic::AtomicU32::new(1),
        }
    }
}

#[cfg(test)]
impl Source for Anon {
    fn map(&self, addr: usize, len: usize, placement: Placement) -> io::Result<(Handle, Tier)> {
        // SAFETY: reserved address space of the library's, replaced by anonymous memory.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let tier = match placement.kind {
            Kind::SystemOnly => Tier::System,
            Kind::Bank(b) => Tier::Vram(b),
            _ => Tier::Vram(0),
        };
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        Ok((
            Handle {
                fd: -1,
                handle,
                mmap_offset: 0,
            },
            tier,
        ))
    }

    fn free(&self, _h: Handle) {}
}
