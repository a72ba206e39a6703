// SPDX-License-Identifier: GPL-2.0
/*
 * preload-threads: threads share a table of heap blocks and, for a fixed number of operations
 * each, take a block out of a random slot, check every byte of it, and free it, realloc it or
 * put it back; an empty slot gets a new block (malloc, calloc or an aligned allocation). So
 * blocks are freed and reallocated by other threads than the one that made them, across the
 * sizes that the preload leaves to the C library and those it puts in the tier.
 *
 *   preload-threads [THREADS [OPS [MAX_SIZE]]]    (8 threads, 4000 operations, 256 KiB)
 *
 * The run is the same every time (each thread draws from its own seeded generator); only the
 * interleaving varies. Prints what it did; exits 1 at the first wrong byte, size or alignment.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 512

/* A block starts with this header; the words after it are a pattern of its seed. */
struct blk {
	uint64_t seed;
	size_t size;	/* bytes asked for, header included */
	int thread;	/* the thread that allocated it */
	int zeroed;	/* calloc: the pattern was written over zeros it checked */
};

static _Atomic(struct blk *) slot[SLOTS];
static int threads = 8;
static long ops = 4000;
static size_t max_size = 256 << 10;

struct counts {
	long alloc, calloc, aligned, realloc, free, free_other, checked_bytes;
};

static void die(const char *what, const struct blk *b, size_t at)
{
	fprintf(stderr, "preload-threads: %s: block %p (seed %llx, size %zu, thread %d), byte %zu\n",
		what, (const void *)b, (unsigned long long)b->seed, b->size, b->thread, at);
	exit(1);
}

static uint64_t next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t word(uint64_t seed, size_t i)
{
	return seed ^ (i * 0x9E3779B97F4A7C15ULL);
}

/* Sizes: most small (the C library's under the preload), some large (the tier's). */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = next(s);

	switch (r % 8) {
	case 0: case 1: case 2: case 3:
		return sizeof(struct blk) + (r >> 8) % 512;
	case 4: case 5: case 6:
		return sizeof(struct blk) + (r >> 8) % 16384;
	default:
		return sizeof(struct blk) + (r >> 8) % max_size;
	}
}

static void fill(struct blk *b, uint64_t seed, size_t size, int thread)
{
	uint64_t *w = (uint64_t *)(b + 1);
	size_t n = (size - sizeof(*b)) / 8;

	b->seed = seed;
	b->size = size;
	b->thread = thread;
	b->zeroed = 0;
	for (size_t i = 0; i < n; i++)
		w[i] = word(seed, i);
	for (size_t i = n * 8; i < size - sizeof(*b); i++)
		((unsigned char *)w)[i] = (unsigned char)seed;
}

/* The byte at offset `at` after the header of a block filled with `seed` to `size` bytes. */
static unsigned char expected(uint64_t seed, size_t size, size_t at)
{
	size_t n = (size - sizeof(struct blk)) / 8;

	if (at < n * 8)
		return (unsigned char)(word(seed, at / 8) >> (at % 8 * 8));
	return (unsigned char)seed;
}

/*
 * Checks the first `upto` bytes (header included) of the pattern the block's header names, in
 * a block that has room for `room` bytes.
 */
static void check(const struct blk *b, size_t upto, size_t room, struct counts *c)
{
	const uint64_t *w = (const uint64_t *)(b + 1);
	size_t bytes = upto - sizeof(*b);
	size_t n = (b->size - sizeof(*b)) / 8;

	if (n > bytes / 8)
		n = bytes / 8;
	if (malloc_usable_size((void *)b) < room)
		die("usable size below the size asked for", b, malloc_usable_size((void *)b));
	for (size_t i = 0; i < n; i++)
		if (w[i] != word(b->seed, i))
			die("pattern", b, sizeof(*b) + i * 8);
	for (size_t i = n * 8; i < bytes; i++)
		if (((const unsigned char *)w)[i] != expected(b->seed, b->size, i))
			die("pattern", b, sizeof(*b) + i);
	c->checked_bytes += upto;
}

static struct blk *make(uint64_t *s, int self, struct counts *c)
{
	size_t size = pick_size(s);
	uint64_t r = next(s);
	struct blk *b;

