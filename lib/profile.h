/* profile.h - the API profile: everything WSHOP-specific, read from JSON (DESIGN.md §3). */
#ifndef KLEEP_PROFILE_H
#define KLEEP_PROFILE_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "stream.h"

struct profile_stream {
	const char *path;      /* endpoint under base_path, e.g. "/orders/get" */
	const char *records;   /* dotted path of the record array in the reply, e.g. "data" */
	bool incremental;      /* accepts the date filter */
	bool sorted_by_id;     /* records come by id, not by modification time */
	json_t *personal;      /* array of {"field","action":"drop"|"hash","key"}; borrowed */
};

struct profile {
	json_t *root;          /* the whole profile, owned; every const char * below points into it */
	const char *name;
	const char *base_path; /* "/api/v1" */
	const char *method;    /* "POST" or "GET" */
	long connect_timeout_s, request_timeout_s;
	const char *auth_path, *auth_user_param, *auth_password_param;
	json_t *token_paths;   /* array of dotted paths, tried in order */
	const char *success_field, *error_message_path;
	const char *page_param, *limit_param;
	int first_page, limit, max_pages;
	const char *date_param, *date_format; /* strftime format, shop-local */
	int retry_attempts;    /* per request, default 8 */
	long retry_base_ms, retry_cap_ms; /* backoff 500 ms doubling to 30 s */
	long retry_after_max_s;/* give up when Retry-After asks for more, default 300 */
	json_t *fields;        /* default-profile field name -> this API's name; borrowed */
	struct profile_stream streams[STREAM_API_COUNT];
};

/*
 * Load the profile name_or_path ("default", "alt", or a path to a .json
 * file) from dir, apply the merchant's overrides (dotted keys, JSON values),
 * and validate.  On failure returns -EINVAL and writes each problem to errs as
 * "FILE:LINE: message" (the override's line, or the profile file's).  The
 * caller owns *out (profile_free).
 */
int profile_load(const char *dir, const char *name_or_path, const struct profile_override *ov,
		 size_t n_ov, struct profile **out, FILE *errs);
void profile_free(struct profile *p);

/* This API's name for a field the default profile calls name (e.g. "date_upd"). */
const char *profile_field(const struct profile *p, const char *name);

/* obj's member at a dotted path ("data.items"), or NULL; borrowed reference. */
json_t *profile_path_get(json_t *obj, const char *dotted);

#endif
