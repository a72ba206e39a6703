// SPDX-License-Identifier: GPL-2.0
/*
 * The moreram module's C part: only what the 7.3 Rust abstractions cannot do
 * yet. Each function names the abstraction it stands in for; the Rust side
 * declares them in mod.rs.
 */
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_print.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/pseudo_fs.h>
#include <linux/mount.h>
#include <linux/device.h>
#include <linux/fault-inject.h>
#include <linux/kstrtox.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pid.h>
#include <linux/sysfs.h>

#include "shim.h"

/* kernel::pci::Device has no accessor for the device's bus location. */
void moreram_pci_location(struct pci_dev *pdev, u32 *domain, u8 *bus, u8 *devfn)
{
	*domain = pci_domain_nr(pdev->bus);
	*bus = pdev->bus->number;
	*devfn = pdev->devfn;
}

/* kernel::pci::Device has resource_start/len but no resource flags. */
unsigned long moreram_pci_bar_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

/* kernel::page::Page has no page frame number accessor (page_to_pfn is a macro). */
unsigned long moreram_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

/* There is no struct pid abstraction; get_pid() is inline. */
struct pid *moreram_get_pid(struct pid *pid)
{
	return get_pid(pid);
}

/*
 * current->mm. kernel::task::CurrentTask::mm() reads the field through
 * bindgen's task_struct, which with this kernel's configuration puts mm 48
 * bytes before where C does (936 against 984: the two disagree from some field
 * between sched_class and policy on), so it returns another field.
 */
struct mm_struct *moreram_current_mm(void)
{
	return current->mm;
}

/* --- the address space every open of /dev/moreram maps through ------------
 *
 * There is no pseudo-filesystem or anonymous-inode abstraction in 7.3. As DRM
 * does for its devices, one inode of a private pseudo filesystem gives all
 * opens (through any device node) one address space, so that zapping an
 * allocation's offsets reaches every mapping of it.
 */

static struct vfsmount *moreram_fs_mnt;
static int moreram_fs_count;

static int moreram_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, 0x6d726d21) ? 0 : -ENOMEM;
}

/*
 * No .owner: the mount would pin the module for as long as it lives, and it
 * lives until the tier goes at module exit. It is internal (never registered,
 * so nobody can mount it by name), and its last mntput at module exit tears the
 * superblock down synchronously, before the module's memory goes.
 */
static struct file_system_type moreram_fs_type = {
	.name = "moreram",
	.init_fs_context = moreram_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

struct inode *moreram_inode_new(void)
{
	struct inode *inode;
	int err = simple_pin_fs(&moreram_fs_type, &moreram_fs_mnt, &moreram_fs_count);

	if (err < 0)
		return ERR_PTR(err);
	inode = alloc_anon_inode(moreram_fs_mnt->mnt_sb);
	if (IS_ERR(inode))
		simple_release_fs(&moreram_fs_mnt, &moreram_fs_count);
	return inode;
}

void moreram_inode_free(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&moreram_fs_mnt, &moreram_fs_count);
}

/* --- sysfs: a bank's numbers and knobs under the PCI device's moreram/ -----
 *
 * There are no sysfs attribute abstractions in 7.3. Every attribute has the
 * same show and store; Rust knows the attributes by name.
 */

static ssize_t moreram_attr_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u64 v;
	int err = moreram_bank_attr_get(dev, attr->attr.name, &v);

	return err ? err : sysfs_emit(buf, "%llu\n", v);
}

static ssize_t moreram_attr_store(struct device *dev, struct device_attribute *attr,
				  const char *buf, size_t count)
{
	u64 v;
	int err = kstrtou64(buf, 0, &v);

	if (!err)
		err = moreram_bank_attr_set(dev, attr->attr.name, v);
	return err ? err : count;
}

#define BANK_ATTR_RO(_name) \
	static struct device_attribute dev_attr_##_name = __ATTR(_name, 0444, moreram_attr_show, NULL)
#define BANK_ATTR_RW(_name) \
	static struct device_attribute dev_attr_##_name = \
		__ATTR(_name, 0644, moreram_attr_show, moreram_attr_store)

BANK_ATTR_RO(bank);
BANK_ATTR_RO(size);
BANK_ATTR_RO(free);
BANK_ATTR_RO(largest_free);
BANK_ATTR_RO(pooled);
BANK_ATTR_RO(processes);
BANK_ATTR_RW(low_watermark);
BANK_ATTR_RW(min_watermark);
BANK_ATTR_RW(scavenge_deadline_ms);

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
 * kernel::drm builds drm_driver and its file_operations as constants with
 * show_fdinfo = None, so a driver using it cannot report fdinfo on
 * /dev/dri/card*. A show_fdinfo hook in the drm::Driver trait would move this
 * back to Rust. moreram has no DRM ioctls or GEM objects: the device exists to
 * be found, and to say in fdinfo how much of its bank the opener owns.
 */

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

/* --- fault injection -------------------------------------------------------
 *
 * There is no fault-injection abstraction (DECLARE_FAULT_ATTR, should_fail).
 * The attributes' debugfs files go in the moreram/ directory that the Rust
 * debugfs code made, and go with it. fail_alloc: allocations (ALLOC, IMPORT's
 * bookkeeping); fail_release: taking back the kept part of a buddy block when
 * part of an allocation goes back to its bank.
 */

static DECLARE_FAULT_ATTR(moreram_fail_alloc);
static DECLARE_FAULT_ATTR(moreram_fail_release);

void moreram_fail_alloc_debugfs(const char *dir)
{
	struct dentry *d = debugfs_lookup(dir, NULL);

	if (!d)
		return;
	fault_create_debugfs_attr("fail_alloc", d, &moreram_fail_alloc);
	fault_create_debugfs_attr("fail_release", d, &moreram_fail_release);
	dput(d);
}

bool moreram_should_fail_alloc(u64 size)
{
	return should_fail(&moreram_fail_alloc, size);
}

bool moreram_should_fail_release(u64 size)
{
	return should_fail(&moreram_fail_release, size);
}
