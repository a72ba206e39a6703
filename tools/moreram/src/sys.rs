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
    pub reserved: [u64; 4],
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

pub const MORERAM_IOC_BANKS: u32 = iowr::<moreram_banks>(0x00);
