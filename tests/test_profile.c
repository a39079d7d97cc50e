/* test_profile.c - API profiles: the shipped ones, merchant overrides, and errors reported as FILE:LINE. */
#include <errno.h>

#include "unit.h"
#include "unit_fixture.h"

#include "profile.h"

#define DIR "lib/profiles"

/* Errors written by profile_load, collected in memory. */
struct errs {
	FILE *f;
	char *text;
	size_t len;
};

static void errs_open(struct errs *e)
{
	e->text = NULL;
	e->len = 0;
	e->f = open_memstream(&e->text, &e->len);
	assert_non_null(e->f);
}

/* Close the stream; the text stays in e->text until errs_free. */
static const char *errs_close(struct errs *e)
{
	fclose(e->f);
	e->f = NULL;
	return e->text;
}

static void errs_free(struct errs *e)
{
	free(e->text);
	e->text = NULL;
}

static struct profile *load_ok(const char *name, const struct profile_override *ov, size_t n_ov)
{
	struct errs e;
	struct profile *p = NULL;
	errs_open(&e);
	int r = profile_load(DIR, name, ov, n_ov, &p, e.f);
	errs_close(&e);
	if (r != 0)
		fail_msg("profile %s did not load (%d): %s", name, r, e.text);
	assert_string_equal(e.text, "");
	errs_free(&e);
	assert_non_null(p);
	return p;
}

static const char *stream_path(const struct profile *p, enum stream s)
{
	return p->streams[s].path;
}

static void test_default_profile(void **state)
{
	(void)state;
	struct profile *p = load_ok("default", NULL, 0);
	assert_string_equal(p->name, "default");
	assert_string_equal(p->base_path, "/api/v1");
	assert_string_equal(p->method, "POST");
	assert_int_equal(p->connect_timeout_s, 10);
	assert_int_equal(p->request_timeout_s, 60);
	assert_string_equal(p->auth_path, "/authenticate");
	assert_string_equal(p->auth_user_param, "email");
	assert_string_equal(p->auth_password_param, "password");
	assert_int_equal(json_array_size(p->token_paths), 7);
	assert_string_equal(json_string_value(json_array_get(p->token_paths, 0)), "data.token");
	assert_string_equal(json_string_value(json_array_get(p->token_paths, 1)), "data");
	assert_string_equal(p->success_field, "success");
	assert_string_equal(p->error_message_path, "error.message");
	assert_string_equal(p->page_param, "page");
	assert_string_equal(p->limit_param, "limit");
	assert_int_equal(p->first_page, 1);
	assert_int_equal(p->limit, 500);
	assert_int_equal(p->max_pages, 100000);
	assert_string_equal(p->date_param, "date_upd_from");
	assert_string_equal(p->date_format, "%Y-%m-%d %H:%M:%S");
	/* Not in the file: the documented defaults. */
	assert_int_equal(p->retry_attempts, 8);
	assert_int_equal(p->retry_base_ms, 500);
	assert_int_equal(p->retry_cap_ms, 30000);
	assert_int_equal(p->retry_after_max_s, 300);

	/* DOMAIN.md §1's endpoint table. */
	assert_string_equal(stream_path(p, STREAM_PRODUCTS), "/products/get");
	assert_string_equal(stream_path(p, STREAM_SIZES), "/sizes/get");
	assert_string_equal(stream_path(p, STREAM_DEPARTMENTS), "/departments/get");
	assert_string_equal(stream_path(p, STREAM_ATTRIBUTES), "/attributes/get");
	assert_string_equal(stream_path(p, STREAM_ORDERS), "/orders/get");
	assert_string_equal(stream_path(p, STREAM_RETURNS), "/returns/get");
	assert_string_equal(stream_path(p, STREAM_RETURN_REASONS), "/returns/getreasons");
	for (int s = 0; s < STREAM_API_COUNT; s++) {
		assert_string_equal(p->streams[s].records, "data");
		assert_true(p->streams[s].sorted_by_id);
	}
	/* Products, orders and returns take the date filter; reference streams are read whole. */
	assert_true(p->streams[STREAM_PRODUCTS].incremental);
	assert_true(p->streams[STREAM_ORDERS].incremental);
	assert_true(p->streams[STREAM_RETURNS].incremental);
	assert_false(p->streams[STREAM_SIZES].incremental);
	assert_false(p->streams[STREAM_DEPARTMENTS].incremental);
	assert_false(p->streams[STREAM_ATTRIBUTES].incremental);
	assert_false(p->streams[STREAM_RETURN_REASONS].incremental);
	/* Only orders carry personal data: the customer, hashed by its id. */
	json_t *rules = p->streams[STREAM_ORDERS].personal;
	assert_int_equal(json_array_size(rules), 1);
	json_t *rule = json_array_get(rules, 0);
	assert_string_equal(json_string_value(json_object_get(rule, "field")), "customer");
	assert_string_equal(json_string_value(json_object_get(rule, "action")), "hash");
	assert_string_equal(json_string_value(json_object_get(rule, "key")), "id");
	assert_null(p->streams[STREAM_PRODUCTS].personal);
	/* Field names are the default ones. */
	assert_string_equal(profile_field(p, "date_upd"), "date_upd");
	assert_string_equal(profile_field(p, "id"), "id");
	assert_string_equal(profile_field(p, "sizes"), "sizes");
	profile_free(p);
}

