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
	OFF(moreram_bank_info, reserved),
	SIZE(moreram_banks),
	OFF(moreram_banks, count),
	OFF(moreram_banks, capacity),
	OFF(moreram_banks, entry_size),
	OFF(moreram_banks, reserved0),
	OFF(moreram_banks, banks_ptr),
	OFF(moreram_banks, reserved),
	{ NULL, 0 },
};

const u32 moreram_uapi_ioc_banks = MORERAM_IOC_BANKS;
const u32 moreram_uapi_bank_info_size_v1 = MORERAM_BANK_INFO_SIZE_V1;
