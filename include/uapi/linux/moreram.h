/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * moreram: GPU memory seen through a PCI BAR, as a memory tier for programs.
 *
 * This header is the one definition of the user ABI of /dev/moreram. The
 * kernel module (rust/uapi.rs) and the user-space library (tools/moreram)
 * mirror it; tests check that sizes and field offsets agree.
 *
 * Rules that hold for every ioctl:
 *  - reserved fields and padding must be zero on input (else EINVAL) and are
 *    zero on output;
 *  - unknown flag bits are rejected with EINVAL;
 *  - structs only grow at the end; sizes are passed where arrays are involved,
 *    so an old binary keeps working with a newer module.
 *
 * See Documentation/userspace-api.rst.
 */
#ifndef _UAPI_LINUX_MORERAM_H
#define _UAPI_LINUX_MORERAM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MORERAM_IOC_MAGIC 0xB9

/* struct moreram_bank_info.flags */
#define MORERAM_BANK_PREFETCHABLE (1U << 0) /* the BAR is prefetchable */
#define MORERAM_BANK_64BIT        (1U << 1) /* the BAR is a 64-bit BAR */

/**
 * struct moreram_bank_info - one bank: a bound device's memory BAR
 * @index:      bank number; stable while the device stays bound
 * @flags:      MORERAM_BANK_*
 * @size:       bytes the bank manages (the BAR length, whole pages)
 * @free:       bytes not allocated
 * @bar_start:  physical (bus) address of the BAR
 * @bar_len:    length of the BAR in bytes
 * @pci_domain: PCI domain of the device
 * @pci_bus:    PCI bus number
 * @pci_dev:    PCI device (slot) number
 * @pci_func:   PCI function number
 * @bar:        BAR number on the device (0-5)
 * @vendor:     PCI vendor ID
 * @device:     PCI device ID
 * @largest_free: bytes in the largest free buddy block: the largest
 *              allocation with MORERAM_ALLOC_CONTIGUOUS that can succeed now
 * @pooled:     bytes of @free held in processes' pools (reserved for them)
 * @low_watermark: when @free - @pooled drops below this, pool holders are
 *              asked to scavenge
 * @min_watermark: below this, allocations reclaim pools at once
 */
struct moreram_bank_info {
	__u32 index;
	__u32 flags;
	__u64 size;
	__u64 free;
	__u64 bar_start;
	__u64 bar_len;
	__u32 pci_domain;
	__u8 pci_bus;
	__u8 pci_dev;
	__u8 pci_func;
	__u8 bar;
	__u16 vendor;
	__u16 device;
	__u32 reserved0;
	__u64 largest_free;
	__u64 pooled;
	__u64 low_watermark;
	__u64 min_watermark;
};

/**
 * struct moreram_banks - argument of MORERAM_IOC_BANKS
 * @count:      out: number of banks bound now
 * @capacity:   in: number of entries the array at @banks_ptr holds
 * @entry_size: in: sizeof(struct moreram_bank_info) as the caller knows it;
 *              at least MORERAM_BANK_INFO_SIZE_V1. The module writes
 *              min(capacity, count) entries of @entry_size bytes each,
 *              zero-filling what it does not know about.
 * @reserved0:  zero
 * @banks_ptr:  in: user pointer to the array (may be 0 when @capacity is 0)
 * @reserved:   zero
 *
 * Call once with @capacity 0 to learn @count, then again with room for it.
 */
struct moreram_banks {
	__u32 count;
	__u32 capacity;
	__u32 entry_size;
	__u32 reserved0;
	__u64 banks_ptr;
	__u64 reserved[2];
};

#define MORERAM_BANK_INFO_SIZE_V1 88

#define MORERAM_IOC_BANKS _IOWR(MORERAM_IOC_MAGIC, 0x00, struct moreram_banks)

/*
 * Allocation placement (struct moreram_alloc.flags). With none of the
 * placement flags, the allocation prefers VRAM and falls back to system pages.
 * MORERAM_ALLOC_FORK_COPY: a child made by fork(2) gets its own copy of each
 * mapping of the allocation, as of the fork (as anonymous memory does); without
 * it, children do not inherit the mappings.
 */
#define MORERAM_ALLOC_VRAM_ONLY   (1U << 0) /* VRAM or fail (ENOSPC when full) */
#define MORERAM_ALLOC_SYSTEM_ONLY (1U << 1) /* system pages only */
#define MORERAM_ALLOC_BANK        (1U << 2) /* VRAM from bank @bank only */
#define MORERAM_ALLOC_CONTIGUOUS  (1U << 3) /* VRAM in one physically contiguous block */
#define MORERAM_ALLOC_FORK_COPY   (1U << 4) /* fork(2) copies mappings to the child */
#define MORERAM_ALLOC_FLAGS_ALL   0x1fU

