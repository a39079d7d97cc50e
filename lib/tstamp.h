/* tstamp.h - the mirror's UTC timestamps, and shop-local times converted to them. */
#ifndef KLEEP_TSTAMP_H
#define KLEEP_TSTAMP_H

#include <stdint.h>
#include <time.h>

struct tz;

/* "YYYY-MM-DDTHH:MM:SSZ" plus NUL */
#define TSTAMP_LEN 21
typedef char tstamp_t[TSTAMP_LEN];

/* Format t as UTC text into out. */
void tstamp_format(time_t t, tstamp_t out);

/* Now, as UTC text. */
void tstamp_now(tstamp_t out);

/* Parse "YYYY-MM-DDTHH:MM:SSZ"; 0 or -EINVAL. */
int tstamp_parse(const char *s, time_t *t);

/*
 * Shop-local wall time -> UTC, in the zone tz (borrowed; tz_utc() for UTC).  s is "YYYY-MM-DD HH:MM:SS",
 * "YYYY-MM-DDTHH:MM:SS", "YYYY-MM-DD" (midnight), "DD/MM/YYYY[ HH:MM[:SS]]", or an
 * ISO 8601 time with an offset or Z (then tz is not used).  A wall time that
 * occurs twice (autumn) is its first occurrence; one that does not exist
 * (spring gap) moves forward by the gap (DOMAIN.md §1).  0 or -EINVAL.
 * Thread-safe without a lock: every function here only reads tz, and none
 * reads or writes the environment.
 */
int tstamp_from_local(const struct tz *tz, const char *s, time_t *t);

/* UTC t -> shop-local wall time in tz, formatted with strftime's fmt (%Z is the
 * zone's abbreviation, %z its offset).  0 or -EINVAL. */
int tstamp_to_local(const struct tz *tz, time_t t, const char *fmt, char *out, size_t size);

/* The zone's UTC offset in seconds at instant t. */
long tstamp_offset(const struct tz *tz, time_t t);

/* Monotonic clock in microseconds. */
uint64_t tstamp_mono_usec(void);

#endif
