/* test_pii.c - the installation's hash key, keyed hashes, and scrubbing personal data from records. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "unit_fixture.h"

#include "pii.h"
#include "profile.h"

static char *key_path(const char *dir)
{
	char *p;
	assert_true(asprintf(&p, "%s/pii.key", dir) > 0);
	return p;
}

static void test_key_created_once_then_reused(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = key_path(dir), err[512] = "";
	unsigned char k1[PII_KEY_LEN], k2[PII_KEY_LEN], onfile[PII_KEY_LEN + 1];
	struct stat sb;

	assert_int_equal(pii_key_load(dir, k1, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(sb.st_size, PII_KEY_LEN);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, onfile, sizeof(onfile)), PII_KEY_LEN);
	close(fd);
	assert_memory_equal(onfile, k1, PII_KEY_LEN);

	/* The second start reads the same key: customer hashes stay stable. */
	memset(k2, 0, sizeof(k2));
	assert_int_equal(pii_key_load(dir, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, PII_KEY_LEN);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, PII_KEY_LEN);

	/* No temporary file is left beside it. */
	char *cmd;
	assert_true(asprintf(&cmd, "test \"$(ls -A '%s')\" = pii.key", dir) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);

	/* Another installation gets another key. */
	char *dir2 = unit_tmpdir();
	unsigned char k3[PII_KEY_LEN];
	assert_int_equal(pii_key_load(dir2, k3, err, sizeof(err)), 0);
	assert_memory_not_equal(k1, k3, PII_KEY_LEN);
	unit_rmtree(dir2);
	free(path);
	unit_rmtree(dir);
}