/* Where an allocation lives (struct moreram_alloc.tier, moreram_query.tier). */
#define MORERAM_TIER_VRAM   1
#define MORERAM_TIER_SYSTEM 2

/* No bank: the allocation is in system pages. */
#define MORERAM_NO_BANK 0xffffffffU

/* Largest allocation: 1 TiB. */
#define MORERAM_MAX_ALLOC (1ULL << 40)

/**
 * struct moreram_alloc - argument of MORERAM_IOC_ALLOC
 * @size:        in: bytes, a non-zero multiple of the page size, at most
 *               MORERAM_MAX_ALLOC
 * @flags:       in: MORERAM_ALLOC_*
 * @bank:        in: bank index with MORERAM_ALLOC_BANK, else zero
 * @handle:      out: names the allocation in this open file; never 0
 * @tier:        out: MORERAM_TIER_*
 * @bank_used:   out: bank of a VRAM allocation, MORERAM_NO_BANK otherwise
 * @reserved0:   zero
 * @mmap_offset: out: pass to mmap() on the same file to map the allocation
 * @reserved:    zero
 *
 * The memory reads as zeros. It is freed when it has been freed
 * (MORERAM_IOC_FREE, or by closing the file) and is no longer mapped.
 */
struct moreram_alloc {
	__u64 size;
	__u32 flags;
	__u32 bank;
	__u32 handle;
	__u32 tier;
	__u32 bank_used;
	__u32 reserved0;
	__u64 mmap_offset;
	__u64 reserved[4];
};

/**
 * struct moreram_handle - argument of MORERAM_IOC_FREE
 * @handle:    in: from MORERAM_IOC_ALLOC on this file
 * @reserved0: zero
 * @reserved:  zero
 */
struct moreram_handle {
	__u32 handle;
	__u32 reserved0;
	__u64 reserved[2];
};

/**
 * struct moreram_query - argument of MORERAM_IOC_QUERY
 * @handle:      in: from MORERAM_IOC_ALLOC on this file
 * @tier:        out: MORERAM_TIER_*
 * @bank:        out: bank of a VRAM allocation, MORERAM_NO_BANK otherwise
 * @flags:       out: the flags it was allocated with
 * @size:        out: bytes
 * @mmap_offset: out: as returned by MORERAM_IOC_ALLOC
 * @mappings:    out: number of mappings (VMAs) of it in any process now
 * @reserved0:   zero
 * @reserved:    zero
 */
struct moreram_query {
	__u32 handle;
	__u32 tier;
	__u32 bank;
	__u32 flags;
	__u64 size;
	__u64 mmap_offset;
	__u32 mappings;
	__u32 reserved0;
	__u64 reserved[4];
};

/**
 * struct moreram_tier - argument of MORERAM_IOC_TIER: the whole tier, and
 * this open file's share of it
 * @banks:        out: banks bound now
 * @reserved0:    zero
 * @vram_size:    out: bytes in all banks
 * @vram_free:    out: bytes free in all banks
 * @system_used:  out: bytes of system-page allocations, all files
 * @file_vram:    out: bytes of VRAM allocated through this file
 * @file_system:  out: bytes of system pages allocated through this file
 * @file_allocs:  out: live handles of this file
 * @reserved1:    zero
 * @pool_vram:    out: bytes of VRAM in the calling process's pool
 * @pool_system:  out: bytes of system pages in the calling process's pool
 * @reserved:     zero
 *
 * Per-bank sizes, free bytes and largest free blocks: MORERAM_IOC_BANKS.
 */
struct moreram_tier {
	__u32 banks;
	__u32 reserved0;
	__u64 vram_size;
	__u64 vram_free;
	__u64 system_used;
	__u64 file_vram;
	__u64 file_system;
	__u32 file_allocs;
	__u32 reserved1;
	__u64 pool_vram;
	__u64 pool_system;
	__u64 reserved[2];
};

/*
 * Page owners. Every page has one owner process; only the owner and the
 * processes it grants may write. Processes are named by thread-group id (as
 * getpid() returns it) in the caller's pid namespace.
 * See Documentation/userspace-api.rst, "Page owners".
 */

/* struct moreram_share.flags */
#define MORERAM_SHARE_NAMED (1U << 0) /* only process @pid may import */

/**
 * struct moreram_share - argument of MORERAM_IOC_SHARE
 * @handle:    in: an allocation of this file the caller owns pages of
 * @flags:     in: MORERAM_SHARE_*
 * @pid:       in: with MORERAM_SHARE_NAMED, the only process that may import
 *             (it may be of another user); else zero
 * @reserved0: zero
 * @token:     out: secret to pass to the importer, e.g. over a pipe
 * @reserved:  zero
 *
 * Without MORERAM_SHARE_NAMED, any process of the caller's user that knows
 * the token may import. Imports are read-only until the owner grants write.
 */
