/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations of rust/shim.c; the Rust side declares the same in its extern blocks. */
#ifndef MORERAM_SHIM_H
#define MORERAM_SHIM_H

#include <linux/types.h>

struct pci_dev;

struct moreram_layout_entry {
	const char *name;
	size_t value;
};

void moreram_pci_location(struct pci_dev *pdev, u32 *domain, u8 *bus, u8 *devfn);
unsigned long moreram_pci_bar_flags(struct pci_dev *pdev, int bar);

extern const struct moreram_layout_entry moreram_uapi_layout[];
extern const struct moreram_layout_entry moreram_uapi_consts[];

#endif
