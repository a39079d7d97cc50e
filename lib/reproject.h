/* reproject.h - rebuild the API's canonical rows from the raw layer, without calling the API. */
#ifndef KLEEP_REPROJECT_H
#define KLEEP_REPROJECT_H

#include <stdint.h>

#include "config.h"
#include "profile.h"
#include "store.h"

/*
 * In one transaction: drop every canonical row whose source is the API and
 * project each raw API record again with the merchant's current settings
 * (product_id_field, parent_reference_field, languages), reference streams
 * first.  Used after such a setting changed.  *records gets how many records
 * were projected.  0, or a negative errno-style code with err saying why
 * (nothing is changed then).
 */
int reproject_run(struct store *st, const struct profile *p, const struct merchant_conf *m,
		  int64_t *records, char *err, size_t errlen);

#endif
