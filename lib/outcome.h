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
#define OUTCOME_LINE_LEN 24 /* a line number as text */

/*
 * The order line a return line returns (return_lines.order_line_no), as text
 * for canon_put: in order order_id, the first line with variant_id, else the
 * first with sku.  *out points into buf, or is NULL when there is none (yet:
 * outcome_relink ties it when its order comes).  0, or -EIO when the mirror
 * cannot be read.
 */
int outcome_order_line(struct store *st, const char *order_id, const char *variant_id,
		       const char *sku, char buf[OUTCOME_LINE_LEN], const char **out);

/*
 * After order order_id's lines were written or deleted: tie its return lines
 * again to the lines it has now.  The caller holds a transaction.  0 or -EIO.
 */
int outcome_relink(struct store *st, const char *order_id);

int outcome_prepare(struct store *st, const struct profile *p, const char *profile_dir,
		    const struct merchant_conf *m, char *err, size_t errlen);

#endif
