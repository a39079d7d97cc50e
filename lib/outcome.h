/* outcome.h - what the outcome views (sql/008) take from configuration, written into the mirror. */
#ifndef KLEEP_OUTCOME_H
#define KLEEP_OUTCOME_H

#include <stddef.h>

#include "config.h"
#include "profile.h"
#include "store.h"

/*
 * Bring the mirror's configuration-derived tables up to date, in one
 * transaction: cancelled_statuses from the profile's order_status.cancelled
 * (p may be NULL for a merchant without [wshop]; then, or when p has no such
 * key, the list of the default profile of profile_dir, else of the built-in one), and every return reason's fit class with m's [fit]
 * section.  Run when a job opens the mirror, so a changed profile or [fit]
 * applies at the next job.  0, or a negative errno-style code with err
 * saying what failed.
 */
int outcome_prepare(struct store *st, const struct profile *p, const char *profile_dir,
		    const struct merchant_conf *m, char *err, size_t errlen);

#endif
