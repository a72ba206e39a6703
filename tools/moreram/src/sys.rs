//! Mirror of `include/uapi/linux/moreram.h`, the one definition of the user ABI.
//!
//! `tests/uapi_layout.rs` compiles the header with the system C compiler and checks that every
//! size and offset here agrees with it.

#![allow(missing_docs)]

/// `MORERAM_IOC_MAGIC`.
pub const MORERAM_IOC_MAGIC: u32 = 0xB9;

pub const MORERAM_BANK_PREFETCHABLE: u32 = 1 << 0;
pub const MORERAM_BANK_64BIT: u32 = 1 << 1;

/// `struct moreram_bank_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_bank_info {
    pub index: u32,
    pub flags: u32,
    pub size: u64,
    pub free: u64,
    pub bar_start: u64,
    pub bar_len: u64,
    pub pci_domain: u32,
    pub pci_bus: u8,
    pub pci_dev: u8,
    pub pci_func: u8,
    pub bar: u8,
    pub vendor: u16,
    pub device: u16,
    pub reserved0: u32,
    pub largest_free: u64,
    pub pooled: u64,
    pub low_watermark: u64,
    pub min_watermark: u64,
}

pub const MORERAM_BANK_INFO_SIZE_V1: u32 = 88;

/// `struct moreram_banks`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_banks {
    pub count: u32,
    pub capacity: u32,
    pub entry_size: u32,
    pub reserved0: u32,
    pub banks_ptr: u64,
    pub reserved: [u64; 2],
}

pub const MORERAM_ALLOC_VRAM_ONLY: u32 = 1 << 0;
pub const MORERAM_ALLOC_SYSTEM_ONLY: u32 = 1 << 1;
pub const MORERAM_ALLOC_BANK: u32 = 1 << 2;
pub const MORERAM_ALLOC_CONTIGUOUS: u32 = 1 << 3;
pub const MORERAM_ALLOC_FLAGS_ALL: u32 = 0xf;
pub const MORERAM_TIER_VRAM: u32 = 1;
pub const MORERAM_TIER_SYSTEM: u32 = 2;
pub const MORERAM_NO_BANK: u32 = u32::MAX;
pub const MORERAM_MAX_ALLOC: u64 = 1 << 40;

/// `struct moreram_alloc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_alloc {
    pub size: u64,
    pub flags: u32,
    pub bank: u32,
    pub handle: u32,
    pub tier: u32,
    pub bank_used: u32,
    pub reserved0: u32,
    pub mmap_offset: u64,
    pub reserved: [u64; 4],
}

/// `struct moreram_handle`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_handle {
    pub handle: u32,
    pub reserved0: u32,
    pub reserved: [u64; 2],
}

/// `struct moreram_query`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_query {
    pub handle: u32,
    pub tier: u32,
    pub bank: u32,
    pub flags: u32,
    pub size: u64,
    pub mmap_offset: u64,
    pub mappings: u32,
    pub reserved0: u32,
    pub reserved: [u64; 4],
}

