// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note
//
// GENERATED FILE: DO NOT EDIT. The Rust view of include/uapi/linux/moreram.h, the one
// definition of the user ABI. `make uapi` (tools/testing/uapi.sh) writes it with
// bindgen 0.73.2 and libclang 19:
//
//   bindgen include/uapi/linux/moreram.h --use-core --rust-target 1.85 \
//      --rust-edition 2021 --allowlist-item 'moreram_.*' \
//      --allowlist-item 'MORERAM_.*' --clang-macro-fallback \
//      --with-derive-default --with-derive-partialeq --with-derive-eq \
//      --disable-header-comment -- --target=x86_64-linux-gnu -nostdinc \
//      -I UAPI_HEADERS/include
//
// where UAPI_HEADERS are the kernel's, exported by its `make headers` into
// $MORERAM_CACHE/uapi-headers/<version>. `make test` fails when this file is
// not what the header generates.
//
// It needs only `core` and has no inner attributes: include! it inside a module
// that allows non_camel_case_types, non_upper_case_globals and missing_docs (and
// dead_code and unreachable_pub where the crate uses only part of it).
// The `const _: () = { ... }` blocks are bindgen's layout checks: every size,
// alignment and offset of the C structs, checked when the including crate compiles.

pub const MORERAM_IOC_MAGIC: u32 = 185;
pub const MORERAM_BANK_PREFETCHABLE: u32 = 1;
pub const MORERAM_BANK_64BIT: u32 = 2;
pub const MORERAM_BANK_INFO_SIZE_V1: u32 = 88;
pub const MORERAM_IOC_BANKS: u32 = 3223894272;
pub const MORERAM_ALLOC_VRAM_ONLY: u32 = 1;
pub const MORERAM_ALLOC_SYSTEM_ONLY: u32 = 2;
pub const MORERAM_ALLOC_BANK: u32 = 4;
pub const MORERAM_ALLOC_CONTIGUOUS: u32 = 8;
pub const MORERAM_ALLOC_FORK_COPY: u32 = 16;
pub const MORERAM_ALLOC_FLAGS_ALL: u32 = 31;
pub const MORERAM_TIER_VRAM: u32 = 1;
pub const MORERAM_TIER_SYSTEM: u32 = 2;
pub const MORERAM_NO_BANK: u32 = 4294967295;
pub const MORERAM_MAX_ALLOC: u64 = 1099511627776;
pub const MORERAM_SHARE_NAMED: u32 = 1;
pub const MORERAM_CTL_GRANT_WRITE: u32 = 1;
pub const MORERAM_CTL_REVOKE_WRITE: u32 = 2;
pub const MORERAM_CTL_GIVE: u32 = 3;
pub const MORERAM_RIGHT_READ: u32 = 1;
pub const MORERAM_RIGHT_WRITE: u32 = 2;
pub const MORERAM_RIGHT_OWNER: u32 = 4;
pub const MORERAM_RIGHTS_MIXED: u32 = 1;
pub const MORERAM_PROC_INFO_SIZE_V1: u32 = 40;
pub const MORERAM_RESERVE_SYSTEM: u32 = 1;
pub const MORERAM_EVENT_SCAVENGE: u32 = 1;
pub const MORERAM_IOC_ALLOC: u32 = 3225991425;
pub const MORERAM_IOC_FREE: u32 = 1075362050;
pub const MORERAM_IOC_QUERY: u32 = 3225991427;
pub const MORERAM_IOC_TIER: u32 = 3227040004;
pub const MORERAM_IOC_SHARE: u32 = 3223894277;
pub const MORERAM_IOC_IMPORT: u32 = 3224942854;
pub const MORERAM_IOC_CONTROL: u32 = 1076934919;
pub const MORERAM_IOC_RIGHTS: u32 = 3226515720;
pub const MORERAM_IOC_PROCS: u32 = 3223894281;
pub const MORERAM_IOC_RESERVE: u32 = 1075886346;
pub const MORERAM_IOC_SCAVENGE: u32 = 3223369995;
pub const MORERAM_IOC_NOTIFY: u32 = 1075362060;
pub type __u8 = ::core::ffi::c_uchar;
pub type __u16 = ::core::ffi::c_ushort;
pub type __s32 = ::core::ffi::c_int;
pub type __u32 = ::core::ffi::c_uint;
pub type __u64 = ::core::ffi::c_ulonglong;
#[doc = " struct moreram_bank_info - one bank: a bound device's memory BAR\n @index:      bank number; stable while the device stays bound\n @flags:      MORERAM_BANK_*\n @size:       bytes the bank manages (the BAR length, whole pages)\n @free:       bytes not allocated\n @bar_start:  physical (bus) address of the BAR\n @bar_len:    length of the BAR in bytes\n @pci_domain: PCI domain of the device\n @pci_bus:    PCI bus number\n @pci_dev:    PCI device (slot) number\n @pci_func:   PCI function number\n @bar:        BAR number on the device (0-5)\n @vendor:     PCI vendor ID\n @device:     PCI device ID\n @largest_free: bytes in the largest free buddy block: the largest\n              allocation with MORERAM_ALLOC_CONTIGUOUS that can succeed now\n @pooled:     bytes of @free held in processes' pools (reserved for them)\n @low_watermark: when @free - @pooled drops below this, pool holders are\n              asked to scavenge\n @min_watermark: below this, allocations reclaim pools at once"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_bank_info {
    pub index: __u32,
    pub flags: __u32,
    pub size: __u64,
    pub free: __u64,
    pub bar_start: __u64,
    pub bar_len: __u64,
    pub pci_domain: __u32,
    pub pci_bus: __u8,
    pub pci_dev: __u8,
    pub pci_func: __u8,
    pub bar: __u8,
    pub vendor: __u16,
    pub device: __u16,
    pub reserved0: __u32,
    pub largest_free: __u64,
    pub pooled: __u64,
    pub low_watermark: __u64,
    pub min_watermark: __u64,
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_bank_info"][::core::mem::size_of::<moreram_bank_info>() - 88usize];
    ["Alignment of moreram_bank_info"][::core::mem::align_of::<moreram_bank_info>() - 8usize];
    ["Offset of field: moreram_bank_info::index"]
        [::core::mem::offset_of!(moreram_bank_info, index) - 0usize];
    ["Offset of field: moreram_bank_info::flags"]
        [::core::mem::offset_of!(moreram_bank_info, flags) - 4usize];
    ["Offset of field: moreram_bank_info::size"]
        [::core::mem::offset_of!(moreram_bank_info, size) - 8usize];
    ["Offset of field: moreram_bank_info::free"]
        [::core::mem::offset_of!(moreram_bank_info, free) - 16usize];
    ["Offset of field: moreram_bank_info::bar_start"]
        [::core::mem::offset_of!(moreram_bank_info, bar_start) - 24usize];
    ["Offset of field: moreram_bank_info::bar_len"]
        [::core::mem::offset_of!(moreram_bank_info, bar_len) - 32usize];
    ["Offset of field: moreram_bank_info::pci_domain"]
        [::core::mem::offset_of!(moreram_bank_info, pci_domain) - 40usize];
    ["Offset of field: moreram_bank_info::pci_bus"]
        [::core::mem::offset_of!(moreram_bank_info, pci_bus) - 44usize];
    ["Offset of field: moreram_bank_info::pci_dev"]
        [::core::mem::offset_of!(moreram_bank_info, pci_dev) - 45usize];
    ["Offset of field: moreram_bank_info::pci_func"]
        [::core::mem::offset_of!(moreram_bank_info, pci_func) - 46usize];
    ["Offset of field: moreram_bank_info::bar"]
        [::core::mem::offset_of!(moreram_bank_info, bar) - 47usize];
    ["Offset of field: moreram_bank_info::vendor"]
        [::core::mem::offset_of!(moreram_bank_info, vendor) - 48usize];
    ["Offset of field: moreram_bank_info::device"]
        [::core::mem::offset_of!(moreram_bank_info, device) - 50usize];
    ["Offset of field: moreram_bank_info::reserved0"]
        [::core::mem::offset_of!(moreram_bank_info, reserved0) - 52usize];
    ["Offset of field: moreram_bank_info::largest_free"]
        [::core::mem::offset_of!(moreram_bank_info, largest_free) - 56usize];
    ["Offset of field: moreram_bank_info::pooled"]
        [::core::mem::offset_of!(moreram_bank_info, pooled) - 64usize];
    ["Offset of field: moreram_bank_info::low_watermark"]
        [::core::mem::offset_of!(moreram_bank_info, low_watermark) - 72usize];
    ["Offset of field: moreram_bank_info::min_watermark"]
        [::core::mem::offset_of!(moreram_bank_info, min_watermark) - 80usize];
};
#[doc = " struct moreram_banks - argument of MORERAM_IOC_BANKS\n @count:      out: number of banks bound now\n @capacity:   in: number of entries the array at @banks_ptr holds\n @entry_size: in: sizeof(struct moreram_bank_info) as the caller knows it;\n              at least MORERAM_BANK_INFO_SIZE_V1. The module writes\n              min(capacity, count) entries of @entry_size bytes each,\n              zero-filling what it does not know about.\n @reserved0:  zero\n @banks_ptr:  in: user pointer to the array (may be 0 when @capacity is 0)\n @reserved:   zero\n\n Call once with @capacity 0 to learn @count, then again with room for it."]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_banks {
    pub count: __u32,
    pub capacity: __u32,
    pub entry_size: __u32,
    pub reserved0: __u32,
    pub banks_ptr: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_banks"][::core::mem::size_of::<moreram_banks>() - 40usize];
    ["Alignment of moreram_banks"][::core::mem::align_of::<moreram_banks>() - 8usize];
    ["Offset of field: moreram_banks::count"]
        [::core::mem::offset_of!(moreram_banks, count) - 0usize];
    ["Offset of field: moreram_banks::capacity"]
        [::core::mem::offset_of!(moreram_banks, capacity) - 4usize];
    ["Offset of field: moreram_banks::entry_size"]
        [::core::mem::offset_of!(moreram_banks, entry_size) - 8usize];
    ["Offset of field: moreram_banks::reserved0"]
        [::core::mem::offset_of!(moreram_banks, reserved0) - 12usize];
    ["Offset of field: moreram_banks::banks_ptr"]
        [::core::mem::offset_of!(moreram_banks, banks_ptr) - 16usize];
    ["Offset of field: moreram_banks::reserved"]
        [::core::mem::offset_of!(moreram_banks, reserved) - 24usize];
};
#[doc = " struct moreram_alloc - argument of MORERAM_IOC_ALLOC\n @size:        in: bytes, a non-zero multiple of the page size, at most\n               MORERAM_MAX_ALLOC\n @flags:       in: MORERAM_ALLOC_*\n @bank:        in: bank index with MORERAM_ALLOC_BANK, else zero\n @handle:      out: names the allocation in this open file; never 0\n @tier:        out: MORERAM_TIER_*\n @bank_used:   out: bank of a VRAM allocation, MORERAM_NO_BANK otherwise\n @reserved0:   zero\n @mmap_offset: out: pass to mmap() on the same file to map the allocation\n @reserved:    zero\n\n The memory reads as zeros. It is freed when it has been freed\n (MORERAM_IOC_FREE, or by closing the file) and is no longer mapped."]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_alloc {
    pub size: __u64,
    pub flags: __u32,
    pub bank: __u32,
    pub handle: __u32,
    pub tier: __u32,
    pub bank_used: __u32,
    pub reserved0: __u32,
    pub mmap_offset: __u64,
    pub reserved: [__u64; 4usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_alloc"][::core::mem::size_of::<moreram_alloc>() - 72usize];
    ["Alignment of moreram_alloc"][::core::mem::align_of::<moreram_alloc>() - 8usize];
    ["Offset of field: moreram_alloc::size"][::core::mem::offset_of!(moreram_alloc, size) - 0usize];
    ["Offset of field: moreram_alloc::flags"]
        [::core::mem::offset_of!(moreram_alloc, flags) - 8usize];
    ["Offset of field: moreram_alloc::bank"]
        [::core::mem::offset_of!(moreram_alloc, bank) - 12usize];
    ["Offset of field: moreram_alloc::handle"]
        [::core::mem::offset_of!(moreram_alloc, handle) - 16usize];
    ["Offset of field: moreram_alloc::tier"]
        [::core::mem::offset_of!(moreram_alloc, tier) - 20usize];
    ["Offset of field: moreram_alloc::bank_used"]
        [::core::mem::offset_of!(moreram_alloc, bank_used) - 24usize];
    ["Offset of field: moreram_alloc::reserved0"]
        [::core::mem::offset_of!(moreram_alloc, reserved0) - 28usize];
    ["Offset of field: moreram_alloc::mmap_offset"]
        [::core::mem::offset_of!(moreram_alloc, mmap_offset) - 32usize];
    ["Offset of field: moreram_alloc::reserved"]
        [::core::mem::offset_of!(moreram_alloc, reserved) - 40usize];
};
#[doc = " struct moreram_handle - argument of MORERAM_IOC_FREE\n @handle:    in: from MORERAM_IOC_ALLOC on this file\n @reserved0: zero\n @reserved:  zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_handle {
    pub handle: __u32,
    pub reserved0: __u32,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_handle"][::core::mem::size_of::<moreram_handle>() - 24usize];
    ["Alignment of moreram_handle"][::core::mem::align_of::<moreram_handle>() - 8usize];
    ["Offset of field: moreram_handle::handle"]
        [::core::mem::offset_of!(moreram_handle, handle) - 0usize];
    ["Offset of field: moreram_handle::reserved0"]
        [::core::mem::offset_of!(moreram_handle, reserved0) - 4usize];
    ["Offset of field: moreram_handle::reserved"]
        [::core::mem::offset_of!(moreram_handle, reserved) - 8usize];
};
#[doc = " struct moreram_query - argument of MORERAM_IOC_QUERY\n @handle:      in: from MORERAM_IOC_ALLOC on this file\n @tier:        out: MORERAM_TIER_*\n @bank:        out: bank of a VRAM allocation, MORERAM_NO_BANK otherwise\n @flags:       out: the flags it was allocated with\n @size:        out: bytes\n @mmap_offset: out: as returned by MORERAM_IOC_ALLOC\n @mappings:    out: number of mappings (VMAs) of it in any process now\n @reserved0:   zero\n @reserved:    zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_query {
    pub handle: __u32,
    pub tier: __u32,
    pub bank: __u32,
    pub flags: __u32,
    pub size: __u64,
    pub mmap_offset: __u64,
    pub mappings: __u32,
    pub reserved0: __u32,
    pub reserved: [__u64; 4usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_query"][::core::mem::size_of::<moreram_query>() - 72usize];
    ["Alignment of moreram_query"][::core::mem::align_of::<moreram_query>() - 8usize];
    ["Offset of field: moreram_query::handle"]
        [::core::mem::offset_of!(moreram_query, handle) - 0usize];
    ["Offset of field: moreram_query::tier"][::core::mem::offset_of!(moreram_query, tier) - 4usize];
    ["Offset of field: moreram_query::bank"][::core::mem::offset_of!(moreram_query, bank) - 8usize];
    ["Offset of field: moreram_query::flags"]
        [::core::mem::offset_of!(moreram_query, flags) - 12usize];
    ["Offset of field: moreram_query::size"]
        [::core::mem::offset_of!(moreram_query, size) - 16usize];
    ["Offset of field: moreram_query::mmap_offset"]
        [::core::mem::offset_of!(moreram_query, mmap_offset) - 24usize];
    ["Offset of field: moreram_query::mappings"]
        [::core::mem::offset_of!(moreram_query, mappings) - 32usize];
    ["Offset of field: moreram_query::reserved0"]
        [::core::mem::offset_of!(moreram_query, reserved0) - 36usize];
    ["Offset of field: moreram_query::reserved"]
        [::core::mem::offset_of!(moreram_query, reserved) - 40usize];
};
#[doc = " struct moreram_tier - argument of MORERAM_IOC_TIER: the whole tier, and\n this open file's share of it\n @banks:        out: banks bound now\n @reserved0:    zero\n @vram_size:    out: bytes in all banks\n @vram_free:    out: bytes free in all banks\n @system_used:  out: bytes of system-page allocations, all files\n @file_vram:    out: bytes of VRAM allocated through this file\n @file_system:  out: bytes of system pages allocated through this file\n @file_allocs:  out: live handles of this file\n @reserved1:    zero\n @pool_vram:    out: bytes of VRAM in the calling process's pool\n @pool_system:  out: bytes of system pages in the calling process's pool\n @reserved:     zero\n\n Per-bank sizes, free bytes and largest free blocks: MORERAM_IOC_BANKS."]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_tier {
    pub banks: __u32,
    pub reserved0: __u32,
    pub vram_size: __u64,
    pub vram_free: __u64,
    pub system_used: __u64,
    pub file_vram: __u64,
    pub file_system: __u64,
    pub file_allocs: __u32,
    pub reserved1: __u32,
    pub pool_vram: __u64,
    pub pool_system: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_tier"][::core::mem::size_of::<moreram_tier>() - 88usize];
    ["Alignment of moreram_tier"][::core::mem::align_of::<moreram_tier>() - 8usize];
    ["Offset of field: moreram_tier::banks"][::core::mem::offset_of!(moreram_tier, banks) - 0usize];
    ["Offset of field: moreram_tier::reserved0"]
        [::core::mem::offset_of!(moreram_tier, reserved0) - 4usize];
    ["Offset of field: moreram_tier::vram_size"]
        [::core::mem::offset_of!(moreram_tier, vram_size) - 8usize];
    ["Offset of field: moreram_tier::vram_free"]
        [::core::mem::offset_of!(moreram_tier, vram_free) - 16usize];
    ["Offset of field: moreram_tier::system_used"]
        [::core::mem::offset_of!(moreram_tier, system_used) - 24usize];
    ["Offset of field: moreram_tier::file_vram"]
        [::core::mem::offset_of!(moreram_tier, file_vram) - 32usize];
    ["Offset of field: moreram_tier::file_system"]
        [::core::mem::offset_of!(moreram_tier, file_system) - 40usize];
    ["Offset of field: moreram_tier::file_allocs"]
        [::core::mem::offset_of!(moreram_tier, file_allocs) - 48usize];
    ["Offset of field: moreram_tier::reserved1"]
        [::core::mem::offset_of!(moreram_tier, reserved1) - 52usize];
    ["Offset of field: moreram_tier::pool_vram"]
        [::core::mem::offset_of!(moreram_tier, pool_vram) - 56usize];
    ["Offset of field: moreram_tier::pool_system"]
        [::core::mem::offset_of!(moreram_tier, pool_system) - 64usize];
    ["Offset of field: moreram_tier::reserved"]
        [::core::mem::offset_of!(moreram_tier, reserved) - 72usize];
};
#[doc = " struct moreram_share - argument of MORERAM_IOC_SHARE\n @handle:    in: an allocation of this file the caller owns pages of\n @flags:     in: MORERAM_SHARE_*\n @pid:       in: with MORERAM_SHARE_NAMED, the only process that may import\n             (it may be of another user); else zero\n @reserved0: zero\n @token:     out: secret to pass to the importer, e.g. over a pipe\n @reserved:  zero\n\n Without MORERAM_SHARE_NAMED, any process of the caller's user that knows\n the token may import. Imports are read-only until the owner grants write."]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_share {
    pub handle: __u32,
    pub flags: __u32,
    pub pid: __s32,
    pub reserved0: __u32,
    pub token: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_share"][::core::mem::size_of::<moreram_share>() - 40usize];
    ["Alignment of moreram_share"][::core::mem::align_of::<moreram_share>() - 8usize];
    ["Offset of field: moreram_share::handle"]
        [::core::mem::offset_of!(moreram_share, handle) - 0usize];
    ["Offset of field: moreram_share::flags"]
        [::core::mem::offset_of!(moreram_share, flags) - 4usize];
    ["Offset of field: moreram_share::pid"][::core::mem::offset_of!(moreram_share, pid) - 8usize];
    ["Offset of field: moreram_share::reserved0"]
        [::core::mem::offset_of!(moreram_share, reserved0) - 12usize];
    ["Offset of field: moreram_share::token"]
        [::core::mem::offset_of!(moreram_share, token) - 16usize];
    ["Offset of field: moreram_share::reserved"]
        [::core::mem::offset_of!(moreram_share, reserved) - 24usize];
};
#[doc = " struct moreram_import - argument of MORERAM_IOC_IMPORT\n @token:       in: from MORERAM_IOC_SHARE\n @handle:      out: a new handle of this file for the same allocation\n @tier:        out: MORERAM_TIER_*\n @bank:        out: bank, or MORERAM_NO_BANK\n @reserved0:   zero\n @size:        out: bytes\n @mmap_offset: out: for mmap() on this file\n @reserved:    zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_import {
    pub token: __u64,
    pub handle: __u32,
    pub tier: __u32,
    pub bank: __u32,
    pub reserved0: __u32,
    pub size: __u64,
    pub mmap_offset: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_import"][::core::mem::size_of::<moreram_import>() - 56usize];
    ["Alignment of moreram_import"][::core::mem::align_of::<moreram_import>() - 8usize];
    ["Offset of field: moreram_import::token"]
        [::core::mem::offset_of!(moreram_import, token) - 0usize];
    ["Offset of field: moreram_import::handle"]
        [::core::mem::offset_of!(moreram_import, handle) - 8usize];
    ["Offset of field: moreram_import::tier"]
        [::core::mem::offset_of!(moreram_import, tier) - 12usize];
    ["Offset of field: moreram_import::bank"]
        [::core::mem::offset_of!(moreram_import, bank) - 16usize];
    ["Offset of field: moreram_import::reserved0"]
        [::core::mem::offset_of!(moreram_import, reserved0) - 20usize];
    ["Offset of field: moreram_import::size"]
        [::core::mem::offset_of!(moreram_import, size) - 24usize];
    ["Offset of field: moreram_import::mmap_offset"]
        [::core::mem::offset_of!(moreram_import, mmap_offset) - 32usize];
    ["Offset of field: moreram_import::reserved"]
        [::core::mem::offset_of!(moreram_import, reserved) - 40usize];
};
#[doc = " struct moreram_control - argument of MORERAM_IOC_CONTROL\n @handle:    in: an allocation of this file\n @cmd:       in: MORERAM_CTL_*\n @offset:    in: first byte of the range in the allocation, page aligned\n @length:    in: bytes, page aligned, not zero\n @pid:       in: the process the command is about; REVOKE_WRITE: 0 = all\n @reserved0: zero\n @reserved:  zero\n\n Only the owner of every page of the range may change rights; a writer may\n revoke its own write right (REVOKE_WRITE with its own pid). When the call\n returns, no process that lost write access can write through a mapping\n made before: its next write faults."]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_control {
    pub handle: __u32,
    pub cmd: __u32,
    pub offset: __u64,
    pub length: __u64,
    pub pid: __s32,
    pub reserved0: __u32,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_control"][::core::mem::size_of::<moreram_control>() - 48usize];
    ["Alignment of moreram_control"][::core::mem::align_of::<moreram_control>() - 8usize];
    ["Offset of field: moreram_control::handle"]
        [::core::mem::offset_of!(moreram_control, handle) - 0usize];
    ["Offset of field: moreram_control::cmd"]
        [::core::mem::offset_of!(moreram_control, cmd) - 4usize];
    ["Offset of field: moreram_control::offset"]
        [::core::mem::offset_of!(moreram_control, offset) - 8usize];
    ["Offset of field: moreram_control::length"]
        [::core::mem::offset_of!(moreram_control, length) - 16usize];
    ["Offset of field: moreram_control::pid"]
        [::core::mem::offset_of!(moreram_control, pid) - 24usize];
    ["Offset of field: moreram_control::reserved0"]
        [::core::mem::offset_of!(moreram_control, reserved0) - 28usize];
    ["Offset of field: moreram_control::reserved"]
        [::core::mem::offset_of!(moreram_control, reserved) - 32usize];
};
#[doc = " struct moreram_rights - argument of MORERAM_IOC_RIGHTS\n @handle:      in: an allocation of this file\n @flags:       out: MORERAM_RIGHTS_*\n @offset:      in: first byte of the range, page aligned\n @length:      in: bytes, page aligned, not zero\n @owner:       out: owner of the range's first page; 0 if it has none, if the\n               owner is not visible in the caller's pid namespace or has exited\n @caller:      out: MORERAM_RIGHT_* the caller holds on every page of the range\n @nwriters:    out: writers of the first page, besides the owner; writers not\n               visible to the caller or exited are not counted\n @writers_cap: in: entries at @writers_ptr\n @writers_ptr: in: __s32 array for the writers (may be 0 with @writers_cap 0)\n @nreaders:    out: processes the allocation was shared with by name, the same\n               exclusions as @nwriters\n @readers_cap: in: entries at @readers_ptr\n @readers_ptr: in: __s32 array for the readers\n @reserved:    zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_rights {
    pub handle: __u32,
    pub flags: __u32,
    pub offset: __u64,
    pub length: __u64,
    pub owner: __s32,
    pub caller: __u32,
    pub nwriters: __u32,
    pub writers_cap: __u32,
    pub writers_ptr: __u64,
    pub nreaders: __u32,
    pub readers_cap: __u32,
    pub readers_ptr: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_rights"][::core::mem::size_of::<moreram_rights>() - 80usize];
    ["Alignment of moreram_rights"][::core::mem::align_of::<moreram_rights>() - 8usize];
    ["Offset of field: moreram_rights::handle"]
        [::core::mem::offset_of!(moreram_rights, handle) - 0usize];
    ["Offset of field: moreram_rights::flags"]
        [::core::mem::offset_of!(moreram_rights, flags) - 4usize];
    ["Offset of field: moreram_rights::offset"]
        [::core::mem::offset_of!(moreram_rights, offset) - 8usize];
    ["Offset of field: moreram_rights::length"]
        [::core::mem::offset_of!(moreram_rights, length) - 16usize];
    ["Offset of field: moreram_rights::owner"]
        [::core::mem::offset_of!(moreram_rights, owner) - 24usize];
    ["Offset of field: moreram_rights::caller"]
        [::core::mem::offset_of!(moreram_rights, caller) - 28usize];
    ["Offset of field: moreram_rights::nwriters"]
        [::core::mem::offset_of!(moreram_rights, nwriters) - 32usize];
    ["Offset of field: moreram_rights::writers_cap"]
        [::core::mem::offset_of!(moreram_rights, writers_cap) - 36usize];
    ["Offset of field: moreram_rights::writers_ptr"]
        [::core::mem::offset_of!(moreram_rights, writers_ptr) - 40usize];
    ["Offset of field: moreram_rights::nreaders"]
        [::core::mem::offset_of!(moreram_rights, nreaders) - 48usize];
    ["Offset of field: moreram_rights::readers_cap"]
        [::core::mem::offset_of!(moreram_rights, readers_cap) - 52usize];
    ["Offset of field: moreram_rights::readers_ptr"]
        [::core::mem::offset_of!(moreram_rights, readers_ptr) - 56usize];
    ["Offset of field: moreram_rights::reserved"]
        [::core::mem::offset_of!(moreram_rights, reserved) - 64usize];
};
#[doc = " struct moreram_proc_info - one process's use of the tier\n @pid:      thread-group id in the caller's pid namespace\n @reserved0: zero\n @vram:     bytes of VRAM pages it owns\n @system:   bytes of system pages it owns\n @reserved: zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_proc_info {
    pub pid: __s32,
    pub reserved0: __u32,
    pub vram: __u64,
    pub system: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_proc_info"][::core::mem::size_of::<moreram_proc_info>() - 40usize];
    ["Alignment of moreram_proc_info"][::core::mem::align_of::<moreram_proc_info>() - 8usize];
    ["Offset of field: moreram_proc_info::pid"]
        [::core::mem::offset_of!(moreram_proc_info, pid) - 0usize];
    ["Offset of field: moreram_proc_info::reserved0"]
        [::core::mem::offset_of!(moreram_proc_info, reserved0) - 4usize];
    ["Offset of field: moreram_proc_info::vram"]
        [::core::mem::offset_of!(moreram_proc_info, vram) - 8usize];
    ["Offset of field: moreram_proc_info::system"]
        [::core::mem::offset_of!(moreram_proc_info, system) - 16usize];
    ["Offset of field: moreram_proc_info::reserved"]
        [::core::mem::offset_of!(moreram_proc_info, reserved) - 24usize];
};
#[doc = " struct moreram_procs - argument of MORERAM_IOC_PROCS: per-process use,\n by owner, of every process visible in the caller's pid namespace\n @count:      out: processes that own pages now\n @capacity:   in: entries at @procs_ptr\n @entry_size: in: sizeof(struct moreram_proc_info), at least\n              MORERAM_PROC_INFO_SIZE_V1 (as for MORERAM_IOC_BANKS)\n @reserved0:  zero\n @procs_ptr:  in: user pointer to the array\n @reserved:   zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_procs {
    pub count: __u32,
    pub capacity: __u32,
    pub entry_size: __u32,
    pub reserved0: __u32,
    pub procs_ptr: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_procs"][::core::mem::size_of::<moreram_procs>() - 40usize];
    ["Alignment of moreram_procs"][::core::mem::align_of::<moreram_procs>() - 8usize];
    ["Offset of field: moreram_procs::count"]
        [::core::mem::offset_of!(moreram_procs, count) - 0usize];
    ["Offset of field: moreram_procs::capacity"]
        [::core::mem::offset_of!(moreram_procs, capacity) - 4usize];
    ["Offset of field: moreram_procs::entry_size"]
        [::core::mem::offset_of!(moreram_procs, entry_size) - 8usize];
    ["Offset of field: moreram_procs::reserved0"]
        [::core::mem::offset_of!(moreram_procs, reserved0) - 12usize];
    ["Offset of field: moreram_procs::procs_ptr"]
        [::core::mem::offset_of!(moreram_procs, procs_ptr) - 16usize];
    ["Offset of field: moreram_procs::reserved"]
        [::core::mem::offset_of!(moreram_procs, reserved) - 24usize];
};
#[doc = " struct moreram_reserve - argument of MORERAM_IOC_RESERVE\n @size:     in: bytes, a non-zero multiple of the page size\n @bank:     in: the bank (zero with MORERAM_RESERVE_SYSTEM)\n @flags:    in: MORERAM_RESERVE_*\n @reserved: zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_reserve {
    pub size: __u64,
    pub bank: __u32,
    pub flags: __u32,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_reserve"][::core::mem::size_of::<moreram_reserve>() - 32usize];
    ["Alignment of moreram_reserve"][::core::mem::align_of::<moreram_reserve>() - 8usize];
    ["Offset of field: moreram_reserve::size"]
        [::core::mem::offset_of!(moreram_reserve, size) - 0usize];
    ["Offset of field: moreram_reserve::bank"]
        [::core::mem::offset_of!(moreram_reserve, bank) - 8usize];
    ["Offset of field: moreram_reserve::flags"]
        [::core::mem::offset_of!(moreram_reserve, flags) - 12usize];
    ["Offset of field: moreram_reserve::reserved"]
        [::core::mem::offset_of!(moreram_reserve, reserved) - 16usize];
};
#[doc = " struct moreram_scavenge - argument of MORERAM_IOC_SCAVENGE\n @vram:     out: bytes of VRAM returned from the caller's pool\n @system:   out: bytes of system pages returned\n @reserved: zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_scavenge {
    pub vram: __u64,
    pub system: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_scavenge"][::core::mem::size_of::<moreram_scavenge>() - 32usize];
    ["Alignment of moreram_scavenge"][::core::mem::align_of::<moreram_scavenge>() - 8usize];
    ["Offset of field: moreram_scavenge::vram"]
        [::core::mem::offset_of!(moreram_scavenge, vram) - 0usize];
    ["Offset of field: moreram_scavenge::system"]
        [::core::mem::offset_of!(moreram_scavenge, system) - 8usize];
    ["Offset of field: moreram_scavenge::reserved"]
        [::core::mem::offset_of!(moreram_scavenge, reserved) - 16usize];
};
#[doc = " struct moreram_notify - argument of MORERAM_IOC_NOTIFY\n @signal:    in: also send this signal with every event (0: none)\n @reserved0: zero\n @reserved:  zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_notify {
    pub signal: __u32,
    pub reserved0: __u32,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_notify"][::core::mem::size_of::<moreram_notify>() - 24usize];
    ["Alignment of moreram_notify"][::core::mem::align_of::<moreram_notify>() - 8usize];
    ["Offset of field: moreram_notify::signal"]
        [::core::mem::offset_of!(moreram_notify, signal) - 0usize];
    ["Offset of field: moreram_notify::reserved0"]
        [::core::mem::offset_of!(moreram_notify, reserved0) - 4usize];
    ["Offset of field: moreram_notify::reserved"]
        [::core::mem::offset_of!(moreram_notify, reserved) - 8usize];
};
#[doc = " struct moreram_event - what read() on /dev/moreram returns\n @type:        MORERAM_EVENT_*\n @bank:        the bank that runs low\n @bytes:       bytes of the reader's pool in that bank: what is wanted back\n @deadline_ns: CLOCK_MONOTONIC time after which the kernel reclaims them\n @reserved:    zero"]
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct moreram_event {
    pub type_: __u32,
    pub bank: __u32,
    pub bytes: __u64,
    pub deadline_ns: __u64,
    pub reserved: [__u64; 2usize],
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of moreram_event"][::core::mem::size_of::<moreram_event>() - 40usize];
    ["Alignment of moreram_event"][::core::mem::align_of::<moreram_event>() - 8usize];
    ["Offset of field: moreram_event::type_"]
        [::core::mem::offset_of!(moreram_event, type_) - 0usize];
    ["Offset of field: moreram_event::bank"][::core::mem::offset_of!(moreram_event, bank) - 4usize];
    ["Offset of field: moreram_event::bytes"]
        [::core::mem::offset_of!(moreram_event, bytes) - 8usize];
    ["Offset of field: moreram_event::deadline_ns"]
        [::core::mem::offset_of!(moreram_event, deadline_ns) - 16usize];
    ["Offset of field: moreram_event::reserved"]
        [::core::mem::offset_of!(moreram_event, reserved) - 24usize];
};
