// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the moreram Rust module: inline functions and macros that
 * bindgen cannot see, and the UAPI layout as the C compiler computes it.
 */
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pid.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sysfs.h>
#include <linux/device.h>
#include <linux/kstrtox.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_print.h>
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


unsigned long moreram_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

struct pid *moreram_current_tgid(void)
{
	return get_pid(task_tgid(current));
}

struct pid *moreram_find_tgid(pid_t nr)
{
	struct pid *pid;

	rcu_read_lock();
	pid = find_vpid(nr);
	/* Only a thread-group leader's pid names a process. */
	if (pid && !pid_task(pid, PIDTYPE_TGID))
		pid = NULL;
	pid = get_pid(pid);
	rcu_read_unlock();
	return pid;
}

struct pid *moreram_get_pid(struct pid *pid)
{
	return get_pid(pid);
}

pid_t moreram_pid_nr(struct pid *pid)
{
	return pid_vnr(pid);
}

bool moreram_pid_exiting(struct pid *pid)
{
	struct task_struct *task;
	bool gone;

	rcu_read_lock();
	task = pid_task(pid, PIDTYPE_TGID);
	gone = !task || (task->flags & PF_EXITING);
	rcu_read_unlock();
	return gone;
}

/* --- sysfs: the bank's knobs, under the PCI device's moreram/ ------------- */

u64 moreram_bank_attr_get(struct device *dev, int which);
int moreram_bank_attr_set(struct device *dev, int which, u64 value);

#define BANK_ATTR_RW(name, which)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	return sysfs_emit(buf, "%llu\n", moreram_bank_attr_get(dev, which));	\
}										\
static ssize_t name##_store(struct device *dev, struct device_attribute *attr,	\
			    const char *buf, size_t count)			\
{										\
	u64 v;									\
	int err = kstrtou64(buf, 0, &v);					\
										\
	if (!err)								\
		err = moreram_bank_attr_set(dev, which, v);			\
	return err ? err : count;						\
}										\
static DEVICE_ATTR_RW(name)

#define BANK_ATTR_RO(name, which)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	return sysfs_emit(buf, "%llu\n", moreram_bank_attr_get(dev, which));	\
}										\
static DEVICE_ATTR_RO(name)

BANK_ATTR_RO(size, 3);
BANK_ATTR_RO(free, 4);
BANK_ATTR_RO(largest_free, 5);
BANK_ATTR_RO(pooled, 6);
BANK_ATTR_RO(processes, 7);
BANK_ATTR_RO(bank, 8);
BANK_ATTR_RW(low_watermark, MORERAM_ATTR_LOW);
BANK_ATTR_RW(min_watermark, MORERAM_ATTR_MIN);
BANK_ATTR_RW(scavenge_deadline_ms, MORERAM_ATTR_DEADLINE);

static struct attribute *moreram_bank_attrs[] = {
	&dev_attr_bank.attr,
	&dev_attr_size.attr,
	&dev_attr_free.attr,
	&dev_attr_largest_free.attr,
	&dev_attr_pooled.attr,
	&dev_attr_processes.attr,
	&dev_attr_low_watermark.attr,
	&dev_attr_min_watermark.attr,
	&dev_attr_scavenge_deadline_ms.attr,
	NULL,
};

static const struct attribute_group moreram_bank_group = {
	.name = "moreram",
	.attrs = moreram_bank_attrs,
};

int moreram_sysfs_add(struct device *dev)
{
	return sysfs_create_group(&dev->kobj, &moreram_bank_group);
}

void moreram_sysfs_remove(struct device *dev)
{
	sysfs_remove_group(&dev->kobj, &moreram_bank_group);
}

/* --- the DRM device of a bank ---------------------------------------------
 *
 * Registered here rather than through kernel::drm: in 7.3 the Rust abstraction's
 * drm_driver and file_operations are constants with no show_fdinfo, so a driver
 * using it cannot report fdinfo on /dev/dri/card*. moreram has no DRM ioctls or
 * GEM objects; the device exists to be found, and to say in fdinfo how much of
 * its bank the process that opened the file owns.
 */

/* Rust: bytes of the bank of `parent` owned by `pid`; returns the bank or -1. */
int moreram_drm_usage(struct device *parent, struct pid *pid, u64 *owned);

