/* project.h - map one raw API record to canonical rows through the profile (DOMAIN.md §1 mapping). */
#ifndef KLEEP_PROJECT_H
#define KLEEP_PROJECT_H

#include <jansson.h>

#include "config.h"
#include "money.h"
#include "profile.h"
#include "store.h"
#include "stream.h"
#include "tstamp.h"

#define PROJECT_ID_MAX 256

/* What a projection needs; everything borrowed. */
struct project_ctx {
	struct store *st;
	const struct profile *p;
	const struct merchant_conf *m;
	struct money_memo *money; /* the caller's, for this connection; may be NULL */
	bool stored;              /* the record was in the mirror before this write: a hint
	                           * that its rows are too (canon_put_stored) */
};

/*
 * The record's natural id (stringified) and its modification time as UTC
 * text ("" when the record has none).  -EINVAL when the id is missing; 1 when
 * the time is there but does not parse (updated is "", err says so: the
 * record is kept, without a time); 0 otherwise.
 */
int project_identity(const struct project_ctx *c, enum stream s, json_t *rec,
		     char id[PROJECT_ID_MAX], tstamp_t updated, char *err, size_t errlen);

/*
 * Write rec's canonical rows (and child rows, replaced wholesale) with
 * source "api".  rec has been scrubbed of personal data already.  The caller
 * holds a transaction.  0, -EINVAL (err says what is wrong with the record),
 * or -EIO.
 */
int project_record(const struct project_ctx *c, enum stream s, json_t *rec, char *err, size_t errlen);

/* The source no longer has record id of stream s: remove its canonical rows
 * (a product is marked deactivated instead, so order history keeps it).  0 or -EIO. */
int project_forget(const struct project_ctx *c, enum stream s, const char *id);

/* After a reference stream changed, refresh the columns derived from it
 * (variants' size labels from sizes, products' category from departments).  0 or -EIO. */
int project_refresh(const struct project_ctx *c, enum stream s);

#endif
