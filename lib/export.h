/* export.h - the canonical tables as CSV in DOMAIN.md §3's column contract, streamed. */
#ifndef KLEEP_EXPORT_H
#define KLEEP_EXPORT_H

#include <stdio.h>

#include <sqlite3.h>

/* The kinds export writes, as the SFTP folders name them. */
extern const char *const export_kinds[];

/*
 * Write kind ("products", "orders", "returns", "return_reasons") from the
 * mirror db to f: a header line, then one row per variant (products) or per
 * line (orders, returns), RFC 4180 quoting, UTF-8, CRLF line ends.  since
 * (an ISO 8601 or DD/MM/YYYY time, UTC unless it has an offset; NULL for all) keeps
 * records updated at or after it.  Constant memory:
 * rows go out as SQLite steps over them.  Returns the number of rows written,
 * or -EINVAL for an unknown kind, -EIO on a database or write error (err says which).
 */
long export_csv(sqlite3 *db, const char *kind, const char *since, FILE *f, char *err, size_t errlen);

/*
 * The dimensions template: one row per variant and measurement, with the
 * columns misc/dimensions_*.csv takes (product_id, variant_id, measurement,
 * value, unit) and value left empty for the merchant to fill in.
 * measurements is a comma-separated list (NULL: chest,waist,hips,length).
 * Rows written, or -EIO.
 */
long export_dimensions_template(sqlite3 *db, const char *measurements, const char *unit, FILE *f,
				char *err, size_t errlen);

#endif
