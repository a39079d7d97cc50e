/* outcome.c - keep cancelled_statuses and the reasons' fit classes as the configuration says. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fit.h"
#include "outcome.h"

#define OUTCOME_STATUSES_KEY "order_status.cancelled"

static const char *SQL_STATUS_COUNT = "SELECT count(*) FROM cancelled_statuses";
static const char *SQL_STATUS_HAS = "SELECT 1 FROM cancelled_statuses WHERE status = ?1";
static const char *SQL_STATUS_CLEAR = "DELETE FROM cancelled_statuses";
static const char *SQL_STATUS_ADD = "INSERT OR IGNORE INTO cancelled_statuses (status) VALUES (?1)";

/* One row's first column as an integer (-1 when there is no row), or -EIO. */
static int64_t query_int(struct store *st, const char *sql, const char *param)
{
	sqlite3_stmt *q = store_stmt(st, sql);
	if (!q)
		return -EIO;
	if (param)
		sqlite3_bind_text(q, 1, param, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? v : -EIO;
}

static int run(struct store *st, const char *sql, const char *param)
{
	return query_int(st, sql, param) == -EIO ? -EIO : 0;
}

/* Replace cancelled_statuses with the list, unless it holds that list already. */
static int put_statuses(struct store *st, json_t *list)
{
	size_t i;
	json_t *v;
	bool same = query_int(st, SQL_STATUS_COUNT, NULL) == (int64_t)json_array_size(list);
	json_array_foreach(list, i, v)
		same = same && query_int(st, SQL_STATUS_HAS, json_string_value(v)) == 1;
	if (same)
		return 0;
	if (run(st, SQL_STATUS_CLEAR, NULL) < 0)
		return -EIO;
	json_array_foreach(list, i, v)
		if (run(st, SQL_STATUS_ADD, json_string_value(v)) < 0)
			return -EIO;
	return 0;
}

/* The profile's list of cancelled statuses (borrowed; NULL when it has none), or -EINVAL. */
static int statuses_of(const struct profile *p, json_t **list, char *err, size_t errlen)
{
	size_t i;
	json_t *v;
	*list = profile_path_get(p->root, OUTCOME_STATUSES_KEY);
	bool good = !*list || json_is_array(*list);
	json_array_foreach(*list, i, v)
		good = good && json_string_length(v) > 0;
	if (good)
		return 0;
	snprintf(err, errlen, "profile %s: %s must be a list of order statuses (texts)", p->name,
		 OUTCOME_STATUSES_KEY);
	return -EINVAL;
}

/* The rule of sql/008's return_line_links view, for one return line being written. */
static const char *SQL_ORDER_LINE =
	"SELECT coalesce((SELECT min(line_no) FROM order_lines WHERE order_id = ?1 AND variant_id = ?2),"
	"                (SELECT min(line_no) FROM order_lines WHERE order_id = ?1 AND sku = ?3))";

int outcome_order_line(struct store *st, const char *order_id, const char *variant_id,
		       const char *sku, char buf[OUTCOME_LINE_LEN], const char **out)
{
	*out = NULL;
	if (!order_id || (!variant_id && !sku))
		return 0;
	sqlite3_stmt *q = store_stmt(st, SQL_ORDER_LINE);
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, order_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, variant_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, sku, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
		snprintf(buf, OUTCOME_LINE_LEN, "%lld", (long long)sqlite3_column_int64(q, 0));
		*out = buf;
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Only the return lines whose link changes are written. */
static const char *SQL_RELINK =
	"UPDATE return_lines SET order_line_no = k.order_line_no FROM return_line_links k"
	" WHERE return_lines.order_id = ?1 AND k.return_id = return_lines.return_id"
	" AND k.line_no = return_lines.line_no AND return_lines.order_line_no IS NOT k.order_line_no";

/* Most orders have no return: a probe of the index is cheaper than an UPDATE that finds nothing. */
static const char *SQL_HAS_RETURNS = "SELECT 1 FROM return_lines WHERE order_id = ?1 LIMIT 1";

int outcome_relink(struct store *st, const char *order_id)
{
	if (!order_id)
		return 0;
	int64_t has = query_int(st, SQL_HAS_RETURNS, order_id);
	if (has < -1)
		return -EIO;
	return has == 1 ? run(st, SQL_RELINK, order_id) : 0;
}

int outcome_prepare(struct store *st, const struct profile *p, const char *profile_dir,
		    const struct merchant_conf *m, char *err, size_t errlen)
{
	struct profile *builtin = NULL;
	int r = -EINVAL;

	err[0] = 0;
	/* Without [wshop], or with a profile of its own that predates the key: the default's. */
	if (!p || !profile_path_get(p->root, OUTCOME_STATUSES_KEY)) {
		p = NULL;
		FILE *devnull = fopen("/dev/null", "w");
		if (devnull && profile_load(profile_dir, "default", NULL, 0, &builtin, devnull) == 0)
			p = builtin;
		if (devnull)
			fclose(devnull);
		if (!p) {
			snprintf(err, errlen, "the default profile does not load");
			return -EINVAL;
		}
	}
	json_t *list;
	if (statuses_of(p, &list, err, errlen) < 0)
		goto out;
	json_t *none = json_array();
	r = -EIO;
	if (store_begin(st) == 0 && put_statuses(st, list ? list : none) == 0 &&
	    fit_refresh(st, m->fit) == 0 && store_commit(st) == 0)
		r = 0;
	else {
		snprintf(err, errlen, "cannot bring cancelled_statuses and return_reasons.fit up to date: %s",
			 store_errmsg(st));
		store_rollback(st);
	}
	json_decref(none);
out:
	profile_free(builtin);
	return r;
}
