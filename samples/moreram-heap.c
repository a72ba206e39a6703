// SPDX-License-Identifier: GPL-2.0
/*
 * libmoreram: allocate bytes, a memory list and blocks from the tier. Built through
 * pkg-config:  cc moreram-heap.c $(pkg-config --cflags --libs moreram)
 * Without /dev/moreram it says so and exits 0 (the library reports ENOENT or ENODEV).
 */
#include <errno.h>
#include <moreram/moreram.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	int r = moreram_init();
	struct moreram_stats st;
	struct moreram_list *list;
	unsigned int bank = 0;
	char *p, *b;

	if (r == -ENOENT || r == -ENODEV || r == -ENXIO) {
		printf("no tier here: %s\n", strerror(-r));
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "moreram_init: %s\n", strerror(-r));
		return 1;
	}
	p = moreram_alloc(100, MORERAM_MEM_ZERO);
	if (!p) {
		perror("moreram_alloc");
		return 1;
	}
	strcpy(p, "hello from the tier");
	r = moreram_where(p, &bank);
	printf("%s: %s (bank %u), %zu usable\n", p,
	       r == MORERAM_IN_VRAM ? "vram" : "system", bank, moreram_usable_size(p));
	moreram_free(p);

	list = moreram_list_create(0);
	if (!list) {
		perror("moreram_list_create");
		return 1;
	}
	for (int i = 0; i < 1000; i++)
		if (!moreram_list_alloc(list, 64 + i)) {
			perror("moreram_list_alloc");
			return 1;
		}
	moreram_list_destroy(list);

	b = moreram_alloc_blocks(1 << 20, 0);
	if (!b) {
		perror("moreram_alloc_blocks");
		return 1;
	}
	memset(b, 0x5a, 1 << 20);
	if (moreram_stats(&st, sizeof(st)) == 0)
		printf("held: %llu vram, %llu system, %llu chunks\n",
		       (unsigned long long)st.vram_held, (unsigned long long)st.system_held,
		       (unsigned long long)st.chunks);
	moreram_free(b);
	printf("scavenged %lld bytes\n", (long long)moreram_scavenge());
	return 0;
}
