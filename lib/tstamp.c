/* tstamp.c - UTC text timestamps, and shop-local times converted through a zone's table.
 *
 * Dates are counted by hand (civil.c) and zones come from the tables loaded
 * with the config (tz.c): no call here takes the C library's time-zone lock
 * or touches TZ, so workers convert side by side.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "civil.h"
#include "tstamp.h"
#include "tz.h"

#define YEAR_MAX 9999

/* t as broken-down time at offset off seconds east of UTC; false past year 9999 or before 0. */
static bool tm_at(int64_t t, long off, struct tm *tm)
{
	int64_t local = t + off, day = civil_day_of(local), y;
	int m, d;
	civil_date(day, &y, &m, &d);
	if (y < 0 || y > YEAR_MAX)
		return false;
	int64_t sec = local - day * CIVIL_DAY_SEC;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = (int)y - 1900, tm->tm_mon = m - 1, tm->tm_mday = d;
	tm->tm_hour = (int)(sec / 3600), tm->tm_min = (int)(sec / 60 % 60), tm->tm_sec = (int)(sec % 60);
	tm->tm_wday = civil_weekday(day);
	tm->tm_yday = (int)(day - civil_days(y, 1, 1));
	tm->tm_gmtoff = off;
	return true;
}

/* tm's fields counted as seconds since the epoch, as if it were UTC (tm is valid). */
static int64_t tm_seconds(const struct tm *tm)
{
	return civil_days(tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday) * CIVIL_DAY_SEC +
	       tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
}

void tstamp_format(time_t t, tstamp_t out)
{
	struct tm tm;
	if (!tm_at(t, 0, &tm)) {
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
	if (tm->tm_year < 0 || tm->tm_year > YEAR_MAX - 1900 || tm->tm_mon < 0 || tm->tm_mon > 11)
		return false;
	int md = civil_month_days(tm->tm_year + 1900, tm->tm_mon + 1);
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
	*t = (time_t)tm_seconds(&tm);
	return 0;
}

long tstamp_offset(const struct tz *tz, time_t t)
{
	struct tz_local l;
	tz_at(tz, t, &l);
	return l.utoff;
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

int tstamp_from_local(const struct tz *tz, const char *s, time_t *t)
{
	struct tm tm;
	bool has_offset;
	long offset;

	if (parse_local(s, &tm, &has_offset, &offset) < 0)
		return -EINVAL;
	int64_t wall = tm_seconds(&tm); /* the wall time read as if it were UTC */
	*t = (time_t)(has_offset ? wall - offset : tz_from_wall(tz, wall));
	return 0;
}

int tstamp_to_local(const struct tz *tz, time_t t, const char *fmt, char *out, size_t size)
{
	struct tz_local l;
	struct tm tm;
	tz_at(tz, t, &l);
	if (!tm_at(t, l.utoff, &tm))
		return -EINVAL;
	tm.tm_isdst = l.isdst;
	tm.tm_zone = l.abbr;
	return strftime(out, size, fmt, &tm) > 0 ? 0 : -EINVAL;
}