static void moreram_drm_show_fdinfo(struct drm_printer *p, struct drm_file *file)
{
	struct pid *pid;
	u64 owned = 0;
	int bank;

	rcu_read_lock();
	pid = get_pid(rcu_dereference(file->pid));
	rcu_read_unlock();
	bank = moreram_drm_usage(file->minor->dev->dev, pid, &owned);
	put_pid(pid);
	if (bank < 0)
		return;
	drm_printf(p, "drm-total-vram%d:\t%llu KiB\n", bank, owned >> 10);
	drm_printf(p, "drm-resident-vram%d:\t%llu KiB\n", bank, owned >> 10);
}

static const struct file_operations moreram_drm_fops = {
	.owner = THIS_MODULE,
	DRM_GEM_FOPS,
	.show_fdinfo = drm_show_fdinfo,
};

static const struct drm_driver moreram_drm_driver = {
	.driver_features = DRIVER_GEM,
	.fops = &moreram_drm_fops,
	.show_fdinfo = moreram_drm_show_fdinfo,
	.name = "moreram",
	.desc = "GPU memory as a memory tier",
	.major = 0,
	.minor = 1,
};

struct drm_device *moreram_drm_register(struct device *parent)
{
	struct drm_device *drm = drm_dev_alloc(&moreram_drm_driver, parent);
	int err;

	if (IS_ERR(drm))
		return drm;
	err = drm_dev_register(drm, 0);
	if (err) {
		drm_dev_put(drm);
		return ERR_PTR(err);
	}
	return drm;
}

void moreram_drm_unregister(struct drm_device *drm)
{
	drm_dev_unplug(drm);
	drm_dev_put(drm);
}

/* --- debugfs: moreram/ --------------------------------------------------- */

/* Content comes from Rust. */
void moreram_debugfs_banks(struct seq_file *m);
void moreram_debugfs_processes(struct seq_file *m);
int moreram_debugfs_poke(u32 bank, u64 offset, u64 value);

static struct dentry *moreram_debugfs_root;
static bool moreram_memdebug;
static u64 moreram_poison_errors;
static u64 moreram_leaks;
static DECLARE_FAULT_ATTR(moreram_fail_alloc);

