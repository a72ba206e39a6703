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
    pub(crate) pooled: u64,
    pub(crate) low_watermark: u64,
    pub(crate) min_watermark: u64,
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
    pub(crate) pool_vram: u64,
    pub(crate) pool_system: u64,
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

/// `struct moreram_share`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Share {
    pub(crate) handle: u32,
    pub(crate) flags: u32,
    pub(crate) pid: i32,
    pub(crate) reserved0: u32,
    pub(crate) token: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Share {}
// SAFETY: See above.
unsafe impl AsBytes for Share {}
const _: () = assert!(size_of::<Share>() == 40);

/// `struct moreram_import`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Import {
    pub(crate) token: u64,
    pub(crate) handle: u32,
    pub(crate) tier: u32,
    pub(crate) bank: u32,
    pub(crate) reserved0: u32,
    pub(crate) size: u64,
    pub(crate) mmap_offset: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Import {}
// SAFETY: See above.
unsafe impl AsBytes for Import {}
const _: () = assert!(size_of::<Import>() == 56);

/// `struct moreram_control`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Control {
    pub(crate) handle: u32,
    pub(crate) cmd: u32,
    pub(crate) offset: u64,
    pub(crate) length: u64,
    pub(crate) pid: i32,
    pub(crate) reserved0: u32,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Control {}
// SAFETY: See above.
unsafe impl AsBytes for Control {}
const _: () = assert!(size_of::<Control>() == 48);

/// `struct moreram_rights`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Rights {
    pub(crate) handle: u32,
    pub(crate) flags: u32,
    pub(crate) offset: u64,
    pub(crate) length: u64,
    pub(crate) owner: i32,
    pub(crate) caller: u32,
    pub(crate) nwriters: u32,
    pub(crate) writers_cap: u32,
    pub(crate) writers_ptr: u64,
    pub(crate) nreaders: u32,
    pub(crate) readers_cap: u32,
    pub(crate) readers_ptr: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Rights {}
// SAFETY: See above.
unsafe impl AsBytes for Rights {}
const _: () = assert!(size_of::<Rights>() == 80);

/// `struct moreram_proc_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ProcInfo {
    pub(crate) pid: i32,
    pub(crate) reserved0: u32,
    pub(crate) vram: u64,
    pub(crate) system: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for ProcInfo {}
// SAFETY: See above.
unsafe impl AsBytes for ProcInfo {}
const _: () = assert!(size_of::<ProcInfo>() == 40);

/// `struct moreram_procs`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Procs {
    pub(crate) count: u32,
    pub(crate) capacity: u32,
    pub(crate) entry_size: u32,
    pub(crate) reserved0: u32,
    pub(crate) procs_ptr: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Procs {}
// SAFETY: See above.
unsafe impl AsBytes for Procs {}
const _: () = assert!(size_of::<Procs>() == 40);

/// `MORERAM_SHARE_NAMED`.
pub(crate) const SHARE_NAMED: u32 = 1 << 0;
/// `MORERAM_CTL_GRANT_WRITE`.
pub(crate) const CTL_GRANT_WRITE: u32 = 1;
/// `MORERAM_CTL_REVOKE_WRITE`.
pub(crate) const CTL_REVOKE_WRITE: u32 = 2;
/// `MORERAM_CTL_GIVE`.
pub(crate) const CTL_GIVE: u32 = 3;
/// `MORERAM_RIGHT_READ`.
pub(crate) const RIGHT_READ: u32 = 1 << 0;
/// `MORERAM_RIGHT_WRITE`.
pub(crate) const RIGHT_WRITE: u32 = 1 << 1;
/// `MORERAM_RIGHT_OWNER`.
pub(crate) const RIGHT_OWNER: u32 = 1 << 2;
/// `MORERAM_RIGHTS_MIXED`.
pub(crate) const RIGHTS_MIXED: u32 = 1 << 0;
/// `MORERAM_PROC_INFO_SIZE_V1`.
pub(crate) const PROC_INFO_SIZE_V1: usize = 40;
/// `MORERAM_IOC_SHARE`.
pub(crate) const IOC_SHARE: u32 = _IOWR::<Share>(IOC_MAGIC, 0x05);
/// `MORERAM_IOC_IMPORT`.
pub(crate) const IOC_IMPORT: u32 = _IOWR::<Import>(IOC_MAGIC, 0x06);
/// `MORERAM_IOC_CONTROL`.
pub(crate) const IOC_CONTROL: u32 = _IOW::<Control>(IOC_MAGIC, 0x07);
/// `MORERAM_IOC_RIGHTS`.
pub(crate) const IOC_RIGHTS: u32 = _IOWR::<Rights>(IOC_MAGIC, 0x08);
/// `MORERAM_IOC_PROCS`.
pub(crate) const IOC_PROCS: u32 = _IOWR::<Procs>(IOC_MAGIC, 0x09);

/// `struct moreram_reserve`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Reserve {
    pub(crate) size: u64,
    pub(crate) bank: u32,
    pub(crate) flags: u32,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Reserve {}
// SAFETY: See above.
unsafe impl AsBytes for Reserve {}
const _: () = assert!(size_of::<Reserve>() == 32);

/// `struct moreram_scavenge`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Scavenge {
    pub(crate) vram: u64,
    pub(crate) system: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Scavenge {}
