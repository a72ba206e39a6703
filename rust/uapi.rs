// SPDX-License-Identifier: GPL-2.0

//! Mirror of `include/uapi/linux/moreram.h`, the one definition of the user ABI.
//!
//! Every struct here has a twin in the header. The C shim computes sizes and field offsets from
//! the header itself ([`C_LAYOUT`]), and the KUnit suite compares them with [`RUST_LAYOUT`], so a
//! drift between the two fails `make test`.

use core::mem::{offset_of, size_of};
use kernel::{
    ioctl::{_IOW, _IOWR},
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
    pub(crate) largest_free: u64,
    pub(crate) reserved: [u64; 3],
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

/// `MORERAM_ALLOC_VRAM_ONLY`.
pub(crate) const ALLOC_VRAM_ONLY: u32 = 1 << 0;
/// `MORERAM_ALLOC_SYSTEM_ONLY`.
pub(crate) const ALLOC_SYSTEM_ONLY: u32 = 1 << 1;
/// `MORERAM_ALLOC_BANK`.
pub(crate) const ALLOC_BANK: u32 = 1 << 2;
/// `MORERAM_ALLOC_CONTIGUOUS`.
pub(crate) const ALLOC_CONTIGUOUS: u32 = 1 << 3;
/// `MORERAM_ALLOC_FLAGS_ALL`.
pub(crate) const ALLOC_FLAGS_ALL: u32 = 0xf;

/// `MORERAM_TIER_VRAM`.
pub(crate) const TIER_VRAM: u32 = 1;
/// `MORERAM_TIER_SYSTEM`.
pub(crate) const TIER_SYSTEM: u32 = 2;
/// `MORERAM_NO_BANK`.
pub(crate) const NO_BANK: u32 = u32::MAX;
/// `MORERAM_MAX_ALLOC`.
pub(crate) const MAX_ALLOC: u64 = 1 << 40;

/// `struct moreram_alloc`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Alloc {
    pub(crate) size: u64,
    pub(crate) flags: u32,
    pub(crate) bank: u32,
    pub(crate) handle: u32,
    pub(crate) tier: u32,
    pub(crate) bank_used: u32,
    pub(crate) reserved0: u32,
    pub(crate) mmap_offset: u64,
    pub(crate) reserved: [u64; 4],
}

/// `struct moreram_handle`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Handle {
    pub(crate) handle: u32,
    pub(crate) reserved0: u32,
    pub(crate) reserved: [u64; 2],
}

/// `struct moreram_query`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Query {
    pub(crate) handle: u32,
    pub(crate) tier: u32,
    pub(crate) bank: u32,
    pub(crate) flags: u32,
    pub(crate) size: u64,
    pub(crate) mmap_offset: u64,
    pub(crate) mappings: u32,
    pub(crate) reserved0: u32,
    pub(crate) reserved: [u64; 4],
}

/// `struct moreram_tier`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Tier {
    pub(crate) banks: u32,
    pub(crate) reserved0: u32,
    pub(crate) vram_size: u64,
    pub(crate) vram_free: u64,
    pub(crate) system_used: u64,
    pub(crate) file_vram: u64,
    pub(crate) file_system: u64,
    pub(crate) file_allocs: u32,
    pub(crate) reserved1: u32,
    pub(crate) reserved: [u64; 4],
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

// SAFETY: `repr(C)` structs of integers with no padding (sizes checked below).
unsafe impl FromBytes for Alloc {}
// SAFETY: See above.
unsafe impl AsBytes for Alloc {}
// SAFETY: See above.
unsafe impl FromBytes for Handle {}
// SAFETY: See above.
unsafe impl AsBytes for Handle {}
// SAFETY: See above.
unsafe impl FromBytes for Query {}
// SAFETY: See above.
unsafe impl AsBytes for Query {}
// SAFETY: See above.
unsafe impl FromBytes for Tier {}
// SAFETY: See above.
unsafe impl AsBytes for Tier {}

