/* test_merchant.c - opening a merchant: its mirror, hash key and profile, and which streams it has. */
#include <errno.h>
#include <sys/stat.h>

#include "unit.h"
#include "unit_sql.h"
#include "unit_fixture.h"

#include "config.h"
#include "merchant.h"

/* A config with one merchant, written to dir; sections as given. */
static struct config *load(const char *dir, const char *sections)
{
	char *text, *path;
	free(unit_write(dir, "pw", 0600, "secret\n"));
	free(unit_write(dir, "known_hosts", 0644, "[127.0.0.1]:2222 ssh-ed25519 "
			"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"));
	free(unit_write(dir, "key", 0600, "not a key\n"));
	assert_true(asprintf(&text, "[daemon]\nstate_dir = %s/state\nprofile_dir = lib/profiles\n", dir) > 0);
	path = unit_write(dir, "kleepd.conf", 0644, text);
	free(text);
	assert_true(asprintf(&text, "[merchant]\nid = shop\nlanguages = fr, en\n%s", sections) > 0);
	free(unit_write(dir, "merchants.d/shop.conf", 0644, text));
	free(text);
	struct config *c;
	assert_int_equal(config_load(path, &c, stderr), 0);
	free(path);
	return c;
}

static const char WSHOP[] = "[wshop]\napi_url = http://127.0.0.1:9\nusername = u@shop.example\n"
			    "password_file = pw\nprofile.paging.limit = 50\n";
static const char SFTP[] = "[sftp]\nhost = 127.0.0.1\nport = 2222\nuser = shop\nkey_file = key\n"
			   "known_hosts = known_hosts\n";

static void test_open_makes_mirror_and_key(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), err[1024];
	char *both;
	assert_true(asprintf(&both, "%s%s", WSHOP, SFTP) > 0);
	struct config *c = load(dir, both);
	free(both);
	struct merchant *mr;
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	/* The state folder and the mirror exist, migrated; the key is private. */
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/state/shop.db", dir);
	assert_string_equal(mr->db_path, path);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(store_schema_version(mr->st), store_schema_latest());
	snprintf(path, sizeof(path), "%s/state/pii.key", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* The profile has the merchant's override applied. */
	assert_non_null(mr->profile);
	assert_int_equal(mr->profile->limit, 50);
	assert_true(merchant_has_stream(mr, STREAM_ORDERS));
	assert_true(merchant_has_stream(mr, STREAM_SFTP));
	unsigned char key[PII_KEY_LEN];
	memcpy(key, mr->pii_key, sizeof(key));
	merchant_close(mr);

	/* Opened again: the same key (customer hashes stay stable). */
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	assert_memory_equal(key, mr->pii_key, sizeof(key));
	merchant_close(mr);
	config_free(c);
	unit_rmtree(dir);
}

static void test_sftp_only_has_no_api_streams(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), err[1024];
	struct config *c = load(dir, SFTP);
	struct merchant *mr;
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	assert_null(mr->profile);
	assert_false(merchant_has_stream(mr, STREAM_PRODUCTS));
	assert_true(merchant_has_stream(mr, STREAM_SFTP));
	/* Asked for an API stream anyway: refused as a config error, nothing run. */
	struct merchant_result res;
	assert_int_equal(merchant_run(mr, STREAM_ORDERS, false, NULL, NULL, &res), -EINVAL);
	assert_string_equal(res.error_class, "config");
	assert_non_null(strstr(res.message, "[wshop]"));
	assert_int_equal(unit_query_int(store_db(mr->st), "SELECT count(*) FROM sync_runs"), 0);
	merchant_close(mr);
	config_free(c);
	unit_rmtree(dir);
}

static void test_unreachable_shop_fails_transient(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), err[1024];
	char *w;
	/* Port 9 on loopback refuses at once; one attempt, so the test is quick. */
	assert_true(asprintf(&w, "%sprofile.retry.attempts = 1\n", WSHOP) > 0);
	struct config *c = load(dir, w);
	free(w);
	struct merchant *mr;
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	struct merchant_result res;
	assert_true(merchant_run(mr, STREAM_ORDERS, false, NULL, NULL, &res) < 0);
	assert_string_equal(res.outcome, "failed");
	assert_string_equal(res.error_class, "transient");
	/* The failure is in the mirror for status, with its class. */
	unit_expect_rows(store_db(mr->st), "SELECT stream, error_class FROM sync_state",
			 "orders|transient\n");
	unit_expect_rows(store_db(mr->st), "SELECT stream, outcome FROM sync_runs", "orders|failed\n");
	merchant_close(mr);
	config_free(c);
	unit_rmtree(dir);
}

static void test_moved_source_refused_before_any_request(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), err[1024];
	char *w;
	assert_true(asprintf(&w, "%sprofile.retry.attempts = 1\n", WSHOP) > 0);
	struct config *c = load(dir, w);
	free(w);
	struct merchant *mr;
	struct merchant_result res;
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	/* The first run binds the mirror to the shop on port 9 (and fails: nothing listens). */
	assert_true(merchant_run(mr, STREAM_ORDERS, false, NULL, NULL, &res) < 0);
	assert_string_equal(res.error_class, "transient");
	assert_true(res.requests > 0);
	merchant_close(mr);

	/* The file now names another shop: the run stops before a single request. */
	free(c->merchants[0].wshop.api_url);
	c->merchants[0].wshop.api_url = strdup("http://127.0.0.1:10/api");
	c->merchants[0].environment = ENV_PREPROD;
	assert_int_equal(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)), 0);
	assert_int_equal(merchant_run(mr, STREAM_ORDERS, false, NULL, NULL, &res), -EXDEV);
	assert_int_equal(res.requests, 0);
	assert_string_equal(res.outcome, "failed");
	assert_string_equal(res.error_class, "config");
	assert_non_null(strstr(res.message, "production (API http://127.0.0.1:9)"));
	assert_non_null(strstr(res.message, "preprod (API http://127.0.0.1:10/api)"));
	/* Status reads it from the mirror, and the run history keeps it. */
	unit_expect_rows(store_db(mr->st), "SELECT stream, error_class FROM sync_state",
			 "orders|config\n");
	unit_expect_rows(store_db(mr->st), "SELECT outcome, error_class FROM sync_runs ORDER BY run_id",
			 "failed|transient\nfailed|config\n");
	merchant_close(mr);
	config_free(c);
	unit_rmtree(dir);
}

static void test_missing_profile_is_refused(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), err[1024] = "";
	char *w;
	assert_true(asprintf(&w, "%sprofile = nosuch\n", WSHOP) > 0);
	struct config *c = load(dir, w);
	free(w);
	struct merchant *mr;
	assert_true(merchant_open(c, &c->merchants[0], NULL, &mr, err, sizeof(err)) < 0);
	assert_null(mr);
	assert_non_null(strstr(err, "nosuch"));
	config_free(c);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_makes_mirror_and_key),
		cmocka_unit_test(test_sftp_only_has_no_api_streams),
		cmocka_unit_test(test_unreachable_shop_fails_transient),
		cmocka_unit_test(test_moved_source_refused_before_any_request),
		cmocka_unit_test(test_missing_profile_is_refused),
	};
	return cmocka_run_group_tests_name("merchant", tests, NULL, NULL);
}
