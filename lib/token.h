/* token.h - a merchant's API token, shared by every client of that shop until it is due
 * for renewal, so that its jobs authenticate once rather than once each. */
#ifndef KLEEP_TOKEN_H
#define KLEEP_TOKEN_H

#include <time.h>

/* Thread-safe: one lock guards the token; copies are handed out, never the held one. */
struct token_cache;

/* NULL on out-of-memory. */
struct token_cache *token_cache_new(void);
/* Zeroes the token held.  tc may be NULL. */
void token_cache_free(struct token_cache *tc);

/*
 * A copy of the token held (caller zeroes and frees it) with its renewal
 * time in *renew_at (0: kept until refused), or NULL when none is held, it
 * is due at now, or tc is NULL.
 */
char *token_cache_get(struct token_cache *tc, time_t now, time_t *renew_at);
/* Hold a copy of token (replacing any), good until renew_at (0: until refused). */
void token_cache_put(struct token_cache *tc, const char *token, time_t renew_at);
/* The shop refused token: forget it, unless another client already replaced it. */
void token_cache_drop(struct token_cache *tc, const char *token);

#endif