static void test_alt_profile(void **state)
{
	(void)state;
	struct profile *p = load_ok("alt", NULL, 0);
	assert_string_equal(p->name, "alt");
	assert_string_equal(p->base_path, "/rest/v2");
	assert_string_equal(p->auth_path, "/auth/login");
	assert_string_equal(p->auth_user_param, "login");
	assert_string_equal(p->auth_password_param, "passwd");
	assert_int_equal(json_array_size(p->token_paths), 1);
	assert_string_equal(json_string_value(json_array_get(p->token_paths, 0)), "data.jwt");
	assert_string_equal(p->page_param, "p");
	assert_string_equal(p->limit_param, "per_page");
	assert_int_equal(p->first_page, 0);
	assert_int_equal(p->limit, 200);
	assert_string_equal(p->date_param, "updated_since");
	assert_string_equal(p->date_format, "%Y-%m-%dT%H:%M:%S");
	assert_string_equal(stream_path(p, STREAM_PRODUCTS), "/catalog/products/list");
	assert_string_equal(stream_path(p, STREAM_RETURN_REASONS), "/sales/returns/reasons");
	for (int s = 0; s < STREAM_API_COUNT; s++)
		assert_string_equal(p->streams[s].records, "data.items");
	/* Renamed fields, and the identity for the rest. */
	assert_string_equal(profile_field(p, "date_upd"), "updated");
	assert_string_equal(profile_field(p, "id"), "uid");
	assert_string_equal(profile_field(p, "sizes"), "variants");
	assert_string_equal(profile_field(p, "lines"), "items");
	assert_string_equal(profile_field(p, "product_size_id"), "variant_id");
	assert_string_equal(profile_field(p, "reference"), "reference");
	profile_free(p);

	/* The same file named by its path. */
	p = load_ok(DIR "/alt.json", NULL, 0);
	assert_string_equal(p->name, "alt");
	profile_free(p);
}

/* A profile dir without the shipped files still has the profiles built in. */
static void test_builtin_copy_when_not_installed(void **state)
{
	(void)state;
	char *dir = unit_tmpdir();
	struct errs e;
	struct profile *p = NULL;
	errs_open(&e);
	assert_int_equal(profile_load(dir, "alt", NULL, 0, &p, e.f), 0);
	errs_close(&e);
	assert_string_equal(p->name, "alt");
	assert_int_equal(p->first_page, 0);
	profile_free(p);
	errs_free(&e);
	unit_rmtree(dir);
}