/// `MORERAM_IOC_BANKS`.
pub(crate) const IOC_BANKS: u32 = _IOWR::<Banks>(IOC_MAGIC, 0x00);
/// `MORERAM_IOC_ALLOC`.
pub(crate) const IOC_ALLOC: u32 = _IOWR::<Alloc>(IOC_MAGIC, 0x01);
/// `MORERAM_IOC_FREE`.
pub(crate) const IOC_FREE: u32 = _IOW::<Handle>(IOC_MAGIC, 0x02);
/// `MORERAM_IOC_QUERY`.
pub(crate) const IOC_QUERY: u32 = _IOWR::<Query>(IOC_MAGIC, 0x03);
/// `MORERAM_IOC_TIER`.
pub(crate) const IOC_TIER: u32 = _IOWR::<Tier>(IOC_MAGIC, 0x04);

// No implicit padding anywhere: the sum of the fields is the size.
const _: () = assert!(size_of::<BankInfo>() == BANK_INFO_SIZE_V1);
const _: () = assert!(size_of::<Banks>() == 40);
const _: () = assert!(size_of::<Alloc>() == 72);
const _: () = assert!(size_of::<Handle>() == 24);
const _: () = assert!(size_of::<Query>() == 72);
const _: () = assert!(size_of::<Tier>() == 88);

/// One entry of a layout table: a struct size or a field offset, by name.
#[repr(C)]
pub(crate) struct LayoutEntry {
    /// `"struct"` for a size, `"struct.field"` for an offset; NUL-terminated.
    pub(crate) name: *const u8,
    pub(crate) value: usize,
}

// SAFETY: entries point to static string literals and are never written.
unsafe impl Sync for LayoutEntry {}

macro_rules! consts {
    ($($c:ident = $v:expr),* $(,)?) => {
        &[$(LayoutEntry { name: concat!(stringify!($c), "\0").as_ptr(), value: $v as usize },)*]
    };
}

/// The constants of the Rust mirror, named as in the C header.
pub(crate) static RUST_CONSTS: &[LayoutEntry] = consts! {
    MORERAM_IOC_BANKS = IOC_BANKS,
    MORERAM_IOC_ALLOC = IOC_ALLOC,
    MORERAM_IOC_FREE = IOC_FREE,
    MORERAM_IOC_QUERY = IOC_QUERY,
    MORERAM_IOC_TIER = IOC_TIER,
    MORERAM_BANK_INFO_SIZE_V1 = BANK_INFO_SIZE_V1,
    MORERAM_BANK_PREFETCHABLE = BANK_PREFETCHABLE,
    MORERAM_BANK_64BIT = BANK_64BIT,
    MORERAM_ALLOC_VRAM_ONLY = ALLOC_VRAM_ONLY,
    MORERAM_ALLOC_SYSTEM_ONLY = ALLOC_SYSTEM_ONLY,
    MORERAM_ALLOC_BANK = ALLOC_BANK,
    MORERAM_ALLOC_CONTIGUOUS = ALLOC_CONTIGUOUS,
    MORERAM_ALLOC_FLAGS_ALL = ALLOC_FLAGS_ALL,
    MORERAM_TIER_VRAM = TIER_VRAM,
    MORERAM_TIER_SYSTEM = TIER_SYSTEM,
    MORERAM_NO_BANK = NO_BANK,
    MORERAM_MAX_ALLOC = MAX_ALLOC,
};

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
        bar, vendor, device, reserved0, largest_free, reserved
    },
    moreram_banks: Banks { count, capacity, entry_size, reserved0, banks_ptr, reserved },
    moreram_alloc: Alloc {
        size, flags, bank, handle, tier, bank_used, reserved0, mmap_offset, reserved
    },
    moreram_handle: Handle { handle, reserved0, reserved },
    moreram_query: Query {
        handle, tier, bank, flags, size, mmap_offset, mappings, reserved0, reserved
    },
    moreram_tier: Tier {
        banks, reserved0, vram_size, vram_free, system_used, file_vram, file_system,
        file_allocs, reserved1, reserved
    },
};
