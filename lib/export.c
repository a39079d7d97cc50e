/* export.c - stream canonical rows out as RFC 4180 CSV, one SQLite step at a time. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "tstamp.h"
#include "tz.h"

const char *const export_kinds[] = { "products", "orders", "returns", "return_reasons", NULL };

/* Each query's column names are the CSV header, in DOMAIN.md §3's names. */
static const char *SQL_PRODUCTS =
	"SELECT p.product_id, v.variant_id, v.sku, v.ean, p.title, p.description, p.url, p.images,"
	"       p.category, v.size_label, p.parent_reference, p.updated_at, p.deactivated"
	" FROM products p JOIN variants v USING (product_id)"
	" WHERE ?1 IS NULL OR p.updated_at >= ?1 ORDER BY p.product_id, v.variant_id";
/* price is the unit price as decimal text, from its minor units and the currency's
 * exponent, exactly (integer arithmetic): 1990 EUR is 19.90, -5 EUR is -0.05. */
static const char *SQL_ORDERS =
	"SELECT o.order_id, o.ordered_at, l.product_id, l.quantity, l.line_no, l.variant_id, l.sku,"
	"       l.size_label,"
	"       CASE WHEN l.unit_price_minor IS NULL OR c.exponent IS NULL THEN NULL"
	"            WHEN c.exponent = 0 THEN CAST(l.unit_price_minor AS TEXT)"
	"            ELSE printf('%s%d.%0*d', CASE WHEN l.unit_price_minor < 0 THEN '-' ELSE '' END,"
	"                        abs(l.unit_price_minor) / p.f, c.exponent, abs(l.unit_price_minor) % p.f)"
	"       END AS price,"
	"       coalesce(l.currency, o.currency) AS currency, o.status, o.updated_at"
	" FROM orders o JOIN order_lines l USING (order_id)"
	" LEFT JOIN currencies c ON c.currency = l.currency"
	" LEFT JOIN (SELECT 1 AS e, 10 AS f UNION ALL SELECT 2, 100 UNION ALL SELECT 3, 1000"
	"            UNION ALL SELECT 4, 10000) p ON p.e = c.exponent"
	" WHERE ?1 IS NULL OR o.updated_at >= ?1 ORDER BY o.order_id, l.line_no";
static const char *SQL_RETURNS =
	"SELECT r.return_id, r.order_id, r.returned_at, l.product_id, l.quantity, l.line_no,"
	"       l.variant_id, l.sku, l.size_label, l.reason_id, l.comment, r.updated_at"
	" FROM returns r JOIN return_lines l USING (return_id)"
	" WHERE ?1 IS NULL OR r.updated_at >= ?1 ORDER BY r.return_id, l.line_no";
/* One row per language: the label of each; a reason without labels still gets its row. */
static const char *SQL_RETURN_REASONS =
	"SELECT r.reason_id, r.code, coalesce(l.value, r.label) AS label, l.lang"
	" FROM return_reasons r LEFT JOIN labels l"
	"   ON l.entity = 'return_reason' AND l.entity_id = r.reason_id AND l.field = 'label'"
	" ORDER BY r.reason_id, l.lang";
static const char *SQL_TEMPLATE =
	"SELECT product_id, variant_id FROM variants ORDER BY product_id, variant_id";

/* One field, quoted when it must be (RFC 4180), and when it begins or ends with a
 * blank: csvin's reader (libcsv) trims blanks around unquoted fields. */
static void put_field(FILE *f, const char *v)
{
	if (!v)
		return;
	size_t n = strlen(v);
	bool blank_edge = n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t');
	if (!blank_edge && !strpbrk(v, ",;\"\r\n")) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

static long write_rows(sqlite3_stmt *s, FILE *f)
{
	int n = sqlite3_column_count(s), rc;
	long rows = 0;
	for (int i = 0; i < n; i++) {
		fputs(i ? "," : "", f);
		put_field(f, sqlite3_column_name(s, i));
	}
	fputs("\r\n", f);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < n; i++) {
			fputs(i ? "," : "", f);
			put_field(f, (const char *)sqlite3_column_text(s, i));
		}
		fputs("\r\n", f);
		rows++;
	}
	if (rc != SQLITE_DONE || ferror(f))
		return -EIO;
	return rows;
}

long export_csv(sqlite3 *db, const char *kind, const char *since, FILE *f, char *err, size_t errlen)
{
	const char *sql = strcmp(kind, "products") == 0 ? SQL_PRODUCTS
			  : strcmp(kind, "orders") == 0 ? SQL_ORDERS
			  : strcmp(kind, "returns") == 0 ? SQL_RETURNS
			  : strcmp(kind, "return_reasons") == 0 ? SQL_RETURN_REASONS : NULL;
	sqlite3_stmt *s;
	tstamp_t since_utc;
	if (!sql) {
		snprintf(err, errlen, "cannot export '%s': products, orders, returns or return_reasons", kind);
		return -EINVAL;
	}
	if (since) {
		/* Compared as the mirror's UTC text: any other spelling must be converted first. */
		time_t t;
		if (tstamp_from_local(tz_utc(), since, &t) < 0) {
			snprintf(err, errlen, "--since '%s' is not a time: write 2026-11-01 or "
				 "2026-11-01T08:00:00Z (UTC unless an offset is given)", since);
			return -EINVAL;
		}
		tstamp_format(t, since_utc);
		since = since_utc;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		return -EIO;
	}
	if (since && sqlite3_bind_parameter_count(s) > 0)
		sqlite3_bind_text(s, 1, since, -1, SQLITE_STATIC);
	long rows = write_rows(s, f);
	if (rows < 0)
		snprintf(err, errlen, "%s", ferror(f) ? "cannot write the output" : sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return rows;
}

long export_dimensions_template(sqlite3 *db, const char *measurements, const char *unit, FILE *f,
				char *err, size_t errlen)
{
	char *list = strdup(measurements ? measurements : "chest,waist,hips,length");
	const char *names[64];
	int n = 0;
	char *save = NULL;
	for (char *m = strtok_r(list, ", ", &save); m && n < 64; m = strtok_r(NULL, ", ", &save))
		names[n++] = m;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db, SQL_TEMPLATE, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		free(list);
		return -EIO;
	}
	long rows = 0;
	int rc;
	fputs("product_id,variant_id,measurement,value,unit\r\n", f);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < n; i++) {
			put_field(f, (const char *)sqlite3_column_text(s, 0));
			fputc(',', f);
			put_field(f, (const char *)sqlite3_column_text(s, 1));
			fputc(',', f);
			put_field(f, names[i]);
			fputs(",,", f);
			put_field(f, unit ? unit : "cm");
			fputs("\r\n", f);
			rows++;
		}
	}
	if (rc != SQLITE_DONE || ferror(f)) {
		snprintf(err, errlen, "%s", ferror(f) ? "cannot write the output" : sqlite3_errmsg(db));
		rows = -EIO;
	}
	sqlite3_finalize(s);
	free(list);
	return rows;
}
