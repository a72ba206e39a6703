// SPDX-License-Identifier: GPL-2.0

//! `/dev/moreram`, the misc device through which programs use the tier.
//!
//! The device is registered with raw `file_operations` rather than through
//! [`kernel::miscdevice::MiscDevice`]: the node must be usable by every user (mode 0666; access
//! control is the job of the ownership model, not of file permissions) and must support `poll`,
//! `read` and `show_fdinfo`, and the 7.3 abstraction offers none of these. The callbacks below are
//! short forwarders to [`OpenFile`].

use core::mem::size_of;
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    mm::virt::VmaNew,
    prelude::*,
    seq_file::SeqFile,
    sync::{poll::PollTable, Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
    uaccess::{UserPtr, UserSlice},
};

use super::{file::OpenFile, Tier};

/// The registered `/dev/moreram` node, and the tier its files use.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    #[pin]
    dev: Opaque<bindings::miscdevice>,
    tier: Arc<Tier>,
}

// SAFETY: the miscdevice is only touched by `misc_register`/`misc_deregister` and read by
// `open`, which may run on any thread.
unsafe impl Send for Registration {}
// SAFETY: no method gives access to the miscdevice through `&self`.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/moreram` for `tier`.
    pub(crate) fn register(tier: Arc<Tier>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            tier,
            dev <- Opaque::try_ffi_init(|slot: *mut bindings::miscdevice| {
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe {
                    slot.write(bindings::miscdevice {
                        minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                        name: c"moreram".as_char_ptr(),
                        fops: &FOPS.0,
                        mode: 0o666,
                        ..pin_init::zeroed()
                    })
                };
                // SAFETY: `slot` is initialised, pinned, and lives until `drop` deregisters it;
                // `tier` is initialised before it (field order above), so `open` finds it.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered in `register`, which is the only way to build a `Registration`.
        unsafe { bindings::misc_deregister(self.dev.get()) };
    }
}

/// A C table that is only read after static initialisation.
struct AssertSync<T>(T);

// SAFETY: the wrapped table is immutable.
unsafe impl<T> Sync for AssertSync<T> {}

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(moreram_open),
    release: Some(moreram_release),
    read: Some(moreram_read),
    poll: Some(moreram_poll),
    show_fdinfo: Some(moreram_show_fdinfo),
    mmap: Some(moreram_mmap),
    unlocked_ioctl: Some(moreram_ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: Some(bindings::compat_ptr_ioctl),
    ..pin_init::zeroed()
});

/// # Safety
///
/// Called by the VFS when `file` of `/dev/moreram` is opened, after `misc_open` pointed
/// `private_data` at our `miscdevice`.
unsafe extern "C" fn moreram_open(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `misc_open` set `private_data` to the registered miscdevice, which is the `dev`
    // field of a live `Registration` (it is deregistered before it is dropped).
    let reg = unsafe {
        let dev = (*file).private_data.cast::<Opaque<bindings::miscdevice>>();
        &*kernel::container_of!(dev, Registration, dev)
    };
    match OpenFile::open(&reg.tier) {
        Ok(state) => {
            // SAFETY: after `misc_open`, `private_data` is ours until `release`. Every open, through
            // any device node, maps through the one address space of the tier (as DRM does), so
            // that zapping an allocation's offsets reaches all of its mappings; the space outlives
            // the file, which holds the tier.
            unsafe {
                (*file).private_data = state.into_foreign();
                (*file).f_mapping = reg.tier.space.mapping();
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to `file` goes.
unsafe extern "C" fn moreram_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` was set by `moreram_open` with `into_foreign`, and this is the last
    // use of it. Dropping it lets go of every handle of the file.
    let state = unsafe { Arc::<OpenFile>::from_foreign((*file).private_data) };
    state.release();
    0
}

/// The state of an open file.
///
/// # Safety
///
/// `file` must be an open file of `/dev/moreram`, between `moreram_open` and `moreram_release`.
unsafe fn file_state<'a>(file: *mut bindings::file) -> ArcBorrow<'a, OpenFile> {
    // SAFETY: set by `moreram_open`, freed only by `moreram_release` (caller guarantee).
    unsafe { Arc::<OpenFile>::borrow((*file).private_data) }
}

/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the VFS calls ioctl only between open and release.
    let state: Arc<OpenFile> = unsafe { file_state(file) }.into();
    from_result(|| state.ioctl(cmd, arg).map(|()| 0))
}

/// `read(2)`: one scavenge event (`struct moreram_event`) per call; waits for one unless the file
/// is non-blocking.
///
/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram` and a user buffer.
unsafe extern "C" fn moreram_read(
    file: *mut bindings::file,
    buf: *mut kernel::ffi::c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: called between open and release.
    let state = unsafe { file_state(file) };
    // SAFETY: `file` is valid for the call.
    let nonblock = unsafe { (*file).f_flags } & bindings::O_NONBLOCK != 0;
    let len = size_of::<crate::uapi::moreram_event>();
    from_result(|| {
        if count < len {
            return Err(EINVAL);
        }
        let ev = state.next_event(nonblock)?;
        UserSlice::new(UserPtr::from_addr(buf as usize), len)
            .writer()
            .write(&ev)
            // Not delivered: the next read gets it.
            .inspect_err(|_| state.unread(ev))?;
        Ok(len as isize)
    })
}

/// `/proc/<pid>/fdinfo/<fd>`: DRM usage-stats keys.
///
/// # Safety
///
/// Called by procfs with a valid seq_file and an open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_show_fdinfo(m: *mut bindings::seq_file, file: *mut bindings::file) {
    // SAFETY: called between open and release; `m` is valid for the call.
    let (state, m) = unsafe { (file_state(file), SeqFile::from_raw(m)) };
    state.show_fdinfo(m);
}

/// `poll(2)`: `POLLPRI | POLLIN` while a scavenge event waits to be read.
///
/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_poll(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: called between open and release; the poll table is valid for the call.
    let (state, f, table) = unsafe {
        (
            file_state(file),
            kernel::fs::File::from_raw_file(file),
            PollTable::from_raw(wait),
        )
    };
    table.register_wait(f, state.event_cv());
    if state.has_events() {
        bindings::POLLPRI | bindings::POLLIN | bindings::POLLRDNORM
    } else {
        0
    }
}

/// # Safety
///
/// Called by the mm in `mmap(2)` on an open `file` of `/dev/moreram` with a new `vma`.
unsafe extern "C" fn moreram_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: called between open and release; `vma` is being set up by `mmap` and is not
    // shared yet.
    let (state, vma) = unsafe { (file_state(file), VmaNew::from_raw(vma)) };
    from_result(|| state.mmap(vma).map(|()| 0))
}