static void test_overrides_apply(void **state)
{
	(void)state;
	char k1[] = "paging.limit", v1[] = "50";
	char k2[] = "auth.path", v2[] = "/authentificate";
	char k3[] = "retry.base_ms", v3[] = "10";
	char k4[] = "fields.date_upd", v4[] = "\"modified\"";
	char k5[] = "streams.returns.path", v5[] = "/returns/list";
	char k6[] = "paging.first_page", v6[] = "0";
	char file[] = "merchants.d/acme.conf";
	struct profile_override ov[] = {
		{ k1, v1, file, 10 }, { k2, v2, file, 11 }, { k3, v3, file, 12 },
		{ k4, v4, file, 13 }, { k5, v5, file, 14 }, { k6, v6, file, 15 },
	};
	struct profile *p = load_ok("default", ov, sizeof(ov) / sizeof(ov[0]));
	assert_int_equal(p->limit, 50);
	assert_string_equal(p->auth_path, "/authentificate");
	assert_int_equal(p->retry_base_ms, 10);
	assert_string_equal(profile_field(p, "date_upd"), "modified");
	assert_string_equal(stream_path(p, STREAM_RETURNS), "/returns/list");
	assert_int_equal(p->first_page, 0);
	assert_int_equal(json_array_size(profile_path_get(p->root, "order_status.cancelled")), 2);
	/* The rest is untouched. */
	assert_string_equal(p->limit_param, "limit");
	assert_string_equal(stream_path(p, STREAM_ORDERS), "/orders/get");
	assert_int_equal(p->retry_cap_ms, 30000);
	profile_free(p);

	/* The shipped profile is not changed by one merchant's overrides. */
	p = load_ok("default", NULL, 0);
	assert_int_equal(p->limit, 500);
	assert_string_equal(p->auth_path, "/authenticate");
	profile_free(p);
}

/* Load with one override expected to be refused; returns what was written to errs. */
static char *refused(const char *key, const char *value, int line)
{
	char k[128], v[256], file[] = "merchants.d/acme.conf";
	snprintf(k, sizeof(k), "%s", key);
	snprintf(v, sizeof(v), "%s", value);
	struct profile_override ov = { k, v, file, line };
	struct errs e;
	struct profile *p = (struct profile *)&e; /* must be reset */
	errs_open(&e);
	int r = profile_load(DIR, "default", &ov, 1, &p, e.f);
	errs_close(&e);
	if (r != -EINVAL)
		fail_msg("profile.%s = %s: got %d, want -EINVAL", key, value, r);
	assert_null(p);
	char want[160];
	snprintf(want, sizeof(want), "merchants.d/acme.conf:%d: ", line);
	if (strncmp(e.text, want, strlen(want)) != 0)
		fail_msg("profile.%s = %s: error '%s' does not start with '%s'", key, value, e.text, want);
	if (!strchr(e.text, '\n'))
		fail_msg("an error line without its newline: '%s'", e.text);
	return e.text;
}

