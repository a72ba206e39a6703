// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the moreram Rust module: inline functions and macros that
 * bindgen cannot see, and the UAPI layout as the C compiler computes it.
 */
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/stddef.h>
#include <linux/moreram.h>

#include "shim.h"

void moreram_pci_location(struct pci_dev *pdev, u32 *domain, u8 *bus, u8 *devfn)
{
	*domain = pci_domain_nr(pdev->bus);
	*bus = pdev->bus->number;
	*devfn = pdev->devfn;
}

unsigned long moreram_pci_bar_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}


/* --- the UAPI layout, from the header itself -------------------------------- */

#define SIZE(s) { #s, sizeof(struct s) }
#define OFF(s, f) { #s "." #f, offsetof(struct s, f) }

const struct moreram_layout_entry moreram_uapi_layout[] = {
	SIZE(moreram_bank_info),
	OFF(moreram_bank_info, index),
	OFF(moreram_bank_info, flags),
	OFF(moreram_bank_info, size),
	OFF(moreram_bank_info, free),
	OFF(moreram_bank_info, bar_start),
	OFF(moreram_bank_info, bar_len),
	OFF(moreram_bank_info, pci_domain),
	OFF(moreram_bank_info, pci_bus),
	OFF(moreram_bank_info, pci_dev),
	OFF(moreram_bank_info, pci_func),
	OFF(moreram_bank_info, bar),
	OFF(moreram_bank_info, vendor),
	OFF(moreram_bank_info, device),
	OFF(moreram_bank_info, reserved0),
	OFF(moreram_bank_info, largest_free),
	OFF(moreram_bank_info, reserved),
	SIZE(moreram_banks),
	OFF(moreram_banks, count),
	OFF(moreram_banks, capacity),
	OFF(moreram_banks, entry_size),
	OFF(moreram_banks, reserved0),
	OFF(moreram_banks, banks_ptr),
	OFF(moreram_banks, reserved),
	SIZE(moreram_alloc),
	OFF(moreram_alloc, size),
	OFF(moreram_alloc, flags),
	OFF(moreram_alloc, bank),
	OFF(moreram_alloc, handle),
	OFF(moreram_alloc, tier),
	OFF(moreram_alloc, bank_used),
	OFF(moreram_alloc, reserved0),
	OFF(moreram_alloc, mmap_offset),
	OFF(moreram_alloc, reserved),
	SIZE(moreram_handle),
	OFF(moreram_handle, handle),
	OFF(moreram_handle, reserved0),
	OFF(moreram_handle, reserved),
	SIZE(moreram_query),
	OFF(moreram_query, handle),
	OFF(moreram_query, tier),
	OFF(moreram_query, bank),
	OFF(moreram_query, flags),
	OFF(moreram_query, size),
	OFF(moreram_query, mmap_offset),
	OFF(moreram_query, mappings),
	OFF(moreram_query, reserved0),
	OFF(moreram_query, reserved),
	SIZE(moreram_tier),
	OFF(moreram_tier, banks),
	OFF(moreram_tier, reserved0),
	OFF(moreram_tier, vram_size),
	OFF(moreram_tier, vram_free),
	OFF(moreram_tier, system_used),
	OFF(moreram_tier, file_vram),
	OFF(moreram_tier, file_system),
	OFF(moreram_tier, file_allocs),
	OFF(moreram_tier, reserved1),
	OFF(moreram_tier, reserved),
	{ NULL, 0 },
};

/* Constants, by name, for the same comparison. */
#define CONST(c) { #c, (size_t)(c) }
const struct moreram_layout_entry moreram_uapi_consts[] = {
	CONST(MORERAM_IOC_BANKS),
	CONST(MORERAM_IOC_ALLOC),
	CONST(MORERAM_IOC_FREE),
	CONST(MORERAM_IOC_QUERY),
	CONST(MORERAM_IOC_TIER),
	CONST(MORERAM_BANK_INFO_SIZE_V1),
	CONST(MORERAM_BANK_PREFETCHABLE),
	CONST(MORERAM_BANK_64BIT),
	CONST(MORERAM_ALLOC_VRAM_ONLY),
	CONST(MORERAM_ALLOC_SYSTEM_ONLY),
	CONST(MORERAM_ALLOC_BANK),
	CONST(MORERAM_ALLOC_CONTIGUOUS),
	CONST(MORERAM_ALLOC_FLAGS_ALL),
	CONST(MORERAM_TIER_VRAM),
	CONST(MORERAM_TIER_SYSTEM),
	CONST(MORERAM_NO_BANK),
	CONST(MORERAM_MAX_ALLOC),
	{ NULL, 0 },
};