static int dbg_banks_show(struct seq_file *m, void *v)
{
	moreram_debugfs_banks(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dbg_banks);

static int dbg_processes_show(struct seq_file *m, void *v)
{
	moreram_debugfs_processes(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dbg_processes);

/* "BANK OFFSET VALUE": writes a 64-bit word into a bank behind everybody's back. */
static ssize_t poke_write(struct file *f, const char __user *ubuf, size_t len, loff_t *pos)
{
	char buf[96];
	unsigned int bank;
	unsigned long long offset, value;
	int err;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (sscanf(buf, "%u %llu %llu", &bank, &offset, &value) != 3)
		return -EINVAL;
	err = moreram_debugfs_poke(bank, offset, value);
	return err ? err : len;
}

static const struct file_operations poke_fops = {
	.owner = THIS_MODULE,
	.write = poke_write,
};

void moreram_debugfs_init(void)
{
	struct dentry *root = debugfs_create_dir("moreram", NULL);

	moreram_debugfs_root = root;
	debugfs_create_file("banks", 0444, root, NULL, &dbg_banks_fops);
	debugfs_create_file("processes", 0444, root, NULL, &dbg_processes_fops);
	debugfs_create_bool("memdebug", 0644, root, &moreram_memdebug);
	debugfs_create_u64("poison_errors", 0444, root, &moreram_poison_errors);
	debugfs_create_u64("leaks", 0444, root, &moreram_leaks);
	debugfs_create_file("poke", 0200, root, NULL, &poke_fops);
	fault_create_debugfs_attr("fail_alloc", root, &moreram_fail_alloc);
}

void moreram_debugfs_exit(void)
{
	debugfs_remove_recursive(moreram_debugfs_root);
}

bool moreram_memdebug_on(void)
{
	return READ_ONCE(moreram_memdebug);
}

void moreram_count_poison_error(void)
{
	WRITE_ONCE(moreram_poison_errors, moreram_poison_errors + 1);
}

void moreram_count_leak(void)
{
	WRITE_ONCE(moreram_leaks, moreram_leaks + 1);
}

bool moreram_should_fail_alloc(u64 size)
{
	return should_fail(&moreram_fail_alloc, size);
}

u64 moreram_random_u64(void)
{
	return get_random_u64();
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
	OFF(moreram_bank_info, pooled),
	OFF(moreram_bank_info, low_watermark),
	OFF(moreram_bank_info, min_watermark),
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
	OFF(moreram_tier, pool_vram),
	OFF(moreram_tier, pool_system),
	OFF(moreram_tier, reserved),
	SIZE(moreram_share),
	OFF(moreram_share, handle),
	OFF(moreram_share, flags),
	OFF(moreram_share, pid),
	OFF(moreram_share, reserved0),
	OFF(moreram_share, token),
	OFF(moreram_share, reserved),
	SIZE(moreram_import),
	OFF(moreram_import, token),
	OFF(moreram_import, handle),
	OFF(moreram_import, tier),
	OFF(moreram_import, bank),
	OFF(moreram_import, reserved0),
	OFF(moreram_import, size),
	OFF(moreram_import, mmap_offset),
	OFF(moreram_import, reserved),
	SIZE(moreram_control),
	OFF(moreram_control, handle),
	OFF(moreram_control, cmd),
	OFF(moreram_control, offset),
	OFF(moreram_control, length),
	OFF(moreram_control, pid),
	OFF(moreram_control, reserved0),
	OFF(moreram_control, reserved),
	SIZE(moreram_rights),
	OFF(moreram_rights, handle),
	OFF(moreram_rights, flags),
	OFF(moreram_rights, offset),
	OFF(moreram_rights, length),
	OFF(moreram_rights, owner),
	OFF(moreram_rights, caller),
	OFF(moreram_rights, nwriters),
	OFF(moreram_rights, writers_cap),
	OFF(moreram_rights, writers_ptr),
	OFF(moreram_rights, nreaders),
	OFF(moreram_rights, readers_cap),
	OFF(moreram_rights, readers_ptr),
	OFF(moreram_rights, reserved),
	SIZE(moreram_proc_info),
	OFF(moreram_proc_info, pid),
	OFF(moreram_proc_info, reserved0),
	OFF(moreram_proc_info, vram),
	OFF(moreram_proc_info, system),
	OFF(moreram_proc_info, reserved),
	SIZE(moreram_reserve),
	OFF(moreram_reserve, size),
	OFF(moreram_reserve, bank),
	OFF(moreram_reserve, flags),
	OFF(moreram_reserve, reserved),
	SIZE(moreram_scavenge),
	OFF(moreram_scavenge, vram),
	OFF(moreram_scavenge, system),
	OFF(moreram_scavenge, reserved),
	SIZE(moreram_notify),
	OFF(moreram_notify, signal),
	OFF(moreram_notify, reserved0),
	OFF(moreram_notify, reserved),
	{ "moreram_event", sizeof(struct moreram_event) },
	{ "moreram_event.type", offsetof(struct moreram_event, type) },
	{ "moreram_event.bank", offsetof(struct moreram_event, bank) },
	{ "moreram_event.bytes", offsetof(struct moreram_event, bytes) },
	{ "moreram_event.deadline_ns", offsetof(struct moreram_event, deadline_ns) },
	{ "moreram_event.reserved", offsetof(struct moreram_event, reserved) },
	SIZE(moreram_procs),
	OFF(moreram_procs, count),
	OFF(moreram_procs, capacity),
	OFF(moreram_procs, entry_size),
	OFF(moreram_procs, reserved0),
	OFF(moreram_procs, procs_ptr),
	OFF(moreram_procs, reserved),
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
	CONST(MORERAM_RESERVE_SYSTEM),
	CONST(MORERAM_EVENT_SCAVENGE),
	CONST(MORERAM_IOC_RESERVE),
	CONST(MORERAM_IOC_SCAVENGE),
	CONST(MORERAM_IOC_NOTIFY),

	CONST(MORERAM_SHARE_NAMED),
	CONST(MORERAM_CTL_GRANT_WRITE),
	CONST(MORERAM_CTL_REVOKE_WRITE),
	CONST(MORERAM_CTL_GIVE),
	CONST(MORERAM_RIGHT_READ),
	CONST(MORERAM_RIGHT_WRITE),
	CONST(MORERAM_RIGHT_OWNER),
	CONST(MORERAM_RIGHTS_MIXED),
	CONST(MORERAM_PROC_INFO_SIZE_V1),
	CONST(MORERAM_IOC_SHARE),
	CONST(MORERAM_IOC_IMPORT),
	CONST(MORERAM_IOC_CONTROL),
	CONST(MORERAM_IOC_RIGHTS),
	CONST(MORERAM_IOC_PROCS),

	{ NULL, 0 },
};
