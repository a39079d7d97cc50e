/* tz.h - IANA time zones read from their TZif files (RFC 8536) into immutable tables. */
#ifndef KLEEP_TZ_H
#define KLEEP_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One zone: its transitions, its local time types and the footer's POSIX TZ
 * rule for instants past the last transition.  Built once (at config load,
 * before the worker pool starts, or at reload into a new config) and never
 * written again: any thread may read it without a lock.  Nothing here reads
 * or writes the environment's TZ, so conversions never race with getenv.
 */
struct tz;

/* Local time at one instant. */
struct tz_local {
	long utoff;       /* seconds east of UTC */
	bool isdst;
	const char *abbr; /* "CEST", "+1030": borrowed from the zone, lives as long as it */
};

/*
 * Load zone name (e.g. "Europe/Paris") from $TZDIR, or /usr/share/zoneinfo
 * when TZDIR is unset or empty, read at this call.  0 and *out (freed with
 * tz_free), or -ENOENT when there is no such zone (a name that would climb out
 * of the folder, a folder, a file that is not TZif), -EINVAL when the file is
 * damaged or uses leap seconds ("right/" zones), -ENOMEM; err says why.
 */
int tz_load(const char *name, struct tz **out, char *err, size_t errlen);

/*
 * The zone name from the list *zones (owned by the caller, freed with
 * tz_free), loaded and added to it the first time: merchants sharing a zone
 * share one table.  *out is borrowed from the list.  Errors as tz_load.
 */
int tz_get(struct tz **zones, const char *name, const struct tz **out, char *err, size_t errlen);

/* Free a zone and every zone after it in its list; NULL is fine. */
void tz_free(struct tz *zones);

/* UTC, always there (static; never freed). */
const struct tz *tz_utc(void);

const char *tz_name(const struct tz *z);

/* The local time type in force at instant t (seconds since the epoch). */
void tz_at(const struct tz *z, int64_t t, struct tz_local *out);

/*
 * The instant whose local wall clock reads wall (a wall time counted as if it
 * were UTC seconds).  A wall time that occurs twice is its first occurrence;
 * one that a change skips moves forward by the change (DOMAIN.md §1).
 */
int64_t tz_from_wall(const struct tz *z, int64_t wall);

#endif
