// SPDX-License-Identifier: GPL-2.0
/*
 * preload-fill: allocates MIB MiB with malloc in blocks of BLOCK_MIB MiB (default 1), writes
 * a pattern over each, then checks them all. An ordinary program: it knows nothing of moreram.
 *
 *   preload-fill MIB [BLOCK_MIB]         keep the blocks, say "filled", wait for end of input,
 *                                        check them again, free them
 *   preload-fill MIB [BLOCK_MIB] --free  free the blocks, say "freed", wait for end of input
 *
 * Waiting for end of input gives the caller the moment to look at the process (its tier use,
 * its pool). Exits 1 on a wrong byte or a failed allocation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t block = 1 << 20;

static uint64_t word(size_t k, size_t i)
{
	return (k + 1) * 0x9E3779B97F4A7C15ULL ^ i;
}

static void check(uint64_t **b, long n)
{
	for (long k = 0; k < n; k++)
		for (size_t i = 0; i < block / 8; i++)
			if (b[k][i] != word(k, i)) {
				fprintf(stderr, "preload-fill: block %ld word %zu: %llx\n", k, i,
					(unsigned long long)b[k][i]);
				exit(1);
			}
}

/* Waits until standard input ends. */
static void wait_input(void)
{
	char buf[64];

	while (read(0, buf, sizeof(buf)) > 0)
		;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 0, per = 1, n;
	int do_free = argc > 1 && !strcmp(argv[argc - 1], "--free");
	uint64_t **b;

	if (argc > 2 + do_free)
		per = atol(argv[2]);
	if (mib < 1 || per < 1 || mib % per || argc > 3 + do_free) {
		fprintf(stderr, "usage: preload-fill MIB [BLOCK_MIB] [--free]\n");
		return 64;
	}
	block = (size_t)per << 20;
	n = mib / per;
	b = calloc(n, sizeof(*b));
	for (long k = 0; b && k < n; k++) {
		b[k] = malloc(block);
		if (!b[k]) {
			fprintf(stderr, "preload-fill: malloc failed at block %ld\n", k);
			return 1;
		}
		for (size_t i = 0; i < block / 8; i++)
			b[k][i] = word(k, i);
	}
	if (!b)
		return 1;
	check(b, n);
	if (do_free) {
		for (long k = 0; k < n; k++)
			free(b[k]);
		printf("freed %ld MiB\n", mib);
		fflush(stdout);
		wait_input();
	} else {
		printf("filled %ld MiB\n", mib);
		fflush(stdout);
		wait_input();
		check(b, n);
		for (long k = 0; k < n; k++)
			free(b[k]);
		printf("checked %ld MiB\n", mib);
	}
	free(b);
	return 0;
}
