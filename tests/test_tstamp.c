/* test_tstamp.c - UTC text and shop-local conversion, daylight-saving edges included,
 * checked against glibc's own reading of the same zone files. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "unit.h"
#include "unit_fixture.h"

#include "tstamp.h"
#include "tz.h"

static struct tz *zones; /* every zone a test asked for, loaded once */

static const struct tz *zone(const char *name)
{
	const struct tz *z;
	char err[512];
	if (tz_get(&zones, name, &z, err, sizeof(err)) < 0)
		fail_msg("%s: %s", name, err);
	return z;
}

static time_t utc(const char *s)
{
	time_t t;
	assert_int_equal(tstamp_parse(s, &t), 0);
	return t;
}

static void expect_local(const char *tz, const char *local, const char *want_utc)
{
	time_t t;
	tstamp_t out;
	if (tstamp_from_local(zone(tz), local, &t) != 0)
		fail_msg("%s did not parse", local);
	tstamp_format(t, out);
	if (strcmp(out, want_utc) != 0)
		fail_msg("%s in %s: got %s, want %s", local, tz, out, want_utc);
}

static void test_format_parse_round_trip(void **state)
{
	(void)state;
	tstamp_t out;
	tstamp_format(utc("2026-11-27T02:30:05Z"), out);
	assert_string_equal(out, "2026-11-27T02:30:05Z");
	time_t t;
	assert_int_equal(tstamp_parse("2026-02-30T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tstamp_parse("2026-01-01 00:00:00", &t), -EINVAL);
	assert_int_equal(tstamp_parse("2026-01-01T00:00:00Zjunk", &t), -EINVAL);
	assert_int_equal(tstamp_parse("2024-02-29T23:59:59Z", &t), 0);
	assert_int_equal(t, 1709251199);
	assert_int_equal(tstamp_parse("1900-02-29T00:00:00Z", &t), -EINVAL);
	tstamp_format(-2208988800, out); /* before the epoch */
	assert_string_equal(out, "1900-01-01T00:00:00Z");
	tstamp_format((time_t)400000 * 366 * 86400, out);
	assert_string_equal(out, "0000-00-00T00:00:00Z");
}

static void test_paris_winter_and_summer(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-01-15 10:00:00", "2026-01-15T09:00:00Z");
	expect_local("Europe/Paris", "2026-07-15 10:00:00", "2026-07-15T08:00:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00", "2026-07-15T08:00:00Z");
	expect_local("Europe/Paris", "2026-07-15", "2026-07-14T22:00:00Z");
	expect_local("Europe/Paris", "15/07/2026", "2026-07-14T22:00:00Z");
	expect_local("Europe/Paris", "15/07/2026 10:00", "2026-07-15T08:00:00Z");
	expect_local("Asia/Tokyo", "2026-07-15 10:00:00", "2026-07-15T01:00:00Z");
}

static void test_explicit_offsets(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-07-15T10:00:00Z", "2026-07-15T10:00:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00+05:30", "2026-07-15T04:30:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00.123-0200", "2026-07-15T12:00:00Z");
}

/* 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first is 00:30Z. */
static void test_autumn_repeated_hour_is_first_occurrence(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-10-25 02:30:00", "2026-10-25T00:30:00Z");
	expect_local("Europe/Paris", "2026-10-25 03:00:00", "2026-10-25T02:00:00Z");
	expect_local("Europe/Paris", "2026-10-25 01:59:59", "2026-10-24T23:59:59Z");
	/* Lord Howe goes back half an hour: 2026-04-05 02:00 +11 -> 01:30 +1030 */
	expect_local("Australia/Lord_Howe", "2026-04-05 01:45:00", "2026-04-04T14:45:00Z");
	expect_local("Australia/Lord_Howe", "2026-04-05 02:00:00", "2026-04-04T15:30:00Z");
}

/* 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist and moves to 03:30 CEST. */
static void test_spring_gap_moves_forward(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-03-29 02:30:00", "2026-03-29T01:30:00Z");
	expect_local("Europe/Paris", "2026-03-29 03:30:00", "2026-03-29T01:30:00Z");
	expect_local("Europe/Paris", "2026-03-29 01:59:00", "2026-03-29T00:59:00Z");
	/* New York: 2026-03-08 02:00 EST -> 03:00 EDT */
	expect_local("America/New_York", "2026-03-08 02:15:00", "2026-03-08T07:15:00Z");
	/* Lord Howe: 2026-10-04 02:00 +1030 -> 02:30 +11; 02:10 is 02:40 +11 */
	expect_local("Australia/Lord_Howe", "2026-10-04 02:10:00", "2026-10-03T15:40:00Z");
}

static void test_to_local(void **state)
{
	(void)state;
	char buf[64];
	assert_int_equal(tstamp_to_local(zone("Europe/Paris"), utc("2026-07-15T08:00:00Z"),
					 "%Y-%m-%d %H:%M:%S", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-07-15 10:00:00");
	assert_int_equal(tstamp_offset(zone("Europe/Paris"), utc("2026-01-15T08:00:00Z")), 3600);
	assert_int_equal(tstamp_to_local(zone("Australia/Lord_Howe"), utc("2026-01-15T08:00:00Z"),
					 "%a %j %H:%M %Z %z", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "Thu 015 19:00 +11 +1100");
	assert_int_equal(tstamp_to_local(tz_utc(), utc("2026-01-15T08:00:00Z"), "%H:%M %Z", buf,
					 sizeof(buf)), 0);
	assert_string_equal(buf, "08:00 UTC");
}

static void test_garbage_is_refused(void **state)
{
	(void)state;
	const char *bad[] = { "", "yesterday", "2026-13-01", "32/01/2026", "2026-01-01 25:00:00",
			      "2026-01-01T10:00:00+5", "2026-01-01 10:00:00 extra", "1/2/2026" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t;
		if (tstamp_from_local(zone("Europe/Paris"), bad[i], &t) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
}

/* ---- against glibc (tests are single-threaded: pointing TZ at a zone is fine here) ---- */

static void glibc_zone(const char *name)
{
	setenv("TZ", name, 1);
	tzset();
}

static void wall_text(const struct tm *tm, char out[32])
{
	strftime(out, 32, "%Y-%m-%d %H:%M:%S", tm);
}

/*
 * At instant t: the same offset, daylight flag, abbreviation and wall clock as
 * localtime_r; and the wall clock read back gives t, or the first instant
 * showing the same wall time when it occurs twice.  Returns the offset.
 */
static long check_instant(const struct tz *z, time_t t)
{
	struct tm g, back;
	char gw[32], mine[64], gfull[64];
	localtime_r(&t, &g);
	strftime(gfull, sizeof(gfull), "%Y-%m-%d %H:%M:%S %Z %z", &g);
	assert_int_equal(tstamp_to_local(z, t, "%Y-%m-%d %H:%M:%S %Z %z", mine, sizeof(mine)), 0);
	if (strcmp(mine, gfull) != 0 || tstamp_offset(z, t) != g.tm_gmtoff)
		fail_msg("%s at %lld: %s, glibc %s", tz_name(z), (long long)t, mine, gfull);

	/* a clock set back in the last hours shows this wall time earlier too */
	wall_text(&g, gw);
	time_t want = t, got, early = t - 3 * 3600;
	localtime_r(&early, &back);
	if (back.tm_gmtoff > g.tm_gmtoff) {
		time_t u = t - (back.tm_gmtoff - g.tm_gmtoff);
		char uw[32];
		localtime_r(&u, &back);
		wall_text(&back, uw);
		if (strcmp(uw, gw) == 0)
			want = u;
	}
	assert_int_equal(tstamp_from_local(z, gw, &got), 0);
	if (got != want)
		fail_msg("%s: %s read back as %lld, want %lld", tz_name(z), gw, (long long)got,
			 (long long)want);
	return g.tm_gmtoff;
}

/* The wall times around a change of offset that glibc sees between t and next. */
static void check_change(const struct tz *z, time_t t, time_t next)
{
	struct tm a, b;
	localtime_r(&t, &a);
	localtime_r(&next, &b);
	time_t l = t, h = next; /* the change is at h: bisect */
	while (h - l > 1) {
		time_t mid = l + (h - l) / 2;
		struct tm m;
		localtime_r(&mid, &m);
		if (m.tm_gmtoff == a.tm_gmtoff)
			l = mid;
		else
			h = mid;
	}
	long before = a.tm_gmtoff, after = b.tm_gmtoff;
	/* wall times around both readings of the change's instant h */
	for (int i = 0; i < 10; i++) {
		time_t wall = h + (i < 5 ? before : after) + (i % 5 - 2) * 600, got;
		time_t want = wall - before < h ? wall - before	/* before the change */
			    : wall - after >= h ? wall - after	/* after it */
			    : wall - before;			/* skipped: forward */
		tstamp_t text;
		tstamp_format(wall, text);
		text[10] = ' ';
		text[19] = 0;
		assert_int_equal(tstamp_from_local(z, text, &got), 0);
		if (got != want)
			fail_msg("%s: change at %lld (%ld -> %ld): %s gave %lld, want %lld",
				 tz_name(z), (long long)h, before, after, text, (long long)got,
				 (long long)want);
	}
}

static void compare_with_glibc(const char *name, time_t from, time_t to, time_t step)
{
	const struct tz *z = zone(name);
	glibc_zone(name);
	long prev = 0;
	for (time_t t = from; t < to; t += step) {
		long off = check_instant(z, t);
		if (t > from && off != prev)
			check_change(z, t - step, t);
		prev = off;
	}
	unsetenv("TZ");
}

/* 1900 to 2200: the tables up to 2037, then each file's footer rule. */
static void test_zones_agree_with_glibc(void **state)
{
	(void)state;
	static const char *const names[] = {
		"Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe",
		"America/Sao_Paulo", /* no change since 2019: past its last transition */
		"Europe/Dublin",     /* daylight time in winter: the rule's start after its end */
		"America/St_Johns", "Pacific/Apia", "Asia/Kolkata", "Africa/Casablanca", "UTC",
	};
	time_t from = utc("1900-01-02T00:00:00Z"), to = utc("2200-01-01T00:00:00Z");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		compare_with_glibc(names[i], from, to, 2 * 86400 + 3 * 3600 + 7 * 60 + 13);
}

/* ---- zones compiled here, from rules only: the footer does all the work ---- */

static const char RULES[] =
	"Rule EU 1981 max - Mar lastSun 1:00u 1:00 S\n"
	"Rule EU 1996 max - Oct lastSun 1:00u 0 -\n"
	"Zone Test/Paris 1:00 EU CE%sT\n"
	"Rule LH 2008 max - Apr Sun>=1 2:00 0 -\n"
	"Rule LH 2008 max - Oct Sun>=1 2:00 0:30 -\n"
	"Zone Test/Lord_Howe 10:30 LH +1030/+11\n"
	"Zone Test/Fixed -3:30 - -0330\n";

/* A zoneinfo folder holding RULES compiled by zic without any redundant transition. */
static char *compile_rules(void)
{
	char *dir = unit_tmpdir(), *src = unit_write(dir, "rules", 0644, RULES), *cmd;
	assert_true(asprintf(&cmd, "zic -b slim -d '%s/zoneinfo' '%s'", dir, src) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(src);
	return dir;
}

static void test_footer_rule_past_the_last_transition(void **state)
{
	(void)state;
	char *dir = compile_rules(), zdir[2048], path[4096];
	struct stat st;
	snprintf(zdir, sizeof(zdir), "%s/zoneinfo", dir);
	setenv("TZDIR", zdir, 1);
	snprintf(path, sizeof(path), "%s/Test/Paris", zdir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 200); /* slim: a transition or two, then the rule */
	time_t from = utc("1997-01-01T00:00:00Z"), to = utc("2150-01-01T00:00:00Z");
	compare_with_glibc("Test/Paris", from, to, 5 * 3600 + 17 * 60 + 3);
	compare_with_glibc("Test/Lord_Howe", from, to, 5 * 3600 + 17 * 60 + 3);
	compare_with_glibc("Test/Fixed", from, to, 86400 * 30 + 11);
	expect_local("Test/Paris", "2100-03-28 02:30:00", "2100-03-28T01:30:00Z");
	expect_local("Test/Paris", "2100-10-31 02:30:00", "2100-10-31T00:30:00Z");
	expect_local("Test/Lord_Howe", "2100-04-04 01:45:00", "2100-04-03T14:45:00Z");
	unsetenv("TZDIR");
	unit_rmtree(dir);
}

/* ---- footer rules on their own, in files written here ---- */

static size_t put_be(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	return (size_t)bytes;
}

/* A TZif header with this many transitions, one type and 4 bytes of abbreviations. */
static size_t put_header(unsigned char *p, uint32_t transitions)
{
	memcpy(p, "TZif2", 5);
	memset(p + 5, 0, 15);
	const uint32_t cnt[6] = { 0, 0, 0, transitions, 1, 4 };
	for (int i = 0; i < 6; i++)
		put_be(p + 20 + 4 * i, cnt[i], 4);
	return 44;
}

/* dir/name: one transition, in 1900, to a type "XXX" at UTC; footer rules from then on. */
static void write_footer_zone(const char *dir, const char *name, const char *footer)
{
	unsigned char buf[512];
	size_t n = put_header(buf, 0);
	n += put_be(buf + n, 0, 6);
	memcpy(buf + n, "XXX", 4), n += 4;
	n += put_header(buf + n, 1);
	n += put_be(buf + n, (uint64_t)(int64_t)-2208988800LL, 8);
	buf[n++] = 0;
	n += put_be(buf + n, 0, 6);
	memcpy(buf + n, "XXX", 4), n += 4;
	n += (size_t)snprintf((char *)buf + n, sizeof(buf) - n, "\n%s\n", footer);
	char *path = unit_write(dir, name, 0644, "");
	FILE *f = fopen(path, "wb");
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
	free(path);
}

/* The POSIX TZ forms RFC 8536 footers use, each read as glibc reads it. */
static void test_footer_forms_agree_with_glibc(void **state)
{
	(void)state;
	static const char *const footers[] = {
		"CET-1CEST,M3.5.0,M10.5.0/3",
		"EST5EDT,M3.2.0,M11.1.0",
		"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",  /* half an hour, south */
		"IST-1GMT0,M10.5.0,M3.5.0/1",            /* daylight time in winter */
		"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",      /* negative times of day */
		"AAA3BBB,J60/2,J300/2",                  /* Julian days without Feb 29 */
		"AAA3BBB,59/2,300/2",                    /* zero-based days with it */
		"<+0330>-3:30",                          /* no daylight time */
		"<-0245>2:45<-0115>1:15,M4.5.6/26,M10.5.6/26:30:15", /* past midnight */
	};
	char *dir = unit_tmpdir(), zdir[4096], name[32];
	snprintf(zdir, sizeof(zdir), "%s/zi", dir);
	setenv("TZDIR", zdir, 1);
	for (size_t i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		snprintf(name, sizeof(name), "zi/F%zu", i);
		write_footer_zone(dir, name, footers[i]);
		/* from 1972: glibc counts every POSIX rule year up to 1970 from 1970-01-01 */
		compare_with_glibc(name + 3, utc("1972-01-01T00:00:00Z"), utc("2110-01-01T00:00:00Z"),
				   86400 + 3 * 3600 + 7 * 60 + 13);
	}
	/* Daylight time all year (RFC 8536 §3.3.1's example).  glibc evaluates only the UTC
	 * year's rule, and so has standard time in the hours before each new year. */
	write_footer_zone(dir, "zi/Always", "EST5EDT,0/0,J365/25");
	const time_t at[] = { utc("2030-01-01T02:00:00Z"), utc("2030-01-01T06:00:00Z"),
			      utc("2030-07-01T00:00:00Z"), utc("2030-12-31T23:59:59Z") };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		assert_int_equal(tstamp_offset(zone("Always"), at[i]), -4 * 3600);
	expect_local("Always", "2030-01-01 00:00:00", "2030-01-01T04:00:00Z");
	unsetenv("TZDIR");
	unit_rmtree(dir);
}

static void test_tzdir_read_at_load_time(void **state)
{
	(void)state;
	char *dir = compile_rules(), zdir[4096], err[512];
	struct tz *z;
	snprintf(zdir, sizeof(zdir), "%s/zoneinfo", dir);
	setenv("TZDIR", zdir, 1);
	assert_int_equal(tz_load("Test/Fixed", &z, err, sizeof(err)), 0);
	assert_int_equal(tz_load("Europe/Paris", &(struct tz *){ NULL }, err, sizeof(err)), -ENOENT);
	unsetenv("TZDIR");
	unit_rmtree(dir); /* loaded tables do not need their files */
	assert_int_equal(tstamp_offset(z, 0), -12600);
	assert_string_equal(tz_name(z), "Test/Fixed");
	tz_free(z);
}

static void test_bad_names_and_files_are_refused(void **state)
{
	(void)state;
	char err[512];
	struct tz *z = NULL;
	const char *names[] = { "", "Mars/Olympus", "../zoneinfo/Europe/Paris", "/etc/localtime",
				"Europe", "zone.tab", "Europe/Paris ", "Europe/Paris;" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (tz_load(names[i], &z, err, sizeof(err)) != -ENOENT || z)
			fail_msg("'%s' was taken", names[i]);

	/* every cut of a real file is refused, with a reason and no table */
	FILE *f = fopen("/usr/share/zoneinfo/Europe/Paris", "rb");
	assert_non_null(f);
	static char whole[8192];
	size_t len = fread(whole, 1, sizeof(whole), f);
	fclose(f);
	char *dir = unit_tmpdir(), zdir[4096];
	snprintf(zdir, sizeof(zdir), "%s/z", dir);
	setenv("TZDIR", zdir, 1);
	for (size_t n = 0; n < len; n++) {
		char save = whole[n];
		whole[n] = 0;
		char *p = unit_write(dir, "z/Cut", 0644, ""); /* written by hand: it holds NULs */
		FILE *w = fopen(p, "wb");
		assert_int_equal(fwrite(whole, 1, n, w), n);
		fclose(w);
		whole[n] = save;
		err[0] = 0;
		int r = tz_load("Cut", &z, err, sizeof(err));
		if ((r != -EINVAL && r != -ENOENT) || z || !err[0])
			fail_msg("%zu bytes of %zu: %d '%s'", n, len, r, err);
		free(p);
	}
	unsetenv("TZDIR");
	unit_rmtree(dir);
}

/* ---- workers share one table ---- */

#define SHARED_THREADS 4
#define SHARED_WALLS 20000

struct shared {
	const struct tz *z[2];
	time_t want[2][SHARED_WALLS];
	int wrong;
};

static void shared_wall(int i, tstamp_t text)
{
	tstamp_format(utc("2020-01-01T00:00:00Z") + (time_t)i * 7919, text); /* ~5 years */
	text[10] = ' ';
	text[19] = 0;
}

static void *shared_worker(void *arg)
{
	struct shared *sh = arg;
	for (int i = 0; i < SHARED_WALLS; i++) {
		tstamp_t text;
		char back[32];
		time_t t;
		shared_wall(i, text);
		for (int k = 0; k < 2; k++)
			if (tstamp_from_local(sh->z[k], text, &t) != 0 || t != sh->want[k][i] ||
			    tstamp_to_local(sh->z[k], t, "%H:%M", back, sizeof(back)) != 0)
				__atomic_add_fetch(&sh->wrong, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Threads converting at once through the same tables get what one thread gets: no shared
 * state is written (make check-tsan runs this under ThreadSanitizer). */
static void test_threads_share_a_table(void **state)
{
	(void)state;
	static struct shared sh;
	pthread_t th[SHARED_THREADS];
	sh.z[0] = zone("Europe/Paris");
	sh.z[1] = zone("Australia/Lord_Howe");
	for (int i = 0; i < SHARED_WALLS; i++) {
		tstamp_t text;
		shared_wall(i, text);
		for (int k = 0; k < 2; k++)
			assert_int_equal(tstamp_from_local(sh.z[k], text, &sh.want[k][i]), 0);
	}
	for (int i = 0; i < SHARED_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, shared_worker, &sh), 0);
	for (int i = 0; i < SHARED_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sh.wrong, 0);
}

static int teardown_zones(void **state)
{
	(void)state;
	tz_free(zones);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_paris_winter_and_summer),
		cmocka_unit_test(test_explicit_offsets),
		cmocka_unit_test(test_autumn_repeated_hour_is_first_occurrence),
		cmocka_unit_test(test_spring_gap_moves_forward),
		cmocka_unit_test(test_to_local),
		cmocka_unit_test(test_garbage_is_refused),
		cmocka_unit_test(test_zones_agree_with_glibc),
		cmocka_unit_test(test_footer_rule_past_the_last_transition),
		cmocka_unit_test(test_footer_forms_agree_with_glibc),
		cmocka_unit_test(test_tzdir_read_at_load_time),
		cmocka_unit_test(test_bad_names_and_files_are_refused),
		cmocka_unit_test(test_threads_share_a_table),
	};
	return cmocka_run_group_tests_name("tstamp", tests, NULL, teardown_zones);
}
