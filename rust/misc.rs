// SPDX-License-Identifier: GPL-2.0

//! `/dev/moreram`, the misc device through which programs use the tier.
//!
//! The device is registered with raw `file_operations` rather than through
//! [`kernel::miscdevice::MiscDevice`]: the node must be usable by every user (mode 0666; access
//! control is the job of the ownership model, not of file permissions) and must support `poll`,
//! and the safe abstraction offers neither.

use core::mem::size_of;
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    prelude::*,
    transmute::AsBytes,
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
};

use crate::{bank, uapi};

/// Largest `entry_size` accepted from user space: far beyond any version of the struct, small
/// enough that a bad value cannot make us write much.
const MAX_ENTRY_SIZE: u32 = 4096;

/// The registered `/dev/moreram` node.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    #[pin]
    dev: Opaque<bindings::miscdevice>,
}

// SAFETY: the miscdevice is only touched by `misc_register`/`misc_deregister`, which may run on
// any thread.
unsafe impl Send for Registration {}
// SAFETY: no method gives access to the miscdevice through `&self`.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/moreram`.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
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
                // SAFETY: `slot` is initialised, pinned, and lives until `drop` deregisters it.
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

// SAFETY: the wrapped tables are immutable.
unsafe impl<T> Sync for AssertSync<T> {}

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    unlocked_ioctl: Some(moreram_ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: Some(bindings::compat_ptr_ioctl),
    ..pin_init::zeroed()
});

/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_ioctl(
    _file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    from_result(|| {
        match cmd {
            uapi::IOC_BANKS => ioctl_banks(arg),
            _ => Err(ENOTTY),
        }
        .map(|r| r as c_long)
    })
}

/// `MORERAM_IOC_BANKS`: reports the banks bound now.
fn ioctl_banks(arg: usize) -> Result<isize> {
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<uapi::Banks>()).reader_writer();
    let mut req: uapi::Banks = reader.read()?;
    if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) {
        return Err(EINVAL);
    }
    let banks = bank::snapshot()?;
    let n = banks.len().min(usize::try_from(req.capacity)?);
    if n > 0 {
        if req.entry_size < uapi::BANK_INFO_SIZE_V1 as u32 || req.entry_size > MAX_ENTRY_SIZE {
            return Err(EINVAL);
        }
        let entry = usize::try_from(req.entry_size)?;
        let ptr = UserPtr::from_addr(usize::try_from(req.banks_ptr).map_err(|_| EFAULT)?);
        let mut out = UserSlice::new(ptr, n.checked_mul(entry).ok_or(EINVAL)?).writer();
        for b in &banks[..n] {
            let info = b.info();
            let bytes = info.as_bytes();
            out.write_slice(&bytes[..entry.min(bytes.len())])?;
            let mut rest = entry.saturating_sub(bytes.len());
            while rest > 0 {
                let zeros = [0u8; 64];
                let k = rest.min(zeros.len());
                out.write_slice(&zeros[..k])?;
                rest -= k;
            }
        }
    }
    req.count = u32::try_from(banks.len())?;
    writer.write(&req)?;
    Ok(0)
}
