/* test_config.c - config value parsers, and config_load on files written into a scratch folder. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "unit_fixture.h"

#include "config.h"

/* ---- helpers ---- */

/* Write dir/name with mode, making merchants.d when name is in it. */
static void put(const char *dir, const char *name, mode_t mode, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/merchants.d", dir);
	mkdir(path, 0755);
	free(unit_write(dir, name, mode, text));
}

/* config_load on dir/kleepd.conf; errors collected into *errs (caller frees). */
static int load(const char *dir, struct config **c, char **errs)
{
	char path[1024];
	size_t len;
	FILE *f = open_memstream(errs, &len);
	int r;

	assert_non_null(f);
	snprintf(path, sizeof(path), "%s/kleepd.conf", dir);
	r = config_load(path, c, f);
	fclose(f);
	return r;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static const char *const acme_wshop =
	"[merchant]\n"
	"id = acme\n"
	"[wshop]\n"
	"api_url = https://shop.example\n"
	"username = api@shop.example\n"
	"password_file = acme.password\n";

/* ---- value parsers ---- */

static void test_durations(void **state)
{
	(void)state;
	uint64_t u = 42;

	assert_int_equal(config_parse_duration("30s", &u), 0);
	assert_int_equal(u, 30000000ULL);
	assert_int_equal(config_parse_duration("15m", &u), 0);
	assert_int_equal(u, 900000000ULL);
	assert_int_equal(config_parse_duration("6h", &u), 0);
	assert_int_equal(u, 6ULL * 3600 * 1000000);
	assert_int_equal(config_parse_duration("2d", &u), 0);
	assert_int_equal(u, 2ULL * 86400 * 1000000);
	assert_int_equal(config_parse_duration("90", &u), 0);
	assert_int_equal(u, 90000000ULL);
	assert_int_equal(config_parse_duration("0", &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(config_parse_duration("3650d", &u), 0);

	u = 7;
	static const char *const bad[] = {
		"", "m", "15min", "-5m", "+5m", "1.5h", " 5m", "5m ", "5 m", "5M", "1w", "0x10",
		"3651d", "99999999999999999999", "18446744073709551616s",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_duration(bad[i], &u) != -EINVAL)
			fail_msg("duration '%s' was accepted", bad[i]);
	assert_int_equal(config_parse_duration(NULL, &u), -EINVAL);
	assert_int_equal(u, 7); /* untouched on failure */
}

static void test_merchant_ids(void **state)
{
	(void)state;
	char id[80];

	assert_true(config_merchant_id_valid("a"));
	assert_true(config_merchant_id_valid("acme-fr"));
	assert_true(config_merchant_id_valid("0_shop-2"));
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(config_merchant_id_valid(id));
	id[64] = 'a';
	id[65] = '\0';
	assert_false(config_merchant_id_valid(id));

	static const char *const bad[] = {
		"", "-acme", "_acme", "Acme", "acme.fr", "acme fr", "acme/fr", "acm\xc3\xa9", "../x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_merchant_id_valid(bad[i]))
			fail_msg("id '%s' was accepted", bad[i]);
	assert_false(config_merchant_id_valid(NULL));
}

static void test_languages(void **state)
{
	(void)state;
	static const char *const good[] = {
		"fr", "en", "de", "it", "ja", "ko", "pt", "br", "es", "pl", "sv", "da", "nl", "fi",
	};
	static const char *const bad[] = { "", "FR", "ru", "f", "fra", "pt-br", "en ", NULL };

	assert_int_equal(sizeof(good) / sizeof(good[0]), CONFIG_LANG_MAX);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(config_language_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(config_language_valid(bad[i]));
}

/* ---- config_load ---- */

static void test_load_good(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL, *abs;
	struct config *c = NULL;
	const struct merchant_conf *m;

	put(dir, "kleepd.conf", 0644,
	    "[daemon]\nstate_dir = state\nworkers = 16\nlog_level = debug\n"
	    "[defaults]\npoll_orders = 20m\npoll_sftp = 2h\nlookback = 0\n");
	put(dir, "acme.password", 0600, "secret-password\n");
	put(dir, "acme.key", 0400, "key\n");
	put(dir, "known_hosts", 0644, "sftp.example ssh-ed25519 AAAA\n");
	put(dir, "merchants.d/b.conf", 0644,
	    "[merchant]\nid = acme\nlanguages = en , fr,de\nenvironment = preprod\n"
	    "[wshop]\napi_url = https://shop.example/api/v1\nusername = api@shop.example\n"
	    "password_file = acme.password\nrate_limit = 0.5\npoll_returns = 1m\n"
	    "profile.auth.path = /authentificate\nprofile.streams.orders.limit = 250\n"
	    "[sftp]\nhost = sftp.example\nuser = kleep\nkey_file = acme.key\n"
	    "known_hosts = known_hosts\n");
	put(dir, "merchants.d/a.conf", 0644,
	    "[merchant]\nid = zed\n[sftp]\nhost = h\nport = 2222\nuser = u\n"
	    "key_file = acme.key\nknown_hosts = known_hosts\npoll = 5m\n");
	put(dir, "merchants.d/ignored.conf.disabled", 0644, "garbage");
	put(dir, "merchants.d/.hidden.conf", 0644, "garbage");

	assert_int_equal(load(dir, &c, &errs), 0);
	assert_string_equal(errs, "");
	assert_non_null(c);
	assert_int_equal(c->daemon.workers, 16);
	assert_int_equal(c->daemon.log_level, 7);
	assert_int_equal(c->daemon.lookback_usec, 0);
	assert_true(asprintf(&abs, "%s/state", dir) > 0);
	assert_string_equal(c->daemon.state_dir, abs);
	free(abs);
	assert_string_equal(c->daemon.runtime_dir, "/run/kleep");

	/* name order: a.conf (zed) before b.conf (acme) */
	assert_int_equal(c->n_merchants, 2);
	assert_string_equal(c->merchants[0].id, "zed");
	assert_string_equal(c->merchants[1].id, "acme");

	m = config_merchant(c, "acme");
	assert_non_null(m);
	assert_int_equal(m->environment, ENV_PREPROD);
	assert_int_equal(m->n_languages, 3);
	assert_string_equal(m->languages[0], "en");
	assert_string_equal(m->languages[2], "de");
	assert_string_equal(m->timezone, "Europe/Paris");
	assert_string_equal(tz_name(m->tz), "Europe/Paris"); /* the table, loaded now */
	assert_true(m->has_wshop && m->has_sftp);
	assert_true(m->wshop.rate_limit == 0.5);
	assert_int_equal(m->wshop.poll_usec[STREAM_RETURNS], 60000000ULL);
	assert_int_equal(m->wshop.poll_usec[STREAM_ORDERS], 1200000000ULL);
	assert_int_equal(m->wshop.poll_usec[STREAM_PRODUCTS], 3600000000ULL);
	assert_int_equal(m->sftp.poll_usec, 7200000000ULL);
	assert_int_equal(m->sftp.settle_usec, 300000000ULL);
	assert_int_equal(m->wshop.n_overrides, 2);
	assert_string_equal(m->wshop.overrides[0].key, "auth.path");
	assert_string_equal(m->wshop.overrides[0].value, "/authentificate");
	assert_int_equal(m->wshop.overrides[1].line, 12);
	assert_true(asprintf(&abs, "%s/acme.password", dir) > 0);
	assert_string_equal(m->wshop.password_file, abs);
	free(abs);

	m = config_merchant(c, "zed");
	assert_non_null(m);
	assert_false(m->has_wshop);
	assert_int_equal(m->sftp.port, 2222);
	assert_int_equal(m->sftp.poll_usec, 300000000ULL);
	assert_ptr_equal(m->tz, config_merchant(c, "acme")->tz); /* one table per zone */
	assert_null(config_merchant(c, "nobody"));

	/* the summary names the user and the URL, never the password */
	char *sum = NULL;
	size_t len;
	FILE *f = open_memstream(&sum, &len);
	config_merchant_summary(config_merchant(c, "acme"), f);
	fclose(f);
	assert_string_equal(sum,
		"acme: preprod, languages en,fr,de, tz Europe/Paris, product_id=id, "
		"wshop https://shop.example/api/v1 as api@shop.example (profile default with "
		"2 overrides, 0.5 req/s), sftp kleep@sftp.example:22 root .\n");
	assert_null(strstr(sum, "secret-password"));
	free(sum);

	config_free(c);
	free(errs);
	unit_rmtree(dir);
}

static void test_no_merchants_is_fine(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL;
	struct config *c = NULL;

	put(dir, "kleepd.conf", 0644, "");
	assert_int_equal(load(dir, &c, &errs), 0);
	assert_int_equal(c->n_merchants, 0);
	assert_int_equal(c->daemon.workers, 4);
	assert_int_equal(c->daemon.poll_usec[STREAM_ORDERS], 900000000ULL);
	config_free(c);
	free(errs);
	unit_rmtree(dir);
}

static void test_missing_main_file(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL;
	struct config *c = (struct config *)&c;

	assert_int_equal(load(dir, &c, &errs), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(errs, "kleepd.conf:0: cannot open"));
	free(errs);
	unit_rmtree(dir);
}

static void expect_secret_error(mode_t mode, const char *want)
{
	char *dir = unit_tmpdir(), *errs = NULL;
	struct config *c = NULL;

	put(dir, "kleepd.conf", 0644, "");
	put(dir, "merchants.d/acme.conf", 0644, acme_wshop);
	if (mode)
		put(dir, "acme.password", mode, "x\n");
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	assert_null(c);
	if (!strstr(errs, want))
		fail_msg("mode %o: want '%s' in: %s", (unsigned)mode, want, errs);
	assert_non_null(strstr(errs, "merchants.d/acme.conf:6: password file "));
	assert_int_equal(count_lines(errs), 1);
	free(errs);
	unit_rmtree(dir);
}

static void test_password_permissions(void **state)
{
	(void)state;
	expect_secret_error(0644, "acme.password is readable by others (chmod 600 it)\n");
	expect_secret_error(0604, "is readable by others (chmod 600 it)\n");
	expect_secret_error(0602, "is readable by others (chmod 600 it)\n"); /* writable is as bad */
	expect_secret_error(0, "acme.password: No such file or directory\n");
}

static void test_key_file_permissions(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL;
	struct config *c = NULL;

	put(dir, "kleepd.conf", 0644, "");
	put(dir, "k.key", 0644, "key\n");
	put(dir, "merchants.d/m.conf", 0644,
	    "[merchant]\nid = m\n[sftp]\nhost = h\nuser = u\nkey_file = k.key\nknown_hosts = kh\n");
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	assert_non_null(strstr(errs, "m.conf:6: key file "));
	assert_non_null(strstr(errs, "k.key is readable by others (chmod 600 it)\n"));
	assert_non_null(strstr(errs, "m.conf:7: known_hosts file "));
	assert_int_equal(count_lines(errs), 2);
	free(errs);
	unit_rmtree(dir);
}

static void test_credentials_directory(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *cred = unit_tmpdir(), *errs = NULL, *want;
	struct config *c = NULL;

	put(dir, "kleepd.conf", 0644, "");
	put(dir, "merchants.d/acme.conf", 0644, acme_wshop);
	/* beside the main file it is world-readable: proves that copy is not the one used */
	put(dir, "acme.password", 0644, "x\n");
	put(cred, "acme.password", 0400, "x\n");

	setenv("CREDENTIALS_DIRECTORY", cred, 1);
	assert_int_equal(load(dir, &c, &errs), 0);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_string_equal(errs, "");
	assert_true(asprintf(&want, "%s/acme.password", cred) > 0);
	assert_string_equal(c->merchants[0].wshop.password_file, want);
	free(want);
	config_free(c);
	free(errs);

	/* without it, the main file's folder: the 0644 copy is refused */
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	assert_non_null(strstr(errs, "readable by others"));
	free(errs);

	/* an absolute path ignores both */
	put(dir, "merchants.d/acme.conf", 0644,
	    "[merchant]\nid = acme\n[wshop]\napi_url = http://x\nusername = u\n"
	    "password_file = /nonexistent/acme.password\n");
	setenv("CREDENTIALS_DIRECTORY", cred, 1);
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_non_null(strstr(errs, ":6: password file /nonexistent/acme.password: No such file"));
	free(errs);

	unit_rmtree(cred);
	unit_rmtree(dir);
}

/* Every mistake is reported in one run, each with its own line. */
static void test_every_error_reported(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL;
	struct config *c = NULL;

	put(dir, "kleepd.conf", 0644,
	    "[daemon]\nworkers = 65\nfoo = 1\n[nope]\nbar = 2\n[defaults]\npoll_orders = 0\n");
	put(dir, "acme.password", 0600, "x\n");
	put(dir, "merchants.d/a.conf", 0644,
	    "[merchant]\nid = acme\nlanguages = fr,xx\ntimezone = Mars/Olympus\n"
	    "environment = staging\n[wshop]\napi_url = ftp://x\nrate_limit = 0\n"
	    "password_file = acme.password\n[sftp]\nport = 0\nmax_reject_ratio = 1.5\n"
	    "profile.x = 1\n");
	put(dir, "merchants.d/b.conf", 0644, "[merchant]\nid = acme\n[wshop]\n");
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	static const char *const want[] = {
		"kleepd.conf:2: workers: expected an integer from 1 to 64, got '65'\n",
		"kleepd.conf:3: unknown key 'foo' in [daemon]\n",
		"kleepd.conf:4: unknown section [nope]",
		"kleepd.conf:7: poll_orders: must be more than 0\n",
		"a.conf:3: language 'xx' is not supported",
		"a.conf:4: timezone: 'Mars/Olympus' is not a known IANA time zone",
		"a.conf:5: environment: expected production or preprod, got 'staging'\n",
		"a.conf:7: api_url: expected an http:// or https:// URL, got 'ftp://x'\n",
		"a.conf:8: rate_limit: expected requests per second",
		"a.conf:11: port: expected an integer from 1 to 65535, got '0'\n",
		"a.conf:12: max_reject_ratio: expected a decimal from 0 to 1",
		"a.conf:13: unknown key 'profile.x' in [sftp]\n",
		"a.conf:6: required key 'api_url' missing in [wshop]\n", /* given, but bad: no */
		"a.conf:6: required key 'username' missing in [wshop]\n",
		"a.conf:10: required key 'host' missing in [sftp]\n",
		"b.conf:2: duplicate merchant id 'acme' (first defined in ",
		"b.conf:3: required key 'password_file' missing in [wshop]\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool expected = i != 12;
		if ((strstr(errs, want[i]) != NULL) != expected)
			fail_msg("%s '%s' in:\n%s", expected ? "missing" : "unexpected", want[i], errs);
	}
	/* 16 of the above, plus sftp user, key_file, known_hosts and b's api_url, username */
	assert_int_equal(count_lines(errs), 21);
	free(errs);
	unit_rmtree(dir);
}

/* Long lines, NUL bytes, no final newline: each reported where it is, never a crash. */
static void test_hostile_input(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL, path[1024];
	struct config *c = NULL;
	char big[5000];
	FILE *f;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/kleepd.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[daemon]\nstate_dir = /%s\n", big); /* 1, 2 */
	fwrite("workers = 4\0junk\n", 1, 17, f);           /* 3 */
	fprintf(f, "log_level = info\n");                  /* 4: still read after the junk */
	fprintf(f, "runtime_dir = /run/%.*s\n", 180, big); /* 5: 199 characters, fits */
	fprintf(f, "runtime_dir = /r");                    /* 6: duplicate, no newline */
	fclose(f);
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	assert_non_null(strstr(errs, "kleepd.conf:2: line too long (more than 199 characters)\n"));
	assert_non_null(strstr(errs, "kleepd.conf:3: NUL byte in line\n"));
	assert_non_null(strstr(errs, "kleepd.conf:6: duplicate key 'runtime_dir' in [daemon] "
				     "(first at line 5)\n"));
	assert_int_equal(count_lines(errs), 3);
	free(errs);

	/* a flood of bad lines: the report stops after a bound, the count does not */
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 500; i++)
		fprintf(f, "not a key\n");
	fclose(f);
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	assert_int_equal(count_lines(errs), 51);
	assert_non_null(strstr(errs, "kleepd.conf:51: too many errors"));
	free(errs);
	unit_rmtree(dir);
}

/* A merchant file path is the main file's folder joined with merchants.d/NAME. */
static void test_paths_as_given(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL, *cwd = getcwd(NULL, 0);
	struct config *c = NULL;
	size_t len;
	FILE *f;

	put(dir, "kleepd.conf", 0644, "");
	put(dir, "merchants.d/x.conf", 0644, "");
	assert_int_equal(chdir(dir), 0);
	f = open_memstream(&errs, &len);
	assert_int_equal(config_load("kleepd.conf", &c, f), -EINVAL);
	fclose(f);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(errs, "merchants.d/x.conf:0: no [merchant] section "
				  "(every merchant file needs one, with the id)\n"
				  "merchants.d/x.conf:0: merchant has neither [wshop] nor [sftp]; "
				  "it needs one of them or both\n");
	free(errs);
	free(cwd);
	unit_rmtree(dir);
}

/* Zone tables are read at load from $TZDIR: a damaged file and a missing default are errors. */
static void test_zone_files(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *errs = NULL, zdir[4096];
	struct config *c = NULL;
	FILE *f = fopen("/usr/share/zoneinfo/Asia/Tokyo", "rb");
	char tokyo[4096];
	assert_non_null(f);
	size_t n = fread(tokyo, 1, sizeof(tokyo) - 1, f);
	fclose(f);
	tokyo[n] = 0;
	assert_true(n > 44 && strlen(tokyo) < n); /* binary: written below by length */

	snprintf(zdir, sizeof(zdir), "%s/zi", dir);
	free(unit_write(dir, "zi/Bad/Zone", 0644, "TZif2 and then nothing a zone needs"));
	char *good = unit_write(dir, "zi/Good/Zone", 0644, "");
	f = fopen(good, "wb");
	assert_int_equal(fwrite(tokyo, 1, n, f), n);
	fclose(f);
	free(good);
	put(dir, "kleepd.conf", 0644, "[daemon]\nstate_dir = state\n");
	put(dir, "known_hosts", 0644, "h ssh-ed25519 AAAA\n");
	put(dir, "k", 0600, "key\n");
	static const char SFTP[] = "[sftp]\nhost = h\nuser = u\nkey_file = k\nknown_hosts = known_hosts\n";
	char text[512];
	snprintf(text, sizeof(text), "[merchant]\nid = a\ntimezone = Bad/Zone\n%s", SFTP);
	put(dir, "merchants.d/a.conf", 0644, text);
	snprintf(text, sizeof(text), "[merchant]\nid = b\ntimezone = Good/Zone\n%s", SFTP);
	put(dir, "merchants.d/b.conf", 0644, text);
	snprintf(text, sizeof(text), "[merchant]\nid = c\n%s", SFTP);
	put(dir, "merchants.d/c.conf", 0644, text);

	setenv("TZDIR", zdir, 1);
	assert_int_equal(load(dir, &c, &errs), -EINVAL);
	unsetenv("TZDIR");
	if (!strstr(errs, "a.conf:3: timezone: 'Bad/Zone' cannot be read: ") ||
	    !strstr(errs, "c.conf:0: timezone: 'Europe/Paris' is not a known IANA time zone") ||
	    strstr(errs, "b.conf") || count_lines(errs) != 2)
		fail_msg("errors:\n%s", errs);
	free(errs);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_merchant_ids),
		cmocka_unit_test(test_languages),
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_no_merchants_is_fine),
		cmocka_unit_test(test_missing_main_file),
		cmocka_unit_test(test_password_permissions),
		cmocka_unit_test(test_key_file_permissions),
		cmocka_unit_test(test_credentials_directory),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_paths_as_given),
		cmocka_unit_test(test_zone_files),
	};
	unsetenv("CREDENTIALS_DIRECTORY");
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
