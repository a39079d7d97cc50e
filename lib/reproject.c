/* reproject.c - replay the raw layer through the projection: a mapping fixed later needs no re-sync. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "project.h"
#include "reproject.h"
#include "sync.h"

/* Children go with their parents (ON DELETE CASCADE); labels have no parent row. */
static const char *SQL_CLEAR =
	"DELETE FROM products WHERE source = 'api';"
	"DELETE FROM variants WHERE source = 'api';"
	"DELETE FROM labels WHERE source = 'api';"
	"DELETE FROM orders WHERE source = 'api';"
	"DELETE FROM order_lines WHERE source = 'api';"
	"DELETE FROM returns WHERE source = 'api';"
	"DELETE FROM return_lines WHERE source = 'api';"
	"DELETE FROM return_reasons WHERE source = 'api';"
	"DELETE FROM sizes WHERE source = 'api';"
	"DELETE FROM departments WHERE source = 'api';"
	"DELETE FROM attributes WHERE source = 'api';";

static const char *SQL_RECORDS =
	"SELECT id, json, deleted FROM records WHERE stream = ?1 AND source = 'api' ORDER BY rowid";

int reproject_run(struct store *st, const struct profile *p, const struct merchant_conf *m,
		  int64_t *records, char *err, size_t errlen)
{
	struct money_memo money = { "", 0 };
	struct project_ctx pc = { st, p, m, &money, false };
	int r = -EIO;

	*records = 0;
	if (store_begin(st) < 0 || store_exec(st, SQL_CLEAR) < 0)
		goto fail;
	for (int k = 0; k < STREAM_API_COUNT; k++) {
		enum stream s = sync_order[k];
		sqlite3_stmt *q = store_stmt(st, SQL_RECORDS);
		if (!q)
			goto fail;
		sqlite3_bind_text(q, 1, stream_name(s), -1, SQLITE_STATIC);
		int rc;
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			json_error_t jerr;
			json_t *rec = json_loads((const char *)sqlite3_column_text(q, 1), 0, &jerr);
			if (!rec) {
				snprintf(err, errlen, "%s record %s: stored JSON does not parse: %s",
					 stream_name(s), sqlite3_column_text(q, 0), jerr.text);
				sqlite3_reset(q);
				r = -EPROTO;
				goto out;
			}
			r = project_record(&pc, s, rec, err, errlen);
			json_decref(rec);
			/* What the source no longer serves stays forgotten. */
			if (r == 0 && sqlite3_column_int(q, 2))
				r = project_forget(&pc, s, (const char *)sqlite3_column_text(q, 0));
			if (r < 0) {
				sqlite3_reset(q);
				goto out;
			}
			(*records)++;
		}
		sqlite3_reset(q);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (store_commit(st) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", store_errmsg(st));
	r = -EIO;
out:
	store_rollback(st);
	return r;
}