struct moreram_share {
	__u32 handle;
	__u32 flags;
	__s32 pid;
	__u32 reserved0;
	__u64 token;
	__u64 reserved[2];
};

/**
 * struct moreram_import - argument of MORERAM_IOC_IMPORT
 * @token:       in: from MORERAM_IOC_SHARE
 * @handle:      out: a new handle of this file for the same allocation
 * @tier:        out: MORERAM_TIER_*
 * @bank:        out: bank, or MORERAM_NO_BANK
 * @reserved0:   zero
 * @size:        out: bytes
 * @mmap_offset: out: for mmap() on this file
 * @reserved:    zero
 */
struct moreram_import {
	__u64 token;
	__u32 handle;
	__u32 tier;
	__u32 bank;
	__u32 reserved0;
	__u64 size;
	__u64 mmap_offset;
	__u64 reserved[2];
};

/* struct moreram_control.cmd, after 3DO's ControlMem() */
#define MORERAM_CTL_GRANT_WRITE  1 /* let @pid write the range */
#define MORERAM_CTL_REVOKE_WRITE 2 /* take it back from @pid, or from all if 0 */
#define MORERAM_CTL_GIVE         3 /* make @pid the owner of the range */

/**
 * struct moreram_control - argument of MORERAM_IOC_CONTROL
 * @handle:    in: an allocation of this file
 * @cmd:       in: MORERAM_CTL_*
 * @offset:    in: first byte of the range in the allocation, page aligned
 * @length:    in: bytes, page aligned, not zero
 * @pid:       in: the process the command is about; REVOKE_WRITE: 0 = all
 * @reserved0: zero
 * @reserved:  zero
 *
 * Only the owner of every page of the range may change rights; a writer may
 * revoke its own write right (REVOKE_WRITE with its own pid). When the call
 * returns, no process that lost write access can write through a mapping
 * made before: its next write faults.
 */
struct moreram_control {
	__u32 handle;
	__u32 cmd;
	__u64 offset;
	__u64 length;
	__s32 pid;
	__u32 reserved0;
	__u64 reserved[2];
};

/* Rights a process has on pages (struct moreram_rights.caller). */
#define MORERAM_RIGHT_READ  (1U << 0)
#define MORERAM_RIGHT_WRITE (1U << 1)
#define MORERAM_RIGHT_OWNER (1U << 2)

/* struct moreram_rights.flags */
#define MORERAM_RIGHTS_MIXED (1U << 0) /* pages of the range differ in owner or writers */

/**
 * struct moreram_rights - argument of MORERAM_IOC_RIGHTS
 * @handle:      in: an allocation of this file
 * @flags:       out: MORERAM_RIGHTS_*
 * @offset:      in: first byte of the range, page aligned
 * @length:      in: bytes, page aligned, not zero
 * @owner:       out: owner of the range's first page; 0 if it has none, if the
 *               owner is not visible in the caller's pid namespace or has exited
 * @caller:      out: MORERAM_RIGHT_* the caller holds on every page of the range
 * @nwriters:    out: writers of the first page, besides the owner; writers not
 *               visible to the caller or exited are not counted
 * @writers_cap: in: entries at @writers_ptr
 * @writers_ptr: in: __s32 array for the writers (may be 0 with @writers_cap 0)
 * @nreaders:    out: processes the allocation was shared with by name, the same
 *               exclusions as @nwriters
 * @readers_cap: in: entries at @readers_ptr
 * @readers_ptr: in: __s32 array for the readers
 * @reserved:    zero
 */
struct moreram_rights {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
	__s32 owner;
	__u32 caller;
	__u32 nwriters;
	__u32 writers_cap;
	__u64 writers_ptr;
	__u32 nreaders;
	__u32 readers_cap;
	__u64 readers_ptr;
	__u64 reserved[2];
};

/**
 * struct moreram_proc_info - one process's use of the tier
 * @pid:      thread-group id in the caller's pid namespace
 * @reserved0: zero
 * @vram:     bytes of VRAM pages it owns
 * @system:   bytes of system pages it owns
 * @reserved: zero
 */
struct moreram_proc_info {
	__s32 pid;
	__u32 reserved0;
	__u64 vram;
	__u64 system;
	__u64 reserved[2];
};

#define MORERAM_PROC_INFO_SIZE_V1 40

