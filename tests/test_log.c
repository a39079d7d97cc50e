/* test_log.c - log levels, the stderr line format, and (when a journal runs) the journald fields. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"

#include "log.h"

/* Run fn with stderr captured into buf. */
static void capture_stderr(void (*fn)(void), char *buf, size_t size)
{
	char path[] = "/tmp/kleep-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
}

static void log_some(void)
{
	struct log_ctx ctx = { "acme-fr", "orders", 42 };
	log_set_level(LOG_INFO);
	log_info(&ctx, "synced %d rows", 7);
	log_debug(&ctx, "this is below the level");
	log_err(NULL, "no context");
}

static void test_level_parse(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_INFO);
	assert_int_equal(log_level_parse("notice"), LOG_NOTICE);
	assert_int_equal(log_level_parse("warning"), LOG_WARNING);
	assert_int_equal(log_level_parse("err"), LOG_ERR);
	assert_int_equal(log_level_parse("verbose"), -1);
}

static void test_stderr_lines(void **state)
{
	(void)state;
	char buf[4096];
	log_init(true);
	capture_stderr(log_some, buf, sizeof(buf));
	assert_non_null(strstr(buf, " kleepd info acme-fr/orders#42: synced 7 rows\n"));
	assert_null(strstr(buf, "below the level"));
	assert_non_null(strstr(buf, " kleepd err: no context\n"));
	/* The line starts with a UTC timestamp. */
	assert_int_equal(buf[4], '-');
	assert_int_equal(buf[19], 'Z');
}

/* Under systemd, stderr may be the journal (JOURNAL_STREAM names it): each line then
 * starts with "<N>", the priority systemd reads, and carries no time stamp of its own. */
static void test_stderr_journal_stream(void **state)
{
	(void)state;
	char path[] = "/tmp/kleep-log-XXXXXX", buf[4096], env[64];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init(true);
	log_some();
	log_errno(LOG_WARNING, NULL, -ENOENT, "cannot open %s", "x.csv");
	/* Another file than stderr: plain lines again. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_init(true);
	log_notice(NULL, "plain again");
	unsetenv("JOURNAL_STREAM");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	assert_non_null(strstr(buf, "<6>acme-fr/orders#42: synced 7 rows\n"));
	assert_non_null(strstr(buf, "\n<3>no context\n"));
	assert_non_null(strstr(buf, "\n<4>cannot open x.csv: No such file or directory\n"));
	assert_non_null(strstr(buf, " kleepd notice: plain again\n"));
	assert_int_equal(buf[0], '<');
}

/* With KLEEP_JOURNAL_TEST=<marker>, tests/integration/test_journal.py has started
 * journald: send one line per case and let the driver read the fields back. */
static void test_journal_send(void **state)
{
	(void)state;
	const char *marker = getenv("KLEEP_JOURNAL_TEST");
	if (!marker)
		skip();
	log_init(false);
	log_set_level(LOG_DEBUG);
	struct log_ctx ctx = { marker, "returns", 7 };
	log_msg(LOG_NOTICE, &ctx, LOG_MSGID_RUN_FINISHED, "run finished: %d rows", 3);
	struct log_ctx bare = { marker, NULL, 0 };
	log_warning(&bare, "merchant-level line");
	struct log_ctx failed = { marker, "orders", 8 };
	log_msg(LOG_ERR, &failed, LOG_MSGID_RUN_FAILED, "run failed (%s): %s", "transient", "timed out");
	struct log_ctx sys = { marker, "sftp", 0 };
	log_errno(LOG_ERR, &sys, EACCES, "cannot open %s", "ledger");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_stderr_lines),
		cmocka_unit_test(test_stderr_journal_stream),
		cmocka_unit_test(test_journal_send),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