static void test_bad_overrides_report_the_merchant_line(void **state)
{
	(void)state;
	char *t;
	t = refused("paging.limit", "501", 21);
	assert_non_null(strstr(t, "paging.limit"));
	assert_non_null(strstr(t, "500"));
	free(t);
	t = refused("paging.limit", "0", 22);
	free(t);
	t = refused("paging.limit", "\"many\"", 23);
	free(t);
	t = refused("paging.first_page", "2", 24);
	assert_non_null(strstr(t, "paging.first_page"));
	free(t);
	t = refused("method", "PUT", 25);
	assert_non_null(strstr(t, "method"));
	assert_non_null(strstr(t, "POST or GET"));
	free(t);
	t = refused("streams.orders.personal", "[{\"field\":\"customer\",\"action\":\"mask\"}]", 26);
	assert_non_null(strstr(t, "streams.orders.personal"));
	free(t);
	t = refused("streams.orders.personal", "[{\"action\":\"drop\"}]", 27);
	free(t);
	t = refused("streams.orders.personal", "{\"field\":\"customer\"}", 28);
	free(t);
	/* A stream taken away by an override. */
	t = refused("streams.returns", "null", 29);
	assert_non_null(strstr(t, "returns"));
	free(t);
	t = refused("auth.path", "\"\"", 30);
	assert_non_null(strstr(t, "auth.path"));
	free(t);
	t = refused("streams.products.incremental", "yes", 31);
	free(t);
	/* The statuses that mean cancelled (size_outcomes) are a list of texts. */
	t = refused("order_status.cancelled", "\"cancelled\"", 33);
	assert_non_null(strstr(t, "order_status.cancelled"));
	free(t);
	t = refused("order_status.cancelled", "[\"void\", 3]", 34);
	free(t);
	/* A key that runs through a string cannot be set at all. */
	t = refused("name.first", "x", 32);
	assert_non_null(strstr(t, "name.first"));
	free(t);
}

