/* fit.h - classify return reasons: too small, too large, another fit problem, or not about fit. */
#ifndef KLEEP_FIT_H
#define KLEEP_FIT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

enum fit_class {
	FIT_NONE = -1,   /* unclassified */
	FIT_TOO_SMALL,
	FIT_TOO_LARGE,
	FIT_OTHER_FIT,   /* length, shape, "wrong size"... */
	FIT_NOT_FIT,     /* damaged, changed mind, late... */
	FIT_CLASS_COUNT
};

#define FIT_TEXT_MAX 512 /* bytes of a code or label searched; the rest is ignored */

/* "too_small", "too_large", "other_fit", "not_fit" (also the [fit] keys); NULL for FIT_NONE. */
const char *fit_class_name(enum fit_class f);
/* The class named s, or FIT_NONE. */
enum fit_class fit_class_from_name(const char *s);

/*
 * The default class of a reason from its code (may be NULL) and its labels
 * in any language (n texts, NULL entries skipped), matched against the
 * phrases of lib/fit/phrases.json.  FIT_NONE when nothing matches, or when
 * the built-in phrases cannot be read (a build error the unit tests catch).
 */
enum fit_class fit_classify(const char *code, const char *const *labels, size_t n);

/*
 * The next item of a [fit] list ("R07, 2"): copies it, trimmed, to tok
 * (len bytes, truncated) and returns where the rest starts, or NULL when
 * the list is done.  An empty item ("R07,,2") is returned as "".
 */
const char *fit_list_next(const char *list, char *tok, size_t len);

/* Whether list has item name (compared without regard to case); false for a NULL list or name. */
bool fit_list_has(const char *list, const char *name);

/*
 * The merchant's own class for a reason: overrides[c] is the [fit] list of
 * class c (reason ids or codes, NULL when unset).  A listed id wins over a
 * listed code.  FIT_NONE when the reason is not listed.
 */
enum fit_class fit_override(char *const overrides[FIT_CLASS_COUNT], const char *reason_id,
			    const char *code);

/*
 * Classify return reason reason_id of the mirror (its code and every label
 * it has) and store the class in return_reasons.fit, with fit_source
 * 'config' (overrides) or 'default'.  The caller holds a transaction or
 * accepts one per statement.  0 or -EIO.
 */
int fit_reason_update(struct store *st, char *const overrides[FIT_CLASS_COUNT],
		      const char *reason_id);

/* Classify every reason of the mirror again (the [fit] section may have changed).
 * The caller holds a transaction.  0, -ENOMEM or -EIO. */
int fit_refresh(struct store *st, char *const overrides[FIT_CLASS_COUNT]);

#endif
