/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations of rust/shim.c; the Rust side declares the same in its extern blocks. */
#ifndef MORERAM_SHIM_H
#define MORERAM_SHIM_H

#include <linux/types.h>

struct page;
struct pci_dev;
struct pid;

struct moreram_layout_entry {
	const char *name;
	size_t value;
};

void moreram_pci_location(struct pci_dev *pdev, u32 *domain, u8 *bus, u8 *devfn);
unsigned long moreram_pci_bar_flags(struct pci_dev *pdev, int bar);
unsigned long moreram_page_to_pfn(struct page *page);
struct pid *moreram_current_tgid(void);
struct pid *moreram_find_tgid(pid_t nr);
struct pid *moreram_get_pid(struct pid *pid);
pid_t moreram_pid_nr(struct pid *pid);
u64 moreram_random_u64(void);
bool moreram_pid_exiting(struct pid *pid);

struct device;
enum { MORERAM_ATTR_LOW = 0, MORERAM_ATTR_MIN = 1, MORERAM_ATTR_DEADLINE = 2 };
int moreram_sysfs_add(struct device *dev);
struct drm_device;
struct drm_device *moreram_drm_register(struct device *parent);
void moreram_drm_unregister(struct drm_device *drm);
void moreram_debugfs_init(void);
void moreram_debugfs_exit(void);
bool moreram_memdebug_on(void);
void moreram_count_poison_error(void);
void moreram_count_leak(void);
bool moreram_should_fail_alloc(u64 size);
void moreram_sysfs_remove(struct device *dev);

extern const struct moreram_layout_entry moreram_uapi_layout[];
extern const struct moreram_layout_entry moreram_uapi_consts[];

#endif