/// `struct moreram_tier`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_tier {
    pub banks: u32,
    pub reserved0: u32,
    pub vram_size: u64,
    pub vram_free: u64,
    pub system_used: u64,
    pub file_vram: u64,
    pub file_system: u64,
    pub file_allocs: u32,
    pub reserved1: u32,
    pub pool_vram: u64,
    pub pool_system: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_share`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_share {
    pub handle: u32,
    pub flags: u32,
    pub pid: i32,
    pub reserved0: u32,
    pub token: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_import`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_import {
    pub token: u64,
    pub handle: u32,
    pub tier: u32,
    pub bank: u32,
    pub reserved0: u32,
    pub size: u64,
    pub mmap_offset: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_control`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_control {
    pub handle: u32,
    pub cmd: u32,
    pub offset: u64,
    pub length: u64,
    pub pid: i32,
    pub reserved0: u32,
    pub reserved: [u64; 2],
}

/// `struct moreram_rights`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_rights {
    pub handle: u32,
    pub flags: u32,
    pub offset: u64,
    pub length: u64,
    pub owner: i32,
    pub caller: u32,
    pub nwriters: u32,
    pub writers_cap: u32,
    pub writers_ptr: u64,
    pub nreaders: u32,
    pub readers_cap: u32,
    pub readers_ptr: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_proc_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_proc_info {
    pub pid: i32,
    pub reserved0: u32,
    pub vram: u64,
    pub system: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_procs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_procs {
    pub count: u32,
    pub capacity: u32,
    pub entry_size: u32,
    pub reserved0: u32,
    pub procs_ptr: u64,
    pub reserved: [u64; 2],
}

pub const MORERAM_SHARE_NAMED: u32 = 1 << 0;
pub const MORERAM_CTL_GRANT_WRITE: u32 = 1;
pub const MORERAM_CTL_REVOKE_WRITE: u32 = 2;
pub const MORERAM_CTL_GIVE: u32 = 3;
pub const MORERAM_RIGHT_READ: u32 = 1 << 0;
pub const MORERAM_RIGHT_WRITE: u32 = 1 << 1;
pub const MORERAM_RIGHT_OWNER: u32 = 1 << 2;
pub const MORERAM_RIGHTS_MIXED: u32 = 1 << 0;
pub const MORERAM_PROC_INFO_SIZE_V1: u32 = 40;

/// `struct moreram_reserve`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_reserve {
    pub size: u64,
    pub bank: u32,
    pub flags: u32,
    pub reserved: [u64; 2],
}

/// `struct moreram_scavenge`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_scavenge {
    pub vram: u64,
    pub system: u64,
    pub reserved: [u64; 2],
}

/// `struct moreram_notify`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_notify {
    pub signal: u32,
    pub reserved0: u32,
    pub reserved: [u64; 2],
}

/// `struct moreram_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct moreram_event {
    pub type_: u32,
    pub bank: u32,
    pub bytes: u64,
    pub deadline_ns: u64,
    pub reserved: [u64; 2],
}

pub const MORERAM_RESERVE_SYSTEM: u32 = 1 << 0;
pub const MORERAM_EVENT_SCAVENGE: u32 = 1;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` as `asm-generic/ioctl.h` defines it.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr
}

/// `_IOWR(MORERAM_IOC_MAGIC, nr, T)`.
pub const fn iowr<T>(nr: u32) -> u32 {
    ioc(
        IOC_READ | IOC_WRITE,
        MORERAM_IOC_MAGIC,
        nr,
        core::mem::size_of::<T>(),
    )
}

/// `_IOW(MORERAM_IOC_MAGIC, nr, T)`.
pub const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, MORERAM_IOC_MAGIC, nr, core::mem::size_of::<T>())
}

pub const MORERAM_IOC_BANKS: u32 = iowr::<moreram_banks>(0x00);
pub const MORERAM_IOC_ALLOC: u32 = iowr::<moreram_alloc>(0x01);
pub const MORERAM_IOC_FREE: u32 = iow::<moreram_handle>(0x02);
pub const MORERAM_IOC_QUERY: u32 = iowr::<moreram_query>(0x03);
pub const MORERAM_IOC_TIER: u32 = iowr::<moreram_tier>(0x04);
pub const MORERAM_IOC_SHARE: u32 = iowr::<moreram_share>(0x05);
pub const MORERAM_IOC_IMPORT: u32 = iowr::<moreram_import>(0x06);
pub const MORERAM_IOC_CONTROL: u32 = iow::<moreram_control>(0x07);
pub const MORERAM_IOC_RIGHTS: u32 = iowr::<moreram_rights>(0x08);
pub const MORERAM_IOC_PROCS: u32 = iowr::<moreram_procs>(0x09);
pub const MORERAM_IOC_RESERVE: u32 = iow::<moreram_reserve>(0x0a);
pub const MORERAM_IOC_SCAVENGE: u32 = iowr::<moreram_scavenge>(0x0b);
pub const MORERAM_IOC_NOTIFY: u32 = iow::<moreram_notify>(0x0c);
