/* unit_sql.h - query helpers shared by the unit tests that look into a mirror. */
#ifndef KLEEP_UNIT_SQL_H
#define KLEEP_UNIT_SQL_H

#include <sqlite3.h>

#include "unit.h"

/* The first column of the first row, as an integer. */
static inline int unit_query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Every row of a query, columns joined by '|' (NULL as "~"), rows by '\n'; the caller frees. */
static inline char *unit_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	while (sqlite3_step(s) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(s); i++) {
			const char *v = (const char *)sqlite3_column_text(s, i);
			fprintf(m, "%s%s", i ? "|" : "", v ? v : "~");
		}
		fputc('\n', m);
	}
	sqlite3_finalize(s);
	fclose(m);
	return out;
}

static inline void unit_expect_rows(sqlite3 *db, const char *sql, const char *want)
{
	char *got = unit_rows(db, sql);
	if (strcmp(got, want) != 0) {
		print_error("%s\n--- got:\n%s--- want:\n%s", sql, got, want);
		free(got);
		fail();
	}
	free(got);
}

#endif
