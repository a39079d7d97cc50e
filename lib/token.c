/* token.c - a merchant's API token shared by its clients (token.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

struct token_cache {
	pthread_mutex_t lock;
	char *token;      /* owned; zeroed before free */
	time_t renew_at;
};

struct token_cache *token_cache_new(void)
{
	struct token_cache *tc = calloc(1, sizeof(*tc));
	if (tc)
		pthread_mutex_init(&tc->lock, NULL);
	return tc;
}

/* With the lock held. */
static void forget(struct token_cache *tc)
{
	if (tc->token) {
		explicit_bzero(tc->token, strlen(tc->token));
		free(tc->token);
	}
	tc->token = NULL;
	tc->renew_at = 0;
}

void token_cache_free(struct token_cache *tc)
{
	if (!tc)
		return;
	forget(tc);
	pthread_mutex_destroy(&tc->lock);
	free(tc);
}

char *token_cache_get(struct token_cache *tc, time_t now, time_t *renew_at)
{
	char *copy = NULL;
	if (!tc)
		return NULL;
	pthread_mutex_lock(&tc->lock);
	if (tc->token && (tc->renew_at == 0 || now < tc->renew_at)) {
		copy = strdup(tc->token);
		*renew_at = tc->renew_at;
	}
	pthread_mutex_unlock(&tc->lock);
	return copy;
}

void token_cache_put(struct token_cache *tc, const char *token, time_t renew_at)
{
	if (!tc)
		return;
	char *copy = strdup(token);
	pthread_mutex_lock(&tc->lock);
	forget(tc);
	tc->token = copy;
	tc->renew_at = copy ? renew_at : 0;
	pthread_mutex_unlock(&tc->lock);
}

void token_cache_drop(struct token_cache *tc, const char *token)
{
	if (!tc || !token)
		return;
	pthread_mutex_lock(&tc->lock);
	if (tc->token && strcmp(tc->token, token) == 0)
		forget(tc);
	pthread_mutex_unlock(&tc->lock);
}
