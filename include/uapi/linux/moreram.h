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
 * See Documentation/userspace-api/moreram.rst.
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
 * @reserved:   zero
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
	__u64 reserved[4];
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

#endif /* _UAPI_LINUX_MORERAM_H */
