//! The raw ABI of `/dev/moreram`, as `include/uapi/linux/moreram.h` defines it.
//!
//! The structs and constants are generated from the header by bindgen
//! (`rust/uapi/generated.rs`; `make uapi` regenerates it, `make test` checks it is current), with
//! bindgen's compile-time checks of every size, alignment and offset. Nothing here is written by
//! hand but one thin wrapper per ioctl, which passes its struct as it is and maps -1 to the
//! errno; each checks at compile time that its command number carries its struct's size and
//! direction. Nothing here validates or interprets: that is the typed API at the crate root. Use
//! this layer for requests the typed API does not make, such as the malformed ones of the tests.

#![allow(non_camel_case_types, non_upper_case_globals, missing_docs)]

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

include!("../../../rust/uapi/generated.rs");

/// Issues `ioctl(fd, cmd, arg)` and maps -1 to the errno.
///
/// # Safety
///
/// `arg` must be what `cmd` expects: a pointer to a value of the type the command reads or
/// writes, valid for that, and valid for whatever user pointers inside it the kernel follows.
/// Unless the point is to see the kernel refuse it (a NULL or unmapped pointer is then fine).
pub unsafe fn ioctl<T>(fd: BorrowedFd<'_>, cmd: u32, arg: *mut T) -> io::Result<i32> {
    // SAFETY: the caller vouches for `arg`; `fd` is open while borrowed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::Ioctl, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether `cmd` is `_IOWR(MORERAM_IOC_MAGIC, nr, T)` (or `_IOW` when `!read`) for its own number
/// `nr` (`_IOC_NR`, the low byte): the kernel then reads and writes (or only reads) exactly a `T`.
const fn carries<T>(cmd: u32, read: bool) -> bool {
    let nr = cmd & 0xff;
    let want = if read {
        libc::_IOWR::<T>(MORERAM_IOC_MAGIC, nr)
    } else {
        libc::_IOW::<T>(MORERAM_IOC_MAGIC, nr)
    };
    cmd as libc::Ioctl == want
}

/// Defines the wrapper of an ioctl whose struct holds no user pointer, after checking that the
/// command number says that struct, and the direction: `_IOWR` takes `&mut`, `_IOW` takes `&`.
macro_rules! wrap {
    ($(#[$doc:meta])* $name:ident, _IOWR, $cmd:ident, $t:ty) => {
        const _: () = assert!(
            carries::<$t>($cmd, true),
            concat!(stringify!($cmd), " is not _IOWR of ", stringify!($t))
        );
        $(#[$doc])*
        pub fn $name(fd: BorrowedFd<'_>, arg: &mut $t) -> io::Result<()> {
            // SAFETY: `arg` is the struct the command reads and writes (the size and direction in
            // the number are checked above), and holds no pointer.
            unsafe { ioctl(fd, $cmd, arg) }.map(drop)
        }
    };
    ($(#[$doc:meta])* $name:ident, _IOW, $cmd:ident, $t:ty) => {
        const _: () = assert!(
            carries::<$t>($cmd, false),
            concat!(stringify!($cmd), " is not _IOW of ", stringify!($t))
        );
        $(#[$doc])*
        pub fn $name(fd: BorrowedFd<'_>, arg: &$t) -> io::Result<()> {
            // SAFETY: `arg` is the struct the command reads, and only reads (the size and
            // direction in the number are checked above); it holds no pointer.
            unsafe { ioctl(fd, $cmd, std::ptr::from_ref(arg).cast_mut()) }.map(drop)
        }
    };
}

wrap!(
    /// `MORERAM_IOC_ALLOC`.
    alloc, _IOWR, MORERAM_IOC_ALLOC, moreram_alloc
);
wrap!(
    /// `MORERAM_IOC_FREE`.
    free, _IOW, MORERAM_IOC_FREE, moreram_handle
);
wrap!(
    /// `MORERAM_IOC_QUERY`.
    query, _IOWR, MORERAM_IOC_QUERY, moreram_query
);
wrap!(
    /// `MORERAM_IOC_TIER`.
    tier, _IOWR, MORERAM_IOC_TIER, moreram_tier
);
wrap!(
    /// `MORERAM_IOC_SHARE`.
    share, _IOWR, MORERAM_IOC_SHARE, moreram_share
);
wrap!(
    /// `MORERAM_IOC_IMPORT`.
    import, _IOWR, MORERAM_IOC_IMPORT, moreram_import
);
wrap!(
    /// `MORERAM_IOC_CONTROL`.
    control, _IOW, MORERAM_IOC_CONTROL, moreram_control
);
wrap!(
    /// `MORERAM_IOC_RESERVE`.
    reserve, _IOW, MORERAM_IOC_RESERVE, moreram_reserve
);
wrap!(
    /// `MORERAM_IOC_SCAVENGE`.
    scavenge, _IOWR, MORERAM_IOC_SCAVENGE, moreram_scavenge
);
wrap!(
    /// `MORERAM_IOC_NOTIFY`.
    notify, _IOW, MORERAM_IOC_NOTIFY, moreram_notify
);

const _: () = assert!(carries::<moreram_banks>(MORERAM_IOC_BANKS, true));
const _: () = assert!(carries::<moreram_rights>(MORERAM_IOC_RIGHTS, true));
const _: () = assert!(carries::<moreram_procs>(MORERAM_IOC_PROCS, true));

/// `MORERAM_IOC_BANKS`.
///
/// # Safety
///
/// `arg.banks_ptr` must be 0 or point to `arg.capacity * arg.entry_size` bytes this call may
/// overwrite (or be an address that is not mapped: the call then fails with `EFAULT`).
pub unsafe fn banks(fd: BorrowedFd<'_>, arg: &mut moreram_banks) -> io::Result<()> {
    // SAFETY: `arg` is the command's struct (checked above); the caller vouches for `banks_ptr`.
    unsafe { ioctl(fd, MORERAM_IOC_BANKS, arg) }.map(drop)
}

/// `MORERAM_IOC_RIGHTS`.
///
/// # Safety
///
/// `arg.writers_ptr` and `arg.readers_ptr` must each be 0 or point to as many `__s32` as
/// `writers_cap` and `readers_cap` say, which this call may overwrite.
pub unsafe fn rights(fd: BorrowedFd<'_>, arg: &mut moreram_rights) -> io::Result<()> {
    // SAFETY: `arg` is the command's struct (checked above); the caller vouches for the arrays.
    unsafe { ioctl(fd, MORERAM_IOC_RIGHTS, arg) }.map(drop)
}

/// `MORERAM_IOC_PROCS`.
///
/// # Safety
///
/// `arg.procs_ptr` must be 0 or point to `arg.capacity * arg.entry_size` bytes this call may
/// overwrite.
pub unsafe fn procs(fd: BorrowedFd<'_>, arg: &mut moreram_procs) -> io::Result<()> {
    // SAFETY: `arg` is the command's struct (checked above); the caller vouches for `procs_ptr`.
    unsafe { ioctl(fd, MORERAM_IOC_PROCS, arg) }.map(drop)
}

/// `read(2)` of one event into `ev`; returns the bytes read.
pub fn read_event(fd: BorrowedFd<'_>, ev: &mut moreram_event) -> io::Result<usize> {
    // SAFETY: reads at most `size_of::<moreram_event>()` bytes into `ev`, any of which are valid
    // for its integer fields.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            std::ptr::from_mut(ev).cast(),
            size_of::<moreram_event>(),
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
