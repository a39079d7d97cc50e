/* test_source.c - a mirror's source: computed from the configuration, recorded, compared,
 * and moved on by rebind (data kept) and golive (archive and a fresh mirror). */
#include <errno.h>
#include <glob.h>
#include <sys/stat.h>

#include "unit.h"
#include "unit_sql.h"

#include "source.h"

/* A merchant with [wshop] at api_url (NULL: none) and [sftp] at host:port root (host NULL: none). */
struct shop {
	struct merchant_conf m;
};

static void shop_init(struct shop *s, enum environment env, const char *api_url, const char *host,
		      int port, const char *root)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->m.id, sizeof(s->m.id), "acme");
	s->m.environment = env;
	s->m.has_wshop = api_url != NULL;
	s->m.wshop.api_url = (char *)api_url;
	s->m.wshop.username = "api@acme.example";
	s->m.wshop.rate_limit = 2;
	s->m.has_sftp = host != NULL;
	s->m.sftp.host = (char *)host;
	s->m.sftp.port = port;
	s->m.sftp.root = (char *)root;
	s->m.n_languages = 1;
	snprintf(s->m.languages[0], sizeof(s->m.languages[0]), "fr");
	s->m.product_id_field = "id";
}

static const char *const PREPROD = "https://preprod.acme.example/api/v1";
static const char *const PROD = "https://shop.acme.example/api/v1";

static void describe_conf(const struct merchant_conf *m, char *buf, size_t size)
{
	struct source s;
	char err[256];
	assert_int_equal(source_from_conf(m, &s, err, sizeof(err)), 0);
	source_describe(&s, buf, size);
}

static void test_url_normalized_without_user_info(void **state)
{
	(void)state;
	struct shop a;
	char text[SOURCE_TEXT_MAX];
	shop_init(&a, ENV_PREPROD, "HTTPS://kleep:s3cret@Shop.ACME.example:443/api/v1/?x=1#top",
		  "SFTP.acme.example", 22, "acme/preprod/");
	describe_conf(&a.m, text, sizeof(text));
	assert_string_equal(text, "preprod (API https://shop.acme.example/api/v1, "
				  "SFTP sftp.acme.example:22 root acme/preprod)");
	assert_null(strstr(text, "s3cret"));
	assert_null(strstr(text, "kleep"));
	/* A port that is not the scheme's default is part of the host. */
	shop_init(&a, ENV_PRODUCTION, "http://127.0.0.1:8080", NULL, 0, NULL);
	describe_conf(&a.m, text, sizeof(text));
	assert_string_equal(text, "production (API http://127.0.0.1:8080)");
}