	if (r % 6 == 0) {
		b = calloc(1, size);
		if (!b) {
			fprintf(stderr, "preload-threads: calloc(%zu) failed\n", size);
			exit(1);
		}
		for (size_t i = 0; i < size; i++)
			if (((unsigned char *)b)[i])
				die("calloc: not zeroed", b, i);
		c->calloc++;
	} else if (r % 6 == 1) {
		size_t align = (size_t)64 << (r >> 8) % 7; /* 64 .. 4096 */
		void *p = NULL;

		switch ((r >> 16) % 3) {
		case 0:
			if (posix_memalign(&p, align, size))
				p = NULL;
			break;
		case 1:
			p = aligned_alloc(align, (size + align - 1) / align * align);
			break;
		default:
			p = memalign(align, size);
		}
		if (!p) {
			fprintf(stderr, "preload-threads: aligned allocation (%zu, %zu) failed\n", align, size);
			exit(1);
		}
		if ((uintptr_t)p % align) {
			fprintf(stderr, "preload-threads: %p is not aligned to %zu\n", p, align);
			exit(1);
		}
		b = p;
		c->aligned++;
	} else {
		b = malloc(size);
		if (!b) {
			fprintf(stderr, "preload-threads: malloc(%zu) failed\n", size);
			exit(1);
		}
		c->alloc++;
	}
	fill(b, next(s), size, self);
	return b;
}

static void drop(struct blk *b, int self, struct counts *c)
{
	c->free++;
	if (b->thread != self)
		c->free_other++;
	free(b);
}

struct worker {
	pthread_t t;
	int self;
	struct counts c;
};

static void *run(void *arg)
{
	struct worker *me = arg;
	uint64_t s = 0x1234567ULL * (me->self + 1) + 99;
	struct counts *c = &me->c;

	for (long op = 0; op < ops; op++) {
		unsigned i = next(&s) % SLOTS;
		struct blk *b = atomic_exchange(&slot[i], NULL);

		if (!b) {
			b = make(&s, me->self, c);
		} else {
			uint64_t r = next(&s);

			check(b, b->size, b->size, c);
			if (r % 3 == 0) {
				drop(b, me->self, c);
				continue;
			}
			if (r % 3 == 1) {
				size_t old = b->size, size = pick_size(&s);
				struct blk *nb = realloc(b, size);

				if (!nb) {
					fprintf(stderr, "preload-threads: realloc(%zu) failed\n", size);
					exit(1);
				}
				/* The bytes both sizes share are kept. */
				check(nb, old < size ? old : size, size, c);
				fill(nb, next(&s), size, nb->thread);
				b = nb;
				c->realloc++;
			}
		}
		b = atomic_exchange(&slot[i], b);
		if (b) {
			check(b, b->size, b->size, c);
			drop(b, me->self, c);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	struct counts all = { 0 };

	if (argc > 1)
		threads = atoi(argv[1]);
	if (argc > 2)
		ops = atol(argv[2]);
	if (argc > 3)
		max_size = strtoul(argv[3], NULL, 0);
	if (threads < 1 || ops < 1 || max_size < 64) {
		fprintf(stderr, "usage: preload-threads [THREADS [OPS [MAX_SIZE]]]\n");
		return 64;
	}
	w = calloc(threads, sizeof(*w));
	for (int i = 0; i < threads; i++) {
		w[i].self = i;
		if (pthread_create(&w[i].t, NULL, run, &w[i])) {
			fprintf(stderr, "preload-threads: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].t, NULL);
		all.alloc += w[i].c.alloc;
		all.calloc += w[i].c.calloc;
		all.aligned += w[i].c.aligned;
		all.realloc += w[i].c.realloc;
		all.free += w[i].c.free;
		all.free_other += w[i].c.free_other;
		all.checked_bytes += w[i].c.checked_bytes;
	}
	for (int i = 0; i < SLOTS; i++) {
		struct blk *b = atomic_exchange(&slot[i], NULL);

		if (b) {
			check(b, b->size, b->size, &all);
			drop(b, -1, &all);
		}
	}
	free(w);
	printf("preload-threads: %d threads, %ld operations: %ld malloc, %ld calloc, %ld aligned, %ld realloc, %ld free (%ld by another thread), %ld MiB checked\n",
	       threads, threads * ops, all.alloc, all.calloc, all.aligned, all.realloc, all.free,
	       all.free_other, all.checked_bytes >> 20);
	return 0;
}
