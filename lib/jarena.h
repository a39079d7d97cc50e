/* jarena.h - jansson's values for one reply from a bump arena instead of malloc.
 *
 * A reply page of 500 orders is some 100,000 jansson values, strings and
 * object slots, each one malloc, and freeing the page as many frees: a fifth
 * of a sync's CPU.  Once jarena_install has run (in main, before any thread),
 * jansson takes memory from the calling thread's entered arena, if any, and
 * from malloc otherwise.  A free of arena memory only counts down the values
 * still alive in it; when none is left, the arena starts again from its first
 * byte.  A value that is never freed keeps its arena from being reused, and
 * a full arena hands out malloc memory: both cost memory, never correctness.
 *
 * Nothing but jansson's own constructors may run while an arena is entered:
 * json_dumps's text, for one, would come from it and be given to free().
 * Under AddressSanitizer jarena_install does nothing, so that the sanitizer
 * sees every value's lifetime.
 */
#ifndef KLEEP_JARENA_H
#define KLEEP_JARENA_H

#include <stdbool.h>
#include <stddef.h>

struct jarena;

/* jansson's allocator becomes the arenas'.  false when it could not be set up
 * (or under AddressSanitizer): jansson keeps malloc, and arenas are NULL. */
bool jarena_install(void);

/* An arena, or NULL (none installed, or all in use): NULL is a valid arena
 * for the calls below, and means malloc. */
struct jarena *jarena_new(void);

/* Give a back; its values must all have been freed, else it stays reserved. */
void jarena_free(struct jarena *a);

/* Make a the calling thread's arena; returns the one it replaces, for jarena_leave. */
struct jarena *jarena_enter(struct jarena *a);
void jarena_leave(struct jarena *previous);

/* Bytes handed out since the arena last started again (tests, benchmarks). */
size_t jarena_used(const struct jarena *a);

#endif
