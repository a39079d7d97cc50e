/* tstamp.c - UTC text timestamps and IANA time-zone conversion.
 *
 * glibc only converts through the process-wide TZ, so every conversion takes
 * one lock, points TZ at the zone it needs (tzset caches the parsed zone while
 * TZ stays the same) and asks localtime_r for offsets.  Local -> UTC is solved
 * from the offsets a day either side, which covers any single transition.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tstamp.h"

#define DAY_SEC 86400
#define TZ_CACHE_DAYS 64 /* days remembered per thread, by day number */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static char tz_current[128];

void tstamp_format(time_t t, tstamp_t out)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 8099) {
		memcpy(out, "0000-00-00T00:00:00Z", TSTAMP_LEN);
		return;
	}
	/* By hand: this runs for every date of every record, and strftime is slow. */
	unsigned y = (unsigned)(tm.tm_year + 1900);
	const unsigned v[] = { (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday, (unsigned)tm.tm_hour,
			       (unsigned)tm.tm_min, (unsigned)tm.tm_sec };
	static const char sep[] = "--T::";
	out[0] = (char)('0' + y / 1000), out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10), out[3] = (char)('0' + y % 10);
	for (int i = 0; i < 5; i++) {
		out[4 + 3 * i] = sep[i];
		out[5 + 3 * i] = (char)('0' + v[i] / 10);
		out[6 + 3 * i] = (char)('0' + v[i] % 10);
	}
	out[19] = 'Z';
	out[20] = 0;
}

void tstamp_now(tstamp_t out)
{
	tstamp_format(time(NULL), out);
}

uint64_t tstamp_mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool tm_valid(const struct tm *tm)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (tm->tm_year < 0 || tm->tm_year > 8099 || tm->tm_mon < 0 || tm->tm_mon > 11)
		return false;
	int y = tm->tm_year + 1900;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int md = tm->tm_mon == 1 && !leap ? 28 : mdays[tm->tm_mon];
	return tm->tm_mday >= 1 && tm->tm_mday <= md && tm->tm_hour >= 0 && tm->tm_hour <= 23 &&
	       tm->tm_min >= 0 && tm->tm_min <= 59 && tm->tm_sec >= 0 && tm->tm_sec <= 60;
}

/* Read exactly n digits. */
static bool digits(const char **p, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v = x;
	return true;
}

int tstamp_parse(const char *s, time_t *t)
{
	struct tm tm = { 0 };
	const char *p = s;
	int y, mo, d, h, mi, se;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d) || *p++ != 'T' || !digits(&p, 2, &h) || *p++ != ':' ||
	    !digits(&p, 2, &mi) || *p++ != ':' || !digits(&p, 2, &se) || *p++ != 'Z' || *p)
		return -EINVAL;
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
	if (!tm_valid(&tm))
		return -EINVAL;
	*t = timegm(&tm);
	return 0;
}

/* Caller holds tz_lock. */
static void tz_select(const char *tz)
{
	if (strcmp(tz_current, tz) != 0) {
		snprintf(tz_current, sizeof(tz_current), "%s", tz);
		setenv("TZ", tz, 1);
		tzset();
	}
}

