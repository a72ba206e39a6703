/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * libmoreram: allocate from the moreram tier (GPU memory seen through a PCI BAR, or system
 * pages), after the 3DO Portfolio OS's memory calls. Link with `pkg-config --libs moreram`.
 *
 * Errors: every failing call sets errno to the kernel's error number (or the library's, as
 * documented in Documentation/userspace-api.rst, "libmoreram"). Calls returning a pointer
 * return NULL; calls returning int or int64_t return -errno. Without /dev/moreram every
 * allocation fails with ENOENT (no node) or ENODEV/ENXIO (no module).
 */
#ifndef MORERAM_MORERAM_H
#define MORERAM_MORERAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Memory types (flags). No placement flag: VRAM, else system pages of the tier. */
#define MORERAM_MEM_VRAM	0x1u	/* VRAM only */
#define MORERAM_MEM_SYSTEM	0x2u	/* system pages only */
#define MORERAM_MEM_BANK	0x4u	/* VRAM of the bank in bits 16..23 only */
#define MORERAM_MEM_BANK_N(n)	(MORERAM_MEM_BANK | ((unsigned)(n) << 16))
#define MORERAM_MEM_CONTIGUOUS	0x8u	/* each chunk physically contiguous VRAM */
#define MORERAM_MEM_ZERO	0x10u	/* zero the bytes */

/* moreram_where() */
#define MORERAM_IN_VRAM		1
#define MORERAM_IN_SYSTEM	2

int moreram_init(void);

void *moreram_alloc(size_t size, unsigned int flags);
void *moreram_alloc_aligned(size_t size, size_t align, unsigned int flags);
void moreram_free(void *p);
void *moreram_realloc(void *p, size_t size);
size_t moreram_usable_size(const void *p);
int moreram_where(const void *p, unsigned int *bank);

/* Memory lists: allocations from chunks of the list's own, destroyed whole. */
struct moreram_list;
struct moreram_list *moreram_list_create(unsigned int flags);
void *moreram_list_alloc(struct moreram_list *list, size_t size);
void moreram_list_free(struct moreram_list *list, void *p);
int moreram_list_destroy(struct moreram_list *list);

/* Whole pages of an allocation of their own (2 MiB granules), zeroed; moreram_free() frees. */
void *moreram_alloc_blocks(size_t size, unsigned int flags);

/* Rights on page-aligned ranges of the library's memory (ControlMem). */
int moreram_give(void *p, size_t len, pid_t pid);
int moreram_grant_write(void *p, size_t len, pid_t pid);
int moreram_revoke_write(void *p, size_t len, pid_t pid);	/* pid 0: every writer */
int moreram_share(const void *p, pid_t pid, uint64_t *token);	/* pid 0: any process of the user */
void *moreram_import(uint64_t token, size_t *size);		/* mapped read-only */

/* Scavenging: poll the fd for POLLPRI, then call moreram_handle_events(); or moreram_watch(). */
int moreram_event_fd(void);
int moreram_handle_events(void);
int64_t moreram_scavenge(void);
int moreram_watch(void);

struct moreram_stats {
	uint64_t vram_held;	/* bytes of VRAM chunks the library holds */
	uint64_t system_held;	/* bytes of system-page chunks it holds */
	uint64_t chunks;	/* chunks held */
	uint64_t pool_vram;	/* the kernel's pool for this process */
	uint64_t pool_system;
	uint64_t reserved[3];
};
int moreram_stats(struct moreram_stats *stats, size_t size);

#ifdef __cplusplus
}
#endif
#endif
