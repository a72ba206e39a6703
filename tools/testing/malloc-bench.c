// SPDX-License-Identifier: GPL-2.0
/*
 * malloc/free pairs of sizes in [MIN, MAX), one thread, then THREADS threads at once (each
 * making PAIRS pairs, sixteen blocks live): run it with and without
 * LD_PRELOAD=libmoreram-preload.so and compare (`make bench` does, in the VM).
 *
 *   malloc-bench [MIN [MAX [PAIRS [THREADS]]]]     (16 528 20000000 4)
 *
 * Prints nanoseconds per pair: "sizes MIN..MAX: X ns/pair (1 thread), Y ns/pair (N threads)".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t min = 16, max = 528;
static long pairs = 20000000L;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *loop(void *arg)
{
	void *keep[16] = { 0 };

	(void)arg;
	for (long i = 0; i < pairs; i++) {
		size_t size = min + (i * 7919) % (max - min);
		void *p = malloc(size);

		if (!p) {
			fprintf(stderr, "malloc-bench: malloc(%zu) failed\n", size);
			exit(1);
		}
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
	int threads = 4;
	pthread_t *t;
	double t0, one, many;

	if (argc > 1)
		min = strtoul(argv[1], NULL, 0);
	if (argc > 2)
		max = strtoul(argv[2], NULL, 0);
	if (argc > 3)
		pairs = atol(argv[3]);
	if (argc > 4)
		threads = atoi(argv[4]);
	if (min < 1 || max <= min || pairs < 16 || threads < 1) {
		fprintf(stderr, "usage: malloc-bench [MIN [MAX [PAIRS [THREADS]]]]\n");
		return 64;
	}
	t = calloc(threads, sizeof(*t));
	t0 = now();
	loop(NULL);
	one = (now() - t0) * 1e9 / pairs;
	t0 = now();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, loop, NULL)) {
			fprintf(stderr, "malloc-bench: pthread_create failed\n");
			return 1;
		}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	many = (now() - t0) * 1e9 / ((double)threads * pairs);
	printf("sizes %zu..%zu: %.2f ns/pair (1 thread), %.2f ns/pair (%d threads)\n", min, max, one,
	       many, threads);
	free(t);
	return 0;
}