/**
 * struct moreram_procs - argument of MORERAM_IOC_PROCS: per-process use,
 * by owner, of every process visible in the caller's pid namespace
 * @count:      out: processes that own pages now
 * @capacity:   in: entries at @procs_ptr
 * @entry_size: in: sizeof(struct moreram_proc_info), at least
 *              MORERAM_PROC_INFO_SIZE_V1 (as for MORERAM_IOC_BANKS)
 * @reserved0:  zero
 * @procs_ptr:  in: user pointer to the array
 * @reserved:   zero
 */
struct moreram_procs {
	__u32 count;
	__u32 capacity;
	__u32 entry_size;
	__u32 reserved0;
	__u64 procs_ptr;
	__u64 reserved[2];
};

/*
 * Pools and scavenging. A process's pool holds memory it has taken from the
 * tier but does not use: freed allocations stay in it, and RESERVE adds to
 * it; the process's allocations are served from it first. When a bank runs
 * low, processes with pool memory in it are told (poll()/read() on the file,
 * optionally a signal) and should SCAVENGE before the deadline, after which
 * the kernel reclaims it. See Documentation/userspace-api.rst, "Pools".
 */

/* struct moreram_reserve.flags */
#define MORERAM_RESERVE_SYSTEM (1U << 0) /* system pages instead of @bank's VRAM */

/**
 * struct moreram_reserve - argument of MORERAM_IOC_RESERVE
 * @size:     in: bytes, a non-zero multiple of the page size
 * @bank:     in: the bank (zero with MORERAM_RESERVE_SYSTEM)
 * @flags:    in: MORERAM_RESERVE_*
 * @reserved: zero
 */
struct moreram_reserve {
	__u64 size;
	__u32 bank;
	__u32 flags;
	__u64 reserved[2];
};

/**
 * struct moreram_scavenge - argument of MORERAM_IOC_SCAVENGE
 * @vram:     out: bytes of VRAM returned from the caller's pool
 * @system:   out: bytes of system pages returned
 * @reserved: zero
 */
struct moreram_scavenge {
	__u64 vram;
	__u64 system;
	__u64 reserved[2];
};

/**
 * struct moreram_notify - argument of MORERAM_IOC_NOTIFY
 * @signal:    in: also send this signal with every event (0: none)
 * @reserved0: zero
 * @reserved:  zero
 */
struct moreram_notify {
	__u32 signal;
	__u32 reserved0;
	__u64 reserved[2];
};

/* struct moreram_event.type */
#define MORERAM_EVENT_SCAVENGE 1 /* give back pool memory of @bank */

/**
 * struct moreram_event - what read() on /dev/moreram returns
 * @type:        MORERAM_EVENT_*
 * @bank:        the bank that runs low
 * @bytes:       bytes of the reader's pool in that bank: what is wanted back
 * @deadline_ns: CLOCK_MONOTONIC time after which the kernel reclaims them
 * @reserved:    zero
 */
struct moreram_event {
	__u32 type;
	__u32 bank;
	__u64 bytes;
	__u64 deadline_ns;
	__u64 reserved[2];
};

#define MORERAM_IOC_ALLOC _IOWR(MORERAM_IOC_MAGIC, 0x01, struct moreram_alloc)
#define MORERAM_IOC_FREE  _IOW(MORERAM_IOC_MAGIC, 0x02, struct moreram_handle)
#define MORERAM_IOC_QUERY _IOWR(MORERAM_IOC_MAGIC, 0x03, struct moreram_query)
#define MORERAM_IOC_TIER  _IOWR(MORERAM_IOC_MAGIC, 0x04, struct moreram_tier)
#define MORERAM_IOC_SHARE   _IOWR(MORERAM_IOC_MAGIC, 0x05, struct moreram_share)
#define MORERAM_IOC_IMPORT  _IOWR(MORERAM_IOC_MAGIC, 0x06, struct moreram_import)
#define MORERAM_IOC_CONTROL _IOW(MORERAM_IOC_MAGIC, 0x07, struct moreram_control)
#define MORERAM_IOC_RIGHTS  _IOWR(MORERAM_IOC_MAGIC, 0x08, struct moreram_rights)
#define MORERAM_IOC_PROCS   _IOWR(MORERAM_IOC_MAGIC, 0x09, struct moreram_procs)
#define MORERAM_IOC_RESERVE  _IOW(MORERAM_IOC_MAGIC, 0x0a, struct moreram_reserve)
#define MORERAM_IOC_SCAVENGE _IOWR(MORERAM_IOC_MAGIC, 0x0b, struct moreram_scavenge)
#define MORERAM_IOC_NOTIFY   _IOW(MORERAM_IOC_MAGIC, 0x0c, struct moreram_notify)

#endif /* _UAPI_LINUX_MORERAM_H */
