// SPDX-License-Identifier: GPL-2.0
/*
 * malloc/free pairs of small sizes, single thread, then 4 threads: run it with and without
 * LD_PRELOAD=libmoreram-preload.so and compare. Prints nanoseconds per pair.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PAIRS 20000000L

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *loop(void *arg)
{
	size_t max = (size_t)arg;
	void *keep[16] = { 0 };

	for (long i = 0; i < PAIRS; i++) {
		size_t size = 16 + (i * 7919) % max;
		void *p = malloc(size);

		*(volatile char *)p = 1;
		free(keep[i & 15]);
		keep[i & 15] = p;
	}
	for (int i = 0; i < 16; i++)
		free(keep[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	size_t max = argc > 1 ? strtoul(argv[1], NULL, 0) : 512;
	pthread_t t[4];
	double t0 = now();

	loop((void *)max);
	double one = (now() - t0) * 1e9 / PAIRS;
	t0 = now();
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, loop, (void *)max);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	double four = (now() - t0) * 1e9 / (4 * PAIRS);
	printf("sizes 16..%zu: %.2f ns/pair (1 thread), %.2f ns/pair (4 threads)\n", max + 16, one, four);
	return 0;
}
