/* jarena.c - jansson's values for one reply from a bump arena instead of malloc. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <jansson.h>

#include "jarena.h"

#if defined(__SANITIZE_ADDRESS__)
#define JARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JARENA_OFF 1
#endif
#endif

/*
 * One reserved region, cut into slots: a pointer is arena memory when it lies
 * in the region, and its slot is its arena.  Pages are only backed once
 * touched (MAP_NORESERVE); a page of 500 records needs a few MiB.
 */
#define SLOTS 16
#define SLOT_BYTES ((size_t)64 << 20)
#define KEEP_BYTES ((size_t)4 << 20) /* touched memory kept for the next page or owner */
#define ALIGN 16

struct jarena {
	unsigned char *base;
	size_t used;              /* bump offset, back to 0 at the first allocation with
				   no value alive (arena_malloc): the owner's only */
	size_t high;              /* the most ever touched since the last trim */
	atomic_size_t live;       /* values handed out and not yet freed */
	atomic_bool taken;        /* by an owner, or for good when freed while values lived */
};

static unsigned char *region;
static struct jarena arenas[SLOTS];
static _Thread_local struct jarena *active;

#ifndef JARENA_OFF
static void *arena_malloc(size_t size)
{
	struct jarena *a = active;
	if (!a)
		return malloc(size);
	if (atomic_load_explicit(&a->live, memory_order_acquire) == 0)
		a->used = 0; /* every value from it is gone: start again */
	size_t n = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (n < size || n > SLOT_BYTES - a->used)
		return malloc(size);
	void *p = a->base + a->used;
	a->used += n;
	if (a->used > a->high)
		a->high = a->used;
	atomic_fetch_add_explicit(&a->live, 1, memory_order_relaxed);
	return p;
}

static void arena_free(void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)region;
	if (!p || !region || off >= (uintptr_t)SLOTS * SLOT_BYTES) {
		free(p);
		return;
	}
	atomic_fetch_sub_explicit(&arenas[off / SLOT_BYTES].live, 1, memory_order_release);
}
#endif

bool jarena_install(void)
{
#ifdef JARENA_OFF
	return false;
#else
	if (region)
		return true;
	void *r = mmap(NULL, SLOTS * SLOT_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return false;
	region = r;
	for (int i = 0; i < SLOTS; i++)
		arenas[i].base = region + (size_t)i * SLOT_BYTES;
	json_set_alloc_funcs(arena_malloc, arena_free);
	return true;
#endif
}

/* A page far larger than the rest: keep its memory no longer than it lived. */
static void trim(struct jarena *a)
{
	if (a->high > KEEP_BYTES) {
		madvise(a->base + KEEP_BYTES, a->high - KEEP_BYTES, MADV_DONTNEED);
		a->high = KEEP_BYTES;
	}
}

struct jarena *jarena_new(void)
{
	if (!region)
		return NULL;
	for (int i = 0; i < SLOTS; i++) {
		bool no = false;
		if (atomic_compare_exchange_strong(&arenas[i].taken, &no, true))
			return &arenas[i];
	}
	return NULL;
}

void jarena_free(struct jarena *a)
{
	if (!a)
		return;
	if (atomic_load(&a->live) != 0)
		return; /* a value outlives it: the slot stays taken */
	/* The next owner (most often the next job) finds up to KEEP_BYTES
	 * already backed, as malloc would have kept them: no page faults. */
	trim(a);
	atomic_store(&a->taken, false);
}

struct jarena *jarena_enter(struct jarena *a)
{
	struct jarena *previous = active;
	if (a && atomic_load(&a->live) == 0)
		trim(a);
	active = a;
	return previous;
}

void jarena_leave(struct jarena *previous)
{
	active = previous;
}

size_t jarena_used(const struct jarena *a)
{
	return a && atomic_load(&a->live) ? a->used : 0;
}