static void test_short_key_is_an_error(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = key_path(dir), err[512] = "";
	unsigned char k[PII_KEY_LEN];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);

	assert_true(pii_key_load(dir, k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	/* The short file is not replaced: a new key would change every hash. */
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 10);

	/* An empty one too. */
	assert_int_equal(truncate(path, 0), 0);
	err[0] = 0;
	assert_true(pii_key_load(dir, k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	free(path);
	unit_rmtree(dir);
}

static void test_missing_state_dir_is_an_error(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *sub, err[512] = "";
	unsigned char k[PII_KEY_LEN];
	assert_true(asprintf(&sub, "%s/not-there", dir) > 0);
	assert_true(pii_key_load(sub, k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, sub));
	free(sub);
	unit_rmtree(dir);
}

/*
 * pii.key a symlink to a file that is not there (a secrets mount not mounted):
 * an error naming the file, not a crash.  Run in a child, so a crash fails this
 * test only: this once recursed until the stack overflowed.
 */
static void test_dangling_key_symlink_is_an_error(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = key_path(dir);
	assert_int_equal(symlink("/nonexistent/kleep/pii.key", path), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char k[PII_KEY_LEN];
		char err[512] = "";
		int r = pii_key_load(dir, k, err, sizeof(err));
		_exit(r < 0 && strstr(err, path) ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	char shown[600];
	snprintf(shown, sizeof(shown), "%s", path);
	free(path);
	unit_rmtree(dir);
	if (WIFSIGNALED(status))
		fail_msg("pii_key_load died of signal %d on a dangling pii.key symlink", WTERMSIG(status));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("pii_key_load on a dangling pii.key symlink: no error naming %s (child exit %d; "
			 "ASan reports a crash as exit 1)", shown, WEXITSTATUS(status));
}

/* The key must be a regular file: a symlink, even to a good key, is refused and left alone. */
static void test_key_symlink_is_refused(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = key_path(dir), *real, err[512] = "";
	unsigned char k[PII_KEY_LEN];
	assert_true(asprintf(&real, "%s/real.key", dir) > 0);
	int fd = open(real, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", PII_KEY_LEN), PII_KEY_LEN);
	close(fd);
	assert_int_equal(symlink(real, path), 0);

	assert_true(pii_key_load(dir, k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	struct stat sb;
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	free(real);
	free(path);
	unit_rmtree(dir);
}

static void fixed_key(unsigned char key[PII_KEY_LEN], unsigned char first)
{
	for (int i = 0; i < PII_KEY_LEN; i++)
		key[i] = (unsigned char)(first + i);
}

static void test_hash(void **state)
{
	(void)state;
	unsigned char k0[PII_KEY_LEN], k1[PII_KEY_LEN];
	char a[PII_HASH_HEX], b[PII_HASH_HEX], c[PII_HASH_HEX], d[PII_HASH_HEX];
	fixed_key(k0, 0);
	fixed_key(k1, 1);

	/* HMAC-SHA256(key 00..1f, "555"), first 128 bits: a change here changes every stored hash. */
	pii_hash(k0, "555", a);
	assert_string_equal(a, "61a7884387216c09f9da90eabc484375");
	pii_hash(k0, "", b);
	assert_string_equal(b, "d38b42096d80f45f826b44a9d5607de7");

	pii_hash(k0, "555", b);
	assert_string_equal(a, b); /* deterministic */
	pii_hash(k1, "555", c);
	assert_string_not_equal(a, c); /* per installation */
	pii_hash(k0, "556", d);
	assert_string_not_equal(a, d);

	/* Keys taken in turn, texts past one SHA-256 block: HMAC's answers each time. */
	char t100[101], cafe[141];
	memset(t100, 'x', 100);
	t100[100] = '\0';
	cafe[0] = '\0';
	for (int i = 0; i < 20; i++)
		strcat(cafe, "caf\xC3\xA9 ");
	for (int round = 0; round < 2; round++) {
		pii_hash(k1, "555", b);
		assert_string_equal(b, "0693bab0657100d67a8b15c87251a962");
		pii_hash(k0, t100, b);
		assert_string_equal(b, "d1c86a42d627e0de515d31da2dd2c101");
		pii_hash(k1, cafe, b);
		assert_string_equal(b, "51e3b05dc358cae9b046132fe25c5a4a");
		pii_hash(k0, "555", b);
		assert_string_equal(b, "61a7884387216c09f9da90eabc484375");
	}

	const char *all[] = { a, c, d };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(strlen(all[i]), PII_HASH_HEX - 1);
		for (const char *p = all[i]; *p; p++)
			if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
				fail_msg("'%s' is not lowercase hex", all[i]);
	}
}


static const char *ORDER =
	"{\"id\":99001,\"reference\":\"WS-99001\",\"status\":\"shipped\",\"currency\":\"EUR\","
	"\"customer\":{\"id\":555,\"email\":\"jane@example.org\",\"firstname\":\"Jane\",\"lastname\":\"Doe\","
	"\"phone\":\"+33100000000\",\"address\":{\"street\":\"1 rue X\",\"zip\":\"75001\",\"city\":\"Paris\","
	"\"country\":\"FR\"}},"
	"\"lines\":[{\"id\":1,\"product_id\":1042,\"product_size_id\":50211,\"sku\":\"TSH-001-BLU-M\","
	"\"quantity\":1,\"price\":\"19.90\"}],"
	"\"date_add\":\"2026-11-19 10:00:00\",\"date_upd\":\"2026-11-20 08:15:02\"}";

static json_t *parse(const char *s)
{
	json_error_t jerr;
	json_t *v = json_loads(s, 0, &jerr);
	if (!v)
		fail_msg("bad test JSON: %s", jerr.text);
	return v;
}

/* Nothing of the customer survives anywhere in the record's text. */
static void assert_no_personal_text(json_t *rec)
{
	char *s = json_dumps(rec, JSON_COMPACT);
	static const char *const bits[] = { "jane", "Jane", "Doe", "+331", "rue X", "75001", "email", "phone" };
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (strstr(s, bits[i]))
			fail_msg("'%s' is still in %s", bits[i], s);
	free(s);
}

static void test_scrub_hashes_the_customer(void **state)
{
	(void)state;
	struct profile *p = unit_profile("default", NULL, 0);
	unsigned char key[PII_KEY_LEN];
	char want[PII_HASH_HEX], got[PII_HASH_HEX];
	fixed_key(key, 7);
	pii_hash(key, "555", want);

	json_t *rec = parse(ORDER), *orig = parse(ORDER);
	memset(got, 'x', sizeof(got));
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_string_equal(got, want);
	assert_string_equal(json_string_value(json_object_get(rec, "customer")), want);
	assert_no_personal_text(rec);
	/* Every other field is as it was. */
	json_object_set_new(orig, "customer", json_string(want));
	assert_true(json_equal(rec, orig));
	json_decref(rec);
	json_decref(orig);

	/* A customer id sent as text hashes like the number: the mirror's ids are text. */
	rec = parse("{\"id\":1,\"customer\":{\"id\":\"555\",\"email\":\"jane@example.org\"}}");
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_string_equal(got, want);
	json_decref(rec);

	/* hash_out may be NULL. */
	rec = parse(ORDER);
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "customer")), want);
	json_decref(rec);
	profile_free(p);
}

static void test_scrub_leaves_other_records_alone(void **state)
{
	(void)state;
	struct profile *p = unit_profile("default", NULL, 0);
	unsigned char key[PII_KEY_LEN];
	char got[PII_HASH_HEX];
	fixed_key(key, 7);

	/* An order without a customer. */
	const char *no_customer = "{\"id\":99002,\"status\":\"new\",\"lines\":[]}";
	json_t *rec = parse(no_customer), *orig = parse(no_customer);
	memset(got, 'x', sizeof(got));
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_string_equal(got, "");
	assert_true(json_equal(rec, orig));
	json_decref(rec);
	json_decref(orig);

	/* Products carry no personal rule: a "customer" field there is not touched. */
	const char *product = "{\"id\":1042,\"customer\":{\"id\":1}}";
	rec = parse(product);
	orig = parse(product);
	assert_int_equal(pii_scrub(p, STREAM_PRODUCTS, key, rec, got), 0);
	assert_string_equal(got, "");
	assert_true(json_equal(rec, orig));
	json_decref(rec);
	json_decref(orig);
	profile_free(p);
}

static void test_scrub_without_a_hashable_id_drops(void **state)
{
	(void)state;
	struct profile *p = unit_profile("default", NULL, 0);
	unsigned char key[PII_KEY_LEN];
	char got[PII_HASH_HEX];
	fixed_key(key, 7);

	/* No id to hash: the customer goes all the same, and the caller hears of it. */
	json_t *rec = parse("{\"id\":1,\"status\":\"new\",\"customer\":{\"email\":\"jane@example.org\"}}");
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), -EINVAL);
	assert_null(json_object_get(rec, "customer"));
	assert_string_equal(json_string_value(json_object_get(rec, "status")), "new");
	assert_string_equal(got, "");
	json_decref(rec);

	/* A null customer is simply removed. */
	rec = parse("{\"id\":1,\"customer\":null}");
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_null(json_object_get(rec, "customer"));
	assert_string_equal(got, "");
	json_decref(rec);
	profile_free(p);
}

static void test_scrub_drop_rule_from_override(void **state)
{
	(void)state;
	char k[] = "streams.orders.personal", v[] = "[{\"field\":\"customer\",\"action\":\"drop\"}]",
	     file[] = "merchants.d/acme.conf";
	struct profile_override ov = { k, v, file, 9 };
	struct profile *p = unit_profile("default", &ov, 1);
	unsigned char key[PII_KEY_LEN];
	char got[PII_HASH_HEX];
	fixed_key(key, 7);

	json_t *rec = parse(ORDER), *orig = parse(ORDER);
	memset(got, 'x', sizeof(got));
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_null(json_object_get(rec, "customer"));
	assert_string_equal(got, "");
	assert_no_personal_text(rec);
	json_object_del(orig, "customer");
	assert_true(json_equal(rec, orig));
	json_decref(rec);
	json_decref(orig);
	profile_free(p);
}

/* The alt profile names the id "uid": the key goes through the profile's field names. */
static void test_scrub_follows_profile_field_names(void **state)
{
	(void)state;
	struct profile *p = unit_profile("alt", NULL, 0);
	unsigned char key[PII_KEY_LEN];
	char want[PII_HASH_HEX], got[PII_HASH_HEX];
	fixed_key(key, 7);
	pii_hash(key, "555", want);

	json_t *rec = parse("{\"uid\":99001,\"customer\":{\"uid\":555,\"email\":\"jane@example.org\"}}");
	assert_int_equal(pii_scrub(p, STREAM_ORDERS, key, rec, got), 0);
	assert_string_equal(got, want);
	assert_string_equal(json_string_value(json_object_get(rec, "customer")), want);
	assert_int_equal(json_integer_value(json_object_get(rec, "uid")), 99001);
	json_decref(rec);
	profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_created_once_then_reused),
		cmocka_unit_test(test_short_key_is_an_error),
		cmocka_unit_test(test_missing_state_dir_is_an_error),
		cmocka_unit_test(test_dangling_key_symlink_is_an_error),
		cmocka_unit_test(test_key_symlink_is_refused),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_scrub_hashes_the_customer),
		cmocka_unit_test(test_scrub_leaves_other_records_alone),
		cmocka_unit_test(test_scrub_without_a_hashable_id_drops),
		cmocka_unit_test(test_scrub_drop_rule_from_override),
		cmocka_unit_test(test_scrub_follows_profile_field_names),
	};
	return cmocka_run_group_tests_name("pii", tests, NULL, NULL);
}
