// SPDX-License-Identifier: GPL-2.0

//! Mirror of `include/uapi/linux/moreram.h`, the one definition of the user ABI.
//!
//! Every struct here has a twin in the header. The C shim computes sizes and field offsets from
//! the header itself ([`C_LAYOUT`]), and the KUnit suite compares them with [`RUST_LAYOUT`], so a
//! drift between the two fails `make test`.

use core::mem::{offset_of, size_of};
use kernel::{
    ioctl::_IOWR,
    transmute::{AsBytes, FromBytes},
};

/// `MORERAM_IOC_MAGIC`.
pub(crate) const IOC_MAGIC: u32 = 0xB9;

/// `MORERAM_BANK_PREFETCHABLE`.
pub(crate) const BANK_PREFETCHABLE: u32 = 1 << 0;
/// `MORERAM_BANK_64BIT`.
pub(crate) const BANK_64BIT: u32 = 1 << 1;

/// `struct moreram_bank_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BankInfo {
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) size: u64,
    pub(crate) free: u64,
    pub(crate) bar_start: u64,
    pub(crate) bar_len: u64,
    pub(crate) pci_domain: u32,
    pub(crate) pci_bus: u8,
    pub(crate) pci_dev: u8,
    pub(crate) pci_func: u8,
    pub(crate) bar: u8,
    pub(crate) vendor: u16,
    pub(crate) device: u16,
    pub(crate) reserved0: u32,
    pub(crate) reserved: [u64; 4],
}

/// `MORERAM_BANK_INFO_SIZE_V1`.
pub(crate) const BANK_INFO_SIZE_V1: usize = 88;

/// `struct moreram_banks`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Banks {
    pub(crate) count: u32,
    pub(crate) capacity: u32,
    pub(crate) entry_size: u32,
    pub(crate) reserved0: u32,
    pub(crate) banks_ptr: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `BankInfo` is `repr(C)` of integers with no padding (checked below), so every byte
// pattern is a valid value and every value is fully initialised.
unsafe impl FromBytes for BankInfo {}
// SAFETY: See above.
unsafe impl AsBytes for BankInfo {}
// SAFETY: `Banks` is `repr(C)` of integers with no padding (checked below).
unsafe impl FromBytes for Banks {}
// SAFETY: See above.
unsafe impl AsBytes for Banks {}

/// `MORERAM_IOC_BANKS`.
pub(crate) const IOC_BANKS: u32 = _IOWR::<Banks>(IOC_MAGIC, 0x00);

// No implicit padding anywhere: the sum of the fields is the size.
const _: () = assert!(size_of::<BankInfo>() == BANK_INFO_SIZE_V1);
const _: () = assert!(size_of::<Banks>() == 40);

/// One entry of a layout table: a struct size or a field offset, by name.
#[repr(C)]
pub(crate) struct LayoutEntry {
    /// `"struct"` for a size, `"struct.field"` for an offset; NUL-terminated.
    pub(crate) name: *const u8,
    pub(crate) value: usize,
}

// SAFETY: entries point to static string literals and are never written.
unsafe impl Sync for LayoutEntry {}

macro_rules! layout {
    ($($s:ident : $t:ty { $($f:ident),* }),* $(,)?) => {
        &[$(
            LayoutEntry {
                name: concat!(stringify!($s), "\0").as_ptr(),
                value: size_of::<$t>(),
            },
            $(LayoutEntry {
                name: concat!(stringify!($s), ".", stringify!($f), "\0").as_ptr(),
                value: offset_of!($t, $f),
            },)*
        )*]
    };
}

/// Sizes and offsets of the Rust mirror, named as in the C header.
pub(crate) static RUST_LAYOUT: &[LayoutEntry] = layout! {
    moreram_bank_info: BankInfo {
        index, flags, size, free, bar_start, bar_len, pci_domain, pci_bus, pci_dev, pci_func,
        bar, vendor, device, reserved0, reserved
    },
    moreram_banks: Banks { count, capacity, entry_size, reserved0, banks_ptr, reserved },
};
