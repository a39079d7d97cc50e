/* civil.h - proleptic Gregorian calendar arithmetic, without the C library's time-zone lock. */
#ifndef KLEEP_CIVIL_H
#define KLEEP_CIVIL_H

#include <stdbool.h>
#include <stdint.h>

#define CIVIL_DAY_SEC 86400

/* Days since 1970-01-01 of year y, month m (1..12), day d (1..31); any y that fits. */
int64_t civil_days(int64_t y, int m, int d);

/* The date of day number days (since 1970-01-01). */
void civil_date(int64_t days, int64_t *y, int *m, int *d);

/* Day of the week of day number days, 0 = Sunday. */
int civil_weekday(int64_t days);

bool civil_leap(int64_t y);

/* Days in month m (1..12) of year y. */
int civil_month_days(int64_t y, int m);

/* Floor division of seconds into days: the day number holding instant t. */
int64_t civil_day_of(int64_t t);

#endif