// SAFETY: See above.
unsafe impl AsBytes for Scavenge {}
const _: () = assert!(size_of::<Scavenge>() == 32);

/// `struct moreram_notify`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Notify {
    pub(crate) signal: u32,
    pub(crate) reserved0: u32,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Notify {}
// SAFETY: See above.
unsafe impl AsBytes for Notify {}
const _: () = assert!(size_of::<Notify>() == 24);

/// `struct moreram_event`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Event {
    pub(crate) type_: u32,
    pub(crate) bank: u32,
    pub(crate) bytes: u64,
    pub(crate) deadline_ns: u64,
    pub(crate) reserved: [u64; 2],
}

// SAFETY: `repr(C)` of integers with no padding (size checked below).
unsafe impl FromBytes for Event {}
// SAFETY: See above.
unsafe impl AsBytes for Event {}
const _: () = assert!(size_of::<Event>() == 40);

/// `MORERAM_RESERVE_SYSTEM`.
pub(crate) const RESERVE_SYSTEM: u32 = 1 << 0;
/// `MORERAM_EVENT_SCAVENGE`.
pub(crate) const EVENT_SCAVENGE: u32 = 1;
/// `MORERAM_IOC_RESERVE`.
pub(crate) const IOC_RESERVE: u32 = _IOW::<Reserve>(IOC_MAGIC, 0x0a);
/// `MORERAM_IOC_SCAVENGE`.
pub(crate) const IOC_SCAVENGE: u32 = _IOWR::<Scavenge>(IOC_MAGIC, 0x0b);
/// `MORERAM_IOC_NOTIFY`.
pub(crate) const IOC_NOTIFY: u32 = _IOW::<Notify>(IOC_MAGIC, 0x0c);

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
    MORERAM_RESERVE_SYSTEM = RESERVE_SYSTEM,
    MORERAM_EVENT_SCAVENGE = EVENT_SCAVENGE,
    MORERAM_IOC_RESERVE = IOC_RESERVE,
    MORERAM_IOC_SCAVENGE = IOC_SCAVENGE,
    MORERAM_IOC_NOTIFY = IOC_NOTIFY,
    MORERAM_SHARE_NAMED = SHARE_NAMED,
    MORERAM_CTL_GRANT_WRITE = CTL_GRANT_WRITE,
    MORERAM_CTL_REVOKE_WRITE = CTL_REVOKE_WRITE,
    MORERAM_CTL_GIVE = CTL_GIVE,
    MORERAM_RIGHT_READ = RIGHT_READ,
    MORERAM_RIGHT_WRITE = RIGHT_WRITE,
    MORERAM_RIGHT_OWNER = RIGHT_OWNER,
    MORERAM_RIGHTS_MIXED = RIGHTS_MIXED,
    MORERAM_PROC_INFO_SIZE_V1 = PROC_INFO_SIZE_V1,
    MORERAM_IOC_SHARE = IOC_SHARE,
    MORERAM_IOC_IMPORT = IOC_IMPORT,
    MORERAM_IOC_CONTROL = IOC_CONTROL,
    MORERAM_IOC_RIGHTS = IOC_RIGHTS,
    MORERAM_IOC_PROCS = IOC_PROCS,
};

/// `struct moreram_event`, whose field `type` is `type_` here, so not in [`RUST_LAYOUT`].
pub(crate) static RUST_EVENT_LAYOUT: &[LayoutEntry] = &[
    LayoutEntry {
        name: c"moreram_event".to_bytes_with_nul().as_ptr(),
        value: size_of::<Event>(),
    },
    LayoutEntry {
        name: c"moreram_event.type".to_bytes_with_nul().as_ptr(),
        value: offset_of!(Event, type_),
    },
    LayoutEntry {
        name: c"moreram_event.bank".to_bytes_with_nul().as_ptr(),
        value: offset_of!(Event, bank),
    },
    LayoutEntry {
        name: c"moreram_event.bytes".to_bytes_with_nul().as_ptr(),
        value: offset_of!(Event, bytes),
    },
    LayoutEntry {
        name: c"moreram_event.deadline_ns".to_bytes_with_nul().as_ptr(),
        value: offset_of!(Event, deadline_ns),
    },
    LayoutEntry {
        name: c"moreram_event.reserved".to_bytes_with_nul().as_ptr(),
        value: offset_of!(Event, reserved),
    },
];

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
        bar, vendor, device, reserved0, largest_free, pooled, low_watermark, min_watermark
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
        file_allocs, reserved1, pool_vram, pool_system, reserved
    },
    moreram_share: Share { handle, flags, pid, reserved0, token, reserved },
    moreram_import: Import { token, handle, tier, bank, reserved0, size, mmap_offset, reserved },
    moreram_control: Control { handle, cmd, offset, length, pid, reserved0, reserved },
    moreram_rights: Rights { handle, flags, offset, length, owner, caller, nwriters, writers_cap, writers_ptr, nreaders, readers_cap, readers_ptr, reserved },
    moreram_proc_info: ProcInfo { pid, reserved0, vram, system, reserved },
    moreram_reserve: Reserve { size, bank, flags, reserved },
    moreram_scavenge: Scavenge { vram, system, reserved },
    moreram_notify: Notify { signal, reserved0, reserved },
    moreram_procs: Procs { count, capacity, entry_size, reserved0, procs_ptr, reserved },
};
