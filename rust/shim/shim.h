/* SPDX-License-Identifier: GPL-2.0 */
/* The C part of moreram (shim.c) and the Rust functions it calls; mod.rs declares the same. */
#ifndef MORERAM_SHIM_H
#define MORERAM_SHIM_H

#include <linux/types.h>

struct device;
struct drm_device;
struct inode;
struct page;
struct pci_dev;
struct pid;

void moreram_pci_location(struct pci_dev *pdev, u32 *domain, u8 *bus, u8 *devfn);
unsigned long moreram_pci_bar_flags(struct pci_dev *pdev, int bar);
unsigned long moreram_page_to_pfn(struct page *page);
struct pid *moreram_get_pid(struct pid *pid);
struct mm_struct *moreram_current_mm(void);
struct inode *moreram_inode_new(void);
void moreram_inode_free(struct inode *inode);
int moreram_sysfs_add(struct device *dev);
void moreram_sysfs_remove(struct device *dev);
struct drm_device *moreram_drm_register(struct device *parent);
void moreram_drm_unregister(struct drm_device *drm);
void moreram_fail_alloc_debugfs(const char *dir);
bool moreram_should_fail_alloc(u64 size);
bool moreram_should_fail_release(u64 size);

/* Implemented in Rust (device/sysfs.rs, device/drm.rs). */
int moreram_bank_attr_get(struct device *dev, const char *name, u64 *value);
int moreram_bank_attr_set(struct device *dev, const char *name, u64 value);
int moreram_drm_usage(struct device *parent, struct pid *pid, u64 *owned);

#endif
