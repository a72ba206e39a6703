// SPDX-License-Identifier: GPL-2.0
/*
 * moreram-banks: list the banks of the moreram memory tier.
 *
 * Build: cc -Iinclude/uapi -o moreram-banks samples/moreram-banks.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/moreram.h>

static const char *human(__u64 bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int u = 0;

	while (bytes >= 1024 && !(bytes % 1024) && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)bytes, unit[u]);
	return buf;
}

int main(void)
{
	struct moreram_banks req = { 0 };
	struct moreram_bank_info *banks;
	char size[32], free_[32];
	int fd;

	fd = open("/dev/moreram", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("/dev/moreram");
		return 1;
	}
	/* First call: how many banks; second: fetch them. */
	if (ioctl(fd, MORERAM_IOC_BANKS, &req)) {
		perror("MORERAM_IOC_BANKS");
		return 1;
	}
	banks = calloc(req.count ? req.count : 1, sizeof(*banks));
	if (!banks)
		return 1;
	req.capacity = req.count;
	req.entry_size = sizeof(*banks);
	req.banks_ptr = (__u64)(unsigned long)banks;
	if (ioctl(fd, MORERAM_IOC_BANKS, &req)) {
		perror("MORERAM_IOC_BANKS");
		return 1;
	}
	if (req.count > req.capacity)
		req.count = req.capacity; /* a device was bound in between */

	printf("%u bank%s\n", req.count, req.count == 1 ? "" : "s");
	printf("%-5s %-12s %-9s %-4s %-18s %10s %10s  %s\n", "bank", "pci", "id", "bar",
	       "address", "size", "free", "flags");
	for (__u32 i = 0; i < req.count; i++) {
		const struct moreram_bank_info *b = &banks[i];

		printf("%-5u %04x:%02x:%02x.%u %04x:%04x %-4u %#-18llx %10s %10s  %s%s\n",
		       b->index, b->pci_domain, b->pci_bus, b->pci_dev, b->pci_func, b->vendor,
		       b->device, b->bar, (unsigned long long)b->bar_start,
		       human(b->size, size, sizeof(size)), human(b->free, free_, sizeof(free_)),
		       b->flags & MORERAM_BANK_PREFETCHABLE ? "prefetchable " : "",
		       b->flags & MORERAM_BANK_64BIT ? "64-bit" : "");
	}
	free(banks);
	close(fd);
	return 0;
}
