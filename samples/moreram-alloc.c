// SPDX-License-Identifier: GPL-2.0
/*
 * moreram-alloc: allocate from the moreram tier, map, fill, verify, and say
 * which tier the memory came from.
 *
 * Build: cc -Iinclude/uapi -o moreram-alloc samples/moreram-alloc.c
 * Usage: moreram-alloc [SIZE_IN_KIB]   (default 1024)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/moreram.h>

int main(int argc, char **argv)
{
	struct moreram_alloc req = { 0 };
	struct moreram_handle fr = { 0 };
	uint64_t *p;
	size_t words;
	int fd;

	req.size = (argc > 1 ? strtoull(argv[1], NULL, 0) : 1024) * 1024;
	fd = open("/dev/moreram", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("/dev/moreram");
		return 1;
	}
	/* No placement flag: VRAM if there is room, else system pages. */
	if (ioctl(fd, MORERAM_IOC_ALLOC, &req)) {
		perror("MORERAM_IOC_ALLOC");
		return 1;
	}
	p = mmap(NULL, req.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, req.mmap_offset);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	words = req.size / sizeof(*p);
	for (size_t i = 0; i < words; i++) {
		if (p[i]) {
			fprintf(stderr, "word %zu is not zero\n", i);
			return 1;
		}
		p[i] = i * 0x9e3779b97f4a7c15ULL;
	}
	for (size_t i = 0; i < words; i++) {
		if (p[i] != i * 0x9e3779b97f4a7c15ULL) {
			fprintf(stderr, "word %zu lost\n", i);
			return 1;
		}
	}
	if (req.tier == MORERAM_TIER_VRAM)
		printf("%llu KiB in VRAM, bank %u: written and verified\n",
		       (unsigned long long)req.size / 1024, req.bank_used);
	else
		printf("%llu KiB in system pages (VRAM full or absent): written and verified\n",
		       (unsigned long long)req.size / 1024);
	munmap(p, req.size);
	fr.handle = req.handle;
	if (ioctl(fd, MORERAM_IOC_FREE, &fr)) {
		perror("MORERAM_IOC_FREE");
		return 1;
	}
	close(fd);
	return 0;
}
