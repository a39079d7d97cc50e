/* profile.c - load an API profile from JSON, apply a merchant's overrides, validate it. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

#define PROFILE_LIMIT_MAX 500 /* DOMAIN.md §1: never ask for more */

/* The shipped profiles (lib/profiles) as built into the binary (build/gen/profiles.c). */
extern const struct {
	const char *name;
	const char *json;
} profiles_embedded[];

json_t *profile_path_get(json_t *obj, const char *dotted)
{
	char key[128];
	const char *p = dotted;

	while (obj && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(key) || !json_is_object(obj))
			return NULL;
		memcpy(key, p, n);
		key[n] = 0;
		obj = json_object_get(obj, key);
		p = dot ? dot + 1 : p + n;
	}
	return obj;
}

const char *profile_field(const struct profile *p, const char *name)
{
	const char *v = json_string_value(json_object_get(p->fields, name));
	return v ? v : name;
}

/* Set root's member at a dotted path to value (stolen), creating objects on the way. */
static int path_set(json_t *root, const char *dotted, json_t *value)
{
	char *copy = strdup(dotted), *save = NULL;
	json_t *obj = root;
	int r = -EINVAL;

	if (!copy)
		goto out;
	char *part = strtok_r(copy, ".", &save);
	while (part) {
		char *next = strtok_r(NULL, ".", &save);
		if (!json_is_object(obj))
			goto out;
		if (!next) {
			r = json_object_set(obj, part, value) == 0 ? 0 : -EINVAL;
			goto out;
		}
		json_t *child = json_object_get(obj, part);
		if (!child) {
			child = json_object();
			json_object_set_new(obj, part, child);
		}
		obj = child;
		part = next;
	}
out:
	json_decref(value);
	free(copy);
	return r;
}

struct checker {
	const char *file;
	FILE *errs;
	int n_errors;
	const struct profile_override *ov; /* a problem with an overridden key is the override's */
	size_t n_ov;
};

/*
 * Report one problem with the profile key `key` (may be NULL): at the merchant
 * file's line when an override set that key, else in the profile file.
 */
__attribute__((format(printf, 3, 4)))
static void problem(struct checker *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	const struct profile_override *o = NULL;
	for (size_t i = 0; key && i < c->n_ov; i++) {
		size_t n = strlen(c->ov[i].key);
		if (strncmp(key, c->ov[i].key, n) == 0 && (key[n] == 0 || key[n] == '.'))
			o = &c->ov[i];
	}
	if (o)
		fprintf(c->errs, "%s:%d: profile.%s: ", o->file, o->line, o->key);
	else
		fprintf(c->errs, "%s:0: ", c->file);
	va_start(ap, fmt);
	vfprintf(c->errs, fmt, ap);
	va_end(ap);
	fputc('\n', c->errs);
	c->n_errors++;
}

static const char *req_string(struct checker *c, json_t *root, const char *path)
{
	const char *v = json_string_value(profile_path_get(root, path));
	if (!v || !*v)
		problem(c, path, "profile key '%s' must be a non-empty string", path);
	return v ? v : "";
}

static const char *opt_string(struct checker *c, json_t *root, const char *path, const char *def)
{
	json_t *v = profile_path_get(root, path);
	if (!v)
		return def;
	if (!json_is_string(v)) {
		problem(c, path, "profile key '%s' must be a string", path);
		return def;
	}
	return json_string_value(v);
}

static long opt_int(struct checker *c, json_t *root, const char *path, long def, long min, long max)
{
	json_t *v = profile_path_get(root, path);
	if (!v)
		return def;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		problem(c, path, "profile key '%s' must be an integer from %ld to %ld", path, min, max);
		return def;
	}
	return (long)json_integer_value(v);
}

static bool opt_bool(struct checker *c, json_t *root, const char *path, bool def)
{
	json_t *v = profile_path_get(root, path);
	if (!v)
		return def;
	if (!json_is_boolean(v)) {
		problem(c, path, "profile key '%s' must be true or false", path);
		return def;
	}
	return json_is_true(v);
}