/* Caller holds tz_lock. */
static long tz_offset_locked(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

long tstamp_offset(const char *tz, time_t t)
{
	pthread_mutex_lock(&tz_lock);
	tz_select(tz);
	long off = tz_offset_locked(t);
	pthread_mutex_unlock(&tz_lock);
	return off;
}

/*
 * Parse the local forms tstamp_from_local accepts into tm; *offset gets the
 * explicit UTC offset in seconds and *has_offset says whether there was one.
 */
static int parse_local(const char *s, struct tm *tm, bool *has_offset, long *offset)
{
	const char *p = s;
	int a, b, c, h = 0, mi = 0, se = 0;

	memset(tm, 0, sizeof(*tm));
	*has_offset = false;
	*offset = 0;
	while (*p == ' ')
		p++;
	if (digits(&p, 4, &a) && *p == '-') { /* ISO 8601 */
		p++;
		if (!digits(&p, 2, &b) || *p++ != '-' || !digits(&p, 2, &c))
			return -EINVAL;
		tm->tm_year = a - 1900, tm->tm_mon = b - 1, tm->tm_mday = c;
	} else {
		p = s;
		while (*p == ' ')
			p++;
		if (!digits(&p, 2, &a) || *p++ != '/' || !digits(&p, 2, &b) || *p++ != '/' ||
		    !digits(&p, 4, &c))
			return -EINVAL;
		tm->tm_year = c - 1900, tm->tm_mon = b - 1, tm->tm_mday = a;
	}
	if (*p == 'T' || (*p == ' ' && isdigit((unsigned char)p[1]))) {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &se))
				return -EINVAL;
			if (*p == '.') /* fractions of a second are dropped */
				for (p++; isdigit((unsigned char)*p); p++)
					;
		}
	}
	if (*p == 'Z') {
		*has_offset = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (!digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
			return -EINVAL;
		*has_offset = true;
		*offset = sign * (oh * 3600L + om * 60L);
	}
	while (*p == ' ')
		p++;
	if (*p)
		return -EINVAL;
	tm->tm_hour = h, tm->tm_min = mi, tm->tm_sec = se;
	return tm_valid(tm) ? 0 : -EINVAL;
}

int tstamp_from_local(const char *tz, const char *s, time_t *t)
{
	struct tm tm;
	bool has_offset;
	long offset;

	if (parse_local(s, &tm, &has_offset, &offset) < 0)
		return -EINVAL;
	time_t wall = timegm(&tm); /* the wall time read as if it were UTC */
	if (has_offset) {
		*t = wall - offset;
		return 0;
	}

	/* The dates of a page or a file fall on few days: remember, per thread,
	 * days whose offset did not change from the day before to the day after,
	 * and convert the rest of such a day without the lock. */
	static _Thread_local char cache_tz[128];
	static _Thread_local struct {
		time_t day;
		long offset;
	} cache[TZ_CACHE_DAYS];
	time_t day = wall - ((wall % DAY_SEC) + DAY_SEC) % DAY_SEC;
	unsigned slot = (unsigned)((uint64_t)(day / DAY_SEC) % TZ_CACHE_DAYS);
	if (strcmp(cache_tz, tz) != 0) {
		if (strlen(tz) >= sizeof(cache_tz))
			cache_tz[0] = 0;
		else
			snprintf(cache_tz, sizeof(cache_tz), "%s", tz);
		for (int i = 0; i < TZ_CACHE_DAYS; i++)
			cache[i].day = -1;
	}
	if (cache_tz[0] && cache[slot].day == day) {
		*t = wall - cache[slot].offset;
		return 0;
	}

	pthread_mutex_lock(&tz_lock);
	tz_select(tz);
	long before = tz_offset_locked(wall - DAY_SEC);
	long after = tz_offset_locked(wall + DAY_SEC);
	time_t u1 = wall - before, u2 = wall - after;
	bool ok1 = tz_offset_locked(u1) == before, ok2 = tz_offset_locked(u2) == after;
	long edge0 = tz_offset_locked(day - DAY_SEC), edge1 = tz_offset_locked(day + 2 * DAY_SEC);
	pthread_mutex_unlock(&tz_lock);

	/* The same offset a day before the day and a day after it: no change in
	 * between (zones change at most twice a year), so the day is cacheable. */
	if (edge0 == edge1 && cache_tz[0]) {
		cache[slot].day = day;
		cache[slot].offset = edge0;
	}
	if (ok1 && ok2)
		*t = u1 < u2 ? u1 : u2; /* occurs twice: the first occurrence */
	else if (ok1 || ok2)
		*t = ok1 ? u1 : u2;
	else
		*t = u1; /* in a gap: the offset before the gap moves it forward by the gap */
	return 0;
}

int tstamp_to_local(const char *tz, time_t t, const char *fmt, char *out, size_t size)
{
	struct tm tm;
	pthread_mutex_lock(&tz_lock);
	tz_select(tz);
	localtime_r(&t, &tm);
	pthread_mutex_unlock(&tz_lock);
	return strftime(out, size, fmt, &tm) > 0 ? 0 : -EINVAL;
}