static void test_settings_outside_the_source_never_count(void **state)
{
	(void)state;
	struct shop a, b;
	shop_init(&a, ENV_PREPROD, PREPROD, "sftp.acme.example", 22, "acme/preprod");
	shop_init(&b, ENV_PREPROD, "https://kleep@preprod.acme.example:443/api/v1/", "sftp.acme.example",
		  22, "acme/preprod/");
	for (int s = 0; s < STREAM_API_COUNT; s++)
		b.m.wshop.poll_usec[s] = 60000000;
	b.m.sftp.poll_usec = 5;
	b.m.wshop.rate_limit = 10;
	b.m.wshop.username = "other@acme.example";
	b.m.wshop.profile = "custom";
	b.m.n_languages = 2;
	snprintf(b.m.languages[1], sizeof(b.m.languages[1]), "en");
	b.m.product_id_field = "sku";
	b.m.timezone = "Europe/Berlin";
	assert_true(source_conf_same(&a.m, &b.m));

	/* Each of these points elsewhere. */
	shop_init(&b, ENV_PRODUCTION, PREPROD, "sftp.acme.example", 22, "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, "https://preprod.acme.example:8443/api/v1", "sftp.acme.example", 22,
		  "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, "https://preprod.acme.example/api/v2", "sftp.acme.example", 22,
		  "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, "http://preprod.acme.example/api/v1", "sftp.acme.example", 22,
		  "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, PREPROD, "sftp.acme.example", 22, "acme/production");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, PREPROD, "sftp2.acme.example", 22, "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
	shop_init(&b, ENV_PREPROD, PREPROD, "sftp.acme.example", 2222, "acme/preprod");
	assert_false(source_conf_same(&a.m, &b.m));
}

/* A fresh mirror in a new folder; *dir is freed by unit_rmtree. */
static struct store *mirror(char **dir, char *path, size_t size)
{
	struct store *st;
	char err[1024];
	*dir = unit_tmpdir();
	snprintf(path, size, "%s/acme.db", *dir);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	return st;
}

static void test_first_use_records_then_a_move_stops(void **state)
{
	(void)state;
	char *dir, path[4096], msg[2048];
	struct store *st = mirror(&dir, path, sizeof(path));
	struct shop a, b;
	struct log_ctx log = { "acme", NULL, 0 };
	shop_init(&a, ENV_PREPROD, PREPROD, NULL, 0, NULL);

	/* A mirror without a source (new, or from a kleepd that did not record one) adopts it. */
	assert_int_equal(source_verify(st, &a.m, &log, msg, sizeof(msg)), 0);
	unit_expect_rows(store_db(st), "SELECT environment, api_scheme, api_host, api_path, sftp_host,"
				       " bound_by FROM source_binding",
			 "preprod|https|preprod.acme.example|/api/v1|~|first_use\n");
	assert_int_equal(source_verify(st, &a.m, &log, msg, sizeof(msg)), 0);

	/* An [sftp] section added later fills gaps of the same shop: recorded, not a stop. */
	shop_init(&a, ENV_PREPROD, PREPROD, "sftp.acme.example", 22, "acme/preprod");
	assert_int_equal(source_verify(st, &a.m, &log, msg, sizeof(msg)), 0);
	unit_expect_rows(store_db(st), "SELECT sftp_host, sftp_port, sftp_root FROM source_binding",
			 "sftp.acme.example|22|acme/preprod\n");

	/* Production in the file: stopped, both sources named, and the way forward. */
	shop_init(&b, ENV_PRODUCTION, PROD, "sftp.acme.example", 22, "acme/production");
	assert_int_equal(source_verify(st, &b.m, &log, msg, sizeof(msg)), -EXDEV);
	assert_non_null(strstr(msg, "preprod (API https://preprod.acme.example/api/v1, "
				    "SFTP sftp.acme.example:22 root acme/preprod)"));
	assert_non_null(strstr(msg, "production (API https://shop.acme.example/api/v1, "
				    "SFTP sftp.acme.example:22 root acme/production)"));
	assert_non_null(strstr(msg, "kleepctl golive acme"));
	assert_null(strstr(msg, "rebind")); /* another environment is never a rebind */

	/* Only the SFTP root moved: the same two ways are offered. */
	shop_init(&b, ENV_PREPROD, PREPROD, "sftp.acme.example", 22, "acme/other");
	assert_int_equal(source_verify(st, &b.m, &log, msg, sizeof(msg)), -EXDEV);
	assert_non_null(strstr(msg, "root acme/other"));
	assert_non_null(strstr(msg, "kleepctl rebind acme"));
	/* The record is untouched by a refused sync. */
	unit_expect_rows(store_db(st), "SELECT environment, sftp_root, bound_by FROM source_binding",
			 "preprod|acme/preprod|first_use\n");
	store_close(st);
	unit_rmtree(dir);
}

static void test_rebind_keeps_data_and_cursors(void **state)
{
	(void)state;
	char *dir, path[4096], msg[2048];
	struct store *st = mirror(&dir, path, sizeof(path));
	struct shop a, b;
	struct log_ctx log = { "acme", NULL, 0 };
	shop_init(&a, ENV_PRODUCTION, PROD, NULL, 0, NULL);
	assert_int_equal(source_verify(st, &a.m, &log, msg, sizeof(msg)), 0);
	assert_int_equal(store_exec(st, "INSERT INTO sync_state (stream, cursor_time) VALUES "
				       "('orders', '2026-01-02T03:04:05Z');"
				       "INSERT INTO records (stream, id, source, first_seen, last_seen, json)"
				       " VALUES ('orders', '1', 'api', 'x', 'x', '{}')"), 0);

	/* Nothing moved: nothing to accept. */
	assert_int_equal(source_rebind(st, &a.m, &log, msg, sizeof(msg)), -EALREADY);
	/* Another environment: refused, that is a go-live. */
	shop_init(&b, ENV_PREPROD, PROD, NULL, 0, NULL);
	assert_int_equal(source_rebind(st, &b.m, &log, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "golive"));

	/* The same shop on a new domain: accepted, data and cursor kept, syncs go on. */
	shop_init(&b, ENV_PRODUCTION, "https://new.acme.example/api/v1", NULL, 0, NULL);
	assert_int_equal(source_verify(st, &b.m, &log, msg, sizeof(msg)), -EXDEV);
	assert_int_equal(source_rebind(st, &b.m, &log, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "new.acme.example"));
	assert_int_equal(source_verify(st, &b.m, &log, msg, sizeof(msg)), 0);
	unit_expect_rows(store_db(st), "SELECT api_host, bound_by FROM source_binding",
			 "new.acme.example|rebind\n");
	unit_expect_rows(store_db(st), "SELECT cursor_time FROM sync_state WHERE stream = 'orders'",
			 "2026-01-02T03:04:05Z\n");
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM records"), 1);
	store_close(st);
	unit_rmtree(dir);
}

static void test_golive_archives_and_starts_fresh(void **state)
{
	(void)state;
	char *dir, path[4096], msg[2048], archive[4096];
	struct store *st = mirror(&dir, path, sizeof(path));
	struct shop pre, prod;
	struct log_ctx log = { "acme", NULL, 0 };
	shop_init(&pre, ENV_PREPROD, PREPROD, "sftp.acme.example", 22, "acme/preprod");
	shop_init(&prod, ENV_PRODUCTION, PROD, "sftp.acme.example", 22, "acme/production");
	assert_int_equal(source_verify(st, &pre.m, &log, msg, sizeof(msg)), 0);
	assert_int_equal(store_exec(st, "INSERT INTO sync_state (stream, cursor_time) VALUES "
				       "('orders', '2026-01-02T03:04:05Z');"
				       "INSERT INTO records (stream, id, source, first_seen, last_seen, json)"
				       " VALUES ('orders', '1', 'api', 'x', 'x', '{}')"), 0);

	/* The file still says preprod: nothing to go live to. */
	assert_int_equal(source_golive(&st, path, &pre.m, &log, archive, sizeof(archive), msg,
				       sizeof(msg)), -EALREADY);
	assert_non_null(st);

	assert_int_equal(source_golive(&st, path, &prod.m, &log, archive, sizeof(archive), msg,
				       sizeof(msg)), 0);
	assert_non_null(st);
	assert_non_null(strstr(msg, archive));
	/* <id>.<environment>.<UTC time>.db beside the mirror, group-readable, alone. */
	char pattern[4200];
	glob_t g;
	snprintf(pattern, sizeof(pattern), "%s/acme.preprod.[0-9]*T[0-9]*Z.db", dir);
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1);
	assert_string_equal(g.gl_pathv[0], archive);
	globfree(&g);
	snprintf(pattern, sizeof(pattern), "%s/acme.preprod.*", dir);
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1); /* no -wal, -shm or .part beside it */
	globfree(&g);
	struct stat sb;
	assert_int_equal(stat(archive, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);

	/* The archive is complete without any -wal: opened read-only, it is the preprod mirror. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(archive, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	unit_expect_rows(db, "PRAGMA journal_mode", "delete\n");
	unit_expect_rows(db, "SELECT environment, sftp_root FROM source_binding", "preprod|acme/preprod\n");
	unit_expect_rows(db, "SELECT cursor_time FROM sync_state", "2026-01-02T03:04:05Z\n");
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM records"), 1);
	sqlite3_close(db);

	/* The mirror is fresh, bound to production, and syncs. */
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM records"), 0);
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM sync_state"), 0);
	unit_expect_rows(store_db(st), "SELECT environment, api_host, sftp_root, bound_by FROM source_binding",
			 "production|shop.acme.example|acme/production|golive\n");
	assert_int_equal(source_verify(st, &prod.m, &log, msg, sizeof(msg)), 0);
	store_close(st);
	unit_rmtree(dir);
}

static void test_golive_needs_a_recorded_source(void **state)
{
	(void)state;
	char *dir, path[4096], msg[2048], archive[4096];
	struct store *st = mirror(&dir, path, sizeof(path));
	struct shop prod;
	struct log_ctx log = { "acme", NULL, 0 };
	shop_init(&prod, ENV_PRODUCTION, PROD, NULL, 0, NULL);
	assert_int_equal(source_golive(&st, path, &prod.m, &log, archive, sizeof(archive), msg,
				       sizeof(msg)), -ENOENT);
	assert_non_null(st);
	store_close(st);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_normalized_without_user_info),
		cmocka_unit_test(test_settings_outside_the_source_never_count),
		cmocka_unit_test(test_first_use_records_then_a_move_stops),
		cmocka_unit_test(test_rebind_keeps_data_and_cursors),
		cmocka_unit_test(test_golive_archives_and_starts_fresh),
		cmocka_unit_test(test_golive_needs_a_recorded_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