/* Fill p's shortcuts from p->root, reporting every problem. */
static void profile_check(struct profile *p, struct checker *c)
{
	json_t *r = p->root;

	p->name = opt_string(c, r, "name", "unnamed");
	p->base_path = opt_string(c, r, "base_path", "");
	p->method = opt_string(c, r, "method", "POST");
	if (strcmp(p->method, "POST") != 0 && strcmp(p->method, "GET") != 0)
		problem(c, "method", "profile key 'method' must be POST or GET");
	p->connect_timeout_s = opt_int(c, r, "connect_timeout_s", 10, 1, 600);
	p->request_timeout_s = opt_int(c, r, "request_timeout_s", 60, 1, 3600);
	p->auth_path = req_string(c, r, "auth.path");
	p->auth_user_param = opt_string(c, r, "auth.user_param", "email");
	p->auth_password_param = opt_string(c, r, "auth.password_param", "password");
	p->token_paths = profile_path_get(r, "auth.token_paths");
	if (!json_is_array(p->token_paths) || json_array_size(p->token_paths) == 0)
		problem(c, "auth.token_paths", "profile key 'auth.token_paths' must be a list of paths");
	p->success_field = opt_string(c, r, "envelope.success", "success");
	p->error_message_path = opt_string(c, r, "envelope.error_message", "error.message");
	p->page_param = req_string(c, r, "paging.page_param");
	p->limit_param = req_string(c, r, "paging.limit_param");
	p->first_page = (int)opt_int(c, r, "paging.first_page", 1, 0, 1);
	p->limit = (int)opt_int(c, r, "paging.limit", 100, 1, PROFILE_LIMIT_MAX);
	p->max_pages = (int)opt_int(c, r, "paging.max_pages", 100000, 1, INT_MAX);
	p->date_param = opt_string(c, r, "date_filter.param", NULL);
	p->date_format = opt_string(c, r, "date_filter.format", "%Y-%m-%d %H:%M:%S");
	p->retry_attempts = (int)opt_int(c, r, "retry.attempts", 8, 1, 100);
	p->retry_base_ms = opt_int(c, r, "retry.base_ms", 500, 1, 600000);
	p->retry_cap_ms = opt_int(c, r, "retry.cap_ms", 30000, 1, 3600000);
	p->retry_after_max_s = opt_int(c, r, "retry.after_max_s", 300, 0, 86400);
	/* Read by outcome.c when a job opens the mirror; checked here so --check-config tells. */
	json_t *cancelled = profile_path_get(r, "order_status.cancelled"), *status;
	size_t k;
	bool texts = json_is_array(cancelled);
	json_array_foreach(cancelled, k, status)
		texts = texts && json_string_length(status) > 0;
	if (cancelled && !texts)
		problem(c, "order_status.cancelled",
			"profile key 'order_status.cancelled' must be a list of order statuses (texts)");
	p->fields = profile_path_get(r, "fields");
	if (p->fields && !json_is_object(p->fields))
		problem(c, "fields", "profile key 'fields' must be an object of field names");

	for (int s = 0; s < STREAM_API_COUNT; s++) {
		struct profile_stream *ps = &p->streams[s];
		char key[96];
		snprintf(key, sizeof(key), "streams.%s", stream_name(s));
		if (!json_is_object(profile_path_get(r, key))) {
			problem(c, key, "profile has no stream '%s'", key);
			continue;
		}
		snprintf(key, sizeof(key), "streams.%s.path", stream_name(s));
		ps->path = req_string(c, r, key);
		snprintf(key, sizeof(key), "streams.%s.records", stream_name(s));
		ps->records = opt_string(c, r, key, "data");
		snprintf(key, sizeof(key), "streams.%s.incremental", stream_name(s));
		ps->incremental = opt_bool(c, r, key, false);
		if (ps->incremental && !p->date_param)
			problem(c, key, "stream '%s' is incremental but 'date_filter.param' is not set",
				stream_name(s));
		snprintf(key, sizeof(key), "streams.%s.sorted_by", stream_name(s));
		ps->sorted_by_id = strcmp(opt_string(c, r, key, "id"), "id") == 0;
		snprintf(key, sizeof(key), "streams.%s.personal", stream_name(s));
		ps->personal = profile_path_get(r, key);
		if (ps->personal && !json_is_array(ps->personal))
			problem(c, key, "profile key '%s' must be a list", key);
		size_t i;
		json_t *rule;
		json_array_foreach(ps->personal, i, rule) {
			const char *action = json_string_value(json_object_get(rule, "action"));
			if (!json_string_value(json_object_get(rule, "field")) || !action ||
			    (strcmp(action, "drop") != 0 && strcmp(action, "hash") != 0))
				problem(c, key, "profile key '%s' entry %zu needs a field and an action "
					   "(drop or hash)", key, i + 1);
		}
	}
}

int profile_load(const char *dir, const char *name_or_path, const struct profile_override *ov,
		 size_t n_ov, struct profile **out, FILE *errs)
{
	char path[PATH_MAX];
	json_error_t jerr;
	struct profile *p = NULL;

	*out = NULL;
	if (strchr(name_or_path, '/') || strstr(name_or_path, ".json"))
		snprintf(path, sizeof(path), "%s", name_or_path);
	else if (snprintf(path, sizeof(path), "%s/%s.json", dir, name_or_path) >= (int)sizeof(path))
		return -EINVAL;

	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	/* A profile named by name, not installed in dir: the copy built in, if there is one. */
	if (!root && jerr.line <= 0 && !strchr(name_or_path, '/') && !strstr(name_or_path, ".json")) {
		for (int i = 0; profiles_embedded[i].name; i++)
			if (strcmp(profiles_embedded[i].name, name_or_path) == 0) {
				root = json_loads(profiles_embedded[i].json, JSON_REJECT_DUPLICATES, &jerr);
				snprintf(path, sizeof(path), "(built-in %s profile)", name_or_path);
			}
	}
	if (!root) {
		fprintf(errs, "%s:%d: cannot load profile '%s': %s\n", path, jerr.line > 0 ? jerr.line : 0,
			name_or_path, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		fprintf(errs, "%s:1: a profile is a JSON object\n", path);
		json_decref(root);
		return -EINVAL;
	}
	int bad = 0;
	for (size_t i = 0; i < n_ov; i++) {
		json_t *v = json_loads(ov[i].value, JSON_DECODE_ANY, NULL);
		if (!v)
			v = json_string(ov[i].value);
		if (path_set(root, ov[i].key, v) < 0) {
			fprintf(errs, "%s:%d: cannot override profile key '%s'\n", ov[i].file, ov[i].line,
				ov[i].key);
			bad++;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(root);
		return -ENOMEM;
	}
	p->root = root;
	struct checker c = { path, errs, bad, ov, n_ov };
	profile_check(p, &c);
	if (c.n_errors) {
		profile_free(p);
		return -EINVAL;
	}
	*out = p;
	return 0;
}

void profile_free(struct profile *p)
{
	if (!p)
		return;
	json_decref(p->root);
	free(p);
}