static void test_every_problem_is_reported(void **state)
{
	(void)state;
	char k1[] = "paging.limit", v1[] = "501", k2[] = "method", v2[] = "PUT";
	char f1[] = "merchants.d/a.conf", f2[] = "merchants.d/b.conf";
	struct profile_override ov[] = { { k1, v1, f1, 3 }, { k2, v2, f2, 8 } };
	struct errs e;
	struct profile *p = NULL;
	errs_open(&e);
	assert_int_equal(profile_load(DIR, "default", ov, 2, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_null(p);
	assert_non_null(strstr(e.text, "merchants.d/a.conf:3: "));
	assert_non_null(strstr(e.text, "merchants.d/b.conf:8: "));
	errs_free(&e);
}


/* The default profile's text without one stream, as a file of its own. */
static void test_profile_file_problems(void **state)
{
	(void)state;
	char *dir = unit_tmpdir();
	struct errs e;
	struct profile *p = NULL;

	char *path = unit_write(dir, "nor.json", 0644,
		"{\n"
		"  \"name\": \"nor\", \"base_path\": \"/api\",\n"
		"  \"auth\": { \"path\": \"/login\", \"token_paths\": [\"data.token\"] },\n"
		"  \"paging\": { \"page_param\": \"page\", \"limit_param\": \"limit\" },\n"
		"  \"date_filter\": { \"param\": \"since\" },\n"
		"  \"streams\": {\n"
		"    \"products\": { \"path\": \"/p\", \"incremental\": true },\n"
		"    \"sizes\": { \"path\": \"/s\" }, \"departments\": { \"path\": \"/d\" },\n"
		"    \"attributes\": { \"path\": \"/a\" }, \"orders\": { \"path\": \"/o\" },\n"
		"    \"return_reasons\": { \"path\": \"/rr\" }\n"
		"  }\n"
		"}\n");
	errs_open(&e);
	assert_int_equal(profile_load(DIR, path, NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_null(p);
	/* The problem is the profile file's, and names the missing stream. */
	assert_true(strncmp(e.text, path, strlen(path)) == 0 && e.text[strlen(path)] == ':');
	assert_non_null(strstr(e.text, "returns"));
	errs_free(&e);

	/* The same file with its stream restored by an override loads. */
	char k[] = "streams.returns", v[] = "{\"path\":\"/r\"}", file[] = "merchants.d/acme.conf";
	struct profile_override ov = { k, v, file, 5 };
	errs_open(&e);
	assert_int_equal(profile_load(DIR, path, &ov, 1, &p, e.f), 0);
	errs_close(&e);
	assert_string_equal(stream_path(p, STREAM_RETURNS), "/r");
	assert_string_equal(p->streams[STREAM_RETURNS].records, "data");
	assert_false(p->streams[STREAM_RETURNS].incremental);
	profile_free(p);
	errs_free(&e);
	free(path);

	/* JSON that does not parse: the line of the mistake. */
	path = unit_write(dir, "broken.json", 0644, "{\n  \"name\": \"broken\",\n  \"base_path\" \"/api\"\n}\n");
	errs_open(&e);
	assert_int_equal(profile_load(DIR, path, NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_null(p);
	char want[600];
	snprintf(want, sizeof(want), "%s:3: ", path);
	if (strncmp(e.text, want, strlen(want)) != 0)
		fail_msg("'%s' does not start with '%s'", e.text, want);
	errs_free(&e);
	free(path);

	/* Not an object. */
	path = unit_write(dir, "list.json", 0644, "[1, 2]\n");
	errs_open(&e);
	assert_int_equal(profile_load(DIR, path, NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_true(strncmp(e.text, path, strlen(path)) == 0);
	errs_free(&e);
	free(path);

	/* An incremental stream needs the date parameter. */
	path = unit_write(dir, "nodate.json", 0644,
		"{ \"auth\": { \"path\": \"/login\", \"token_paths\": [\"t\"] },\n"
		"  \"paging\": { \"page_param\": \"page\", \"limit_param\": \"limit\" },\n"
		"  \"streams\": { \"products\": { \"path\": \"/p\", \"incremental\": true },\n"
		"    \"sizes\": { \"path\": \"/s\" }, \"departments\": { \"path\": \"/d\" },\n"
		"    \"attributes\": { \"path\": \"/a\" }, \"orders\": { \"path\": \"/o\" },\n"
		"    \"returns\": { \"path\": \"/r\" }, \"return_reasons\": { \"path\": \"/rr\" } } }\n");
	errs_open(&e);
	assert_int_equal(profile_load(DIR, path, NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_non_null(strstr(e.text, "date_filter.param"));
	errs_free(&e);
	free(path);
	unit_rmtree(dir);
}

static void test_unknown_profile_names_the_path(void **state)
{
	(void)state;
	struct errs e;
	struct profile *p = NULL;
	errs_open(&e);
	assert_int_equal(profile_load(DIR, "nosuch", NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_null(p);
	assert_non_null(strstr(e.text, DIR "/nosuch.json"));
	errs_free(&e);

	errs_open(&e);
	assert_int_equal(profile_load(DIR, "/nonexistent/dir/x.json", NULL, 0, &p, e.f), -EINVAL);
	errs_close(&e);
	assert_non_null(strstr(e.text, "/nonexistent/dir/x.json"));
	errs_free(&e);
}

static void test_path_get(void **state)
{
	(void)state;
	json_t *o = json_loads("{\"data\":{\"items\":[1,2],\"meta\":{\"page\":3}},\"token\":\"t\"}", 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_array_size(profile_path_get(o, "data.items")), 2);
	assert_int_equal(json_integer_value(profile_path_get(o, "data.meta.page")), 3);
	assert_string_equal(json_string_value(profile_path_get(o, "token")), "t");
	assert_true(json_is_object(profile_path_get(o, "data")));
	assert_null(profile_path_get(o, "data.missing"));
	assert_null(profile_path_get(o, "missing.items"));
	assert_null(profile_path_get(o, "token.length"));      /* through a string */
	assert_null(profile_path_get(o, "data.items.0"));      /* through an array */
	assert_null(profile_path_get(o, "data..items"));
	assert_null(profile_path_get(NULL, "data"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_profile),
		cmocka_unit_test(test_alt_profile),
		cmocka_unit_test(test_builtin_copy_when_not_installed),
		cmocka_unit_test(test_overrides_apply),
		cmocka_unit_test(test_bad_overrides_report_the_merchant_line),
		cmocka_unit_test(test_every_problem_is_reported),
		cmocka_unit_test(test_profile_file_problems),
		cmocka_unit_test(test_unknown_profile_names_the_path),
		cmocka_unit_test(test_path_get),
	};
	return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
