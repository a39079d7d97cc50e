/* check.c - onboarding: credentials, endpoints, SFTP, data readiness, and what blocks go-live. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "merchant.h"
#include "sftp.h"
#include "wshop.h"

#define CHECK_RETRIES 2      /* a check should answer in seconds, not retry for minutes */
#define CHECK_EXAMPLES 5

/* The endpoints DOMAIN.md §1 asks merchants to authorize, with the SFTP folder that can replace each. */
static const struct {
	enum stream stream;
	const char *folder;
} endpoints[] = {
	{ STREAM_PRODUCTS, "products" },   { STREAM_SIZES, "products" },
	{ STREAM_DEPARTMENTS, "products" }, { STREAM_ATTRIBUTES, "products" },
	{ STREAM_ORDERS, "orders" },       { STREAM_RETURNS, "returns" },
	{ STREAM_RETURN_REASONS, "return_reasons" },
};

static const char *const sftp_folders[] = { "products", "orders", "returns", "return_reasons", "misc" };

static void block(json_t *report, const char *item, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void block(json_t *report, const char *item, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	json_array_append_new(json_object_get(report, "blocking"),
			      json_pack("{s:s,s:s}", "item", item, "what_to_do", what));
}

/* Authenticate, then ask each endpoint for its first page. */
static void check_api(struct merchant *mr, atomic_bool *stop, json_t *report)
{
	json_t *eps = json_object_get(report, "endpoints");
	struct wshop_opts o = {
		.api_url = mr->conf->wshop.api_url, .username = mr->conf->wshop.username,
		.password_file = mr->conf->wshop.password_file, .profile = mr->profile,
		.ratelimit = mr->shop.ratelimit, .tokens = mr->shop.tokens, .stop = stop,
		.log = { mr->conf->id, "check", 0 },
	};
	struct wshop *w = wshop_new(&o);
	if (!w)
		return;
	enum errclass e = wshop_authenticate(w);
	json_t *cred = json_pack("{s:s,s:s,s:I,s:s}", "status",
				 e == ERRC_NONE ? "accepted" : e == ERRC_AUTH ? "refused" : "failing",
				 "endpoint", mr->profile->auth_path, "http",
				 (json_int_t)wshop_last_http_status(w), "message", wshop_last_error(w));
	json_object_set_new(report, "credentials", cred);
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		enum stream s = endpoints[i].stream;
		const char *status = "not_checked", *msg = "credentials not accepted";
		long http = 0;
		if (e == ERRC_NONE) {
			json_t *records = NULL;
			enum errclass r = wshop_fetch_page(w, s, mr->profile->first_page, NULL, &records);
			json_decref(records);
			status = r == ERRC_NONE ? "authorized" : r == ERRC_UNAUTHORIZED ? "unauthorized"
											    : "failing";
			msg = wshop_last_error(w);
			http = wshop_last_http_status(w);
		}
		json_array_append_new(eps, json_pack("{s:s,s:s,s:s,s:I,s:s}", "endpoint",
						     mr->profile->streams[s].path, "stream", stream_name(s),
						     "status", status, "http", (json_int_t)http, "message", msg));
	}
	wshop_free(w);
}

static void check_sftp(const struct merchant_conf *m, json_t *report)
{
	const struct sftp_conf *c = &m->sftp;
	struct sftp_opts o = { .host = c->host, .port = c->port, .user = c->user, .key_file = c->key_file,
			       .known_hosts = c->known_hosts, .connect_timeout_ms = 10000,
			       .io_timeout_ms = 15000 };
	struct sftp *s;
	char err[1024] = "";
	int r = sftp_connect(&o, &s, err, sizeof(err));
	const char *status = r == SFTP_OK ? "ok" : r == SFTP_ECONNECT ? "unreachable"
			     : r == SFTP_EHOSTKEY ? "host_key" : r == SFTP_EAUTH ? "auth" : "failing";
	json_t *folders = json_object();
	if (r == SFTP_OK) {
		for (size_t i = 0; i < sizeof(sftp_folders) / sizeof(sftp_folders[0]); i++) {
			char path[2048];
			struct sftp_entry *e = NULL;
			size_t n = 0;
			snprintf(path, sizeof(path), "%s/%s", c->root, sftp_folders[i]);
			int lr = sftp_list(s, path, &e, &n, err, sizeof(err));
			sftp_entries_free(e, n);
			json_object_set_new(folders, sftp_folders[i], json_boolean(lr == SFTP_OK));
		}
		err[0] = 0;
		sftp_close(s);
	}
	json_object_set_new(report, "sftp", json_pack("{s:s,s:s,s:s,s:o}", "status", status, "root",
						      c->root, "message", err, "folders", folders));
}

/* One readiness finding from a query returning (count, example) rows. */
static void readiness(struct merchant *mr, json_t *report, const char *check, const char *sql,
		      const char *param, const char *message)
{
	sqlite3_stmt *q = store_stmt(mr->st, sql);
	if (!q)
		return;
	if (param)
		sqlite3_bind_text(q, 1, param, -1, SQLITE_STATIC);
	json_t *examples = json_array();
	json_int_t count = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		count = sqlite3_column_int64(q, 0);
		if (sqlite3_column_text(q, 1) && json_array_size(examples) < CHECK_EXAMPLES)
			json_array_append_new(examples, json_string((const char *)sqlite3_column_text(q, 1)));
	}
	sqlite3_reset(q);
	if (count == 0) {
		json_decref(examples);
		return;
	}
	json_array_append_new(json_object_get(report, "readiness"),
			      json_pack("{s:s,s:I,s:o,s:s}", "check", check, "count", count, "examples",
					examples, "message", message));
}

/* Each query returns the total count on every row, and one example id per row. */
static const char *SQL_SINGLE_VARIANT =
	"WITH one AS (SELECT product_id FROM variants GROUP BY product_id HAVING count(*) = 1)"
	" SELECT (SELECT count(*) FROM one), product_id FROM one LIMIT 5";
static const char *SQL_ORDER_LINES_UNKNOWN_PRODUCT =
	"WITH bad AS (SELECT DISTINCT product_id FROM order_lines"
	"             WHERE product_id NOT IN (SELECT product_id FROM products))"
	" SELECT (SELECT count(*) FROM bad), product_id FROM bad LIMIT 5";
static const char *SQL_ORDER_LINES_UNKNOWN_VARIANT =
	"WITH bad AS (SELECT DISTINCT variant_id FROM order_lines WHERE variant_id IS NOT NULL"
	"             AND variant_id NOT IN (SELECT variant_id FROM variants))"
	" SELECT (SELECT count(*) FROM bad), variant_id FROM bad LIMIT 5";
static const char *SQL_RETURN_LINES_UNKNOWN_PRODUCT =
	"WITH bad AS (SELECT DISTINCT product_id FROM return_lines"
	"             WHERE product_id NOT IN (SELECT product_id FROM products))"
	" SELECT (SELECT count(*) FROM bad), product_id FROM bad LIMIT 5";
static const char *SQL_RETURN_LINES_UNKNOWN_VARIANT =
	"WITH bad AS (SELECT DISTINCT variant_id FROM return_lines WHERE variant_id IS NOT NULL"
	"             AND variant_id NOT IN (SELECT variant_id FROM variants))"
	" SELECT (SELECT count(*) FROM bad), variant_id FROM bad LIMIT 5";
static const char *SQL_RETURN_LINES_UNLINKED =
	"WITH bad AS (SELECT return_id || ' line ' || line_no AS id FROM return_lines"
	"             WHERE order_line_no IS NULL ORDER BY return_id, line_no)"
	" SELECT (SELECT count(*) FROM bad), id FROM bad LIMIT 5";
static const char *SQL_REASONS_UNCLASSIFIED =
	"WITH bad AS (SELECT reason_id || coalesce(' ' || code, '') || coalesce(' \"' || label || '\"', '')"
	"             AS id FROM return_reasons WHERE fit IS NULL ORDER BY reason_id)"
	" SELECT (SELECT count(*) FROM bad), id FROM bad LIMIT 5";
static const char *SQL_ORDER_LINES_UNKNOWN_CURRENCY =
	"WITH bad AS (SELECT coalesce(l.currency, '(none)') AS id, count(*) AS n FROM order_lines l"
	"             WHERE l.currency IS NULL OR l.currency NOT IN (SELECT currency FROM currencies)"
	"             GROUP BY 1 ORDER BY 1)"
	" SELECT (SELECT sum(n) FROM bad), id FROM bad LIMIT 5";
static const char *SQL_LANGUAGE_MISSING =
	"SELECT 1, ?1 WHERE EXISTS (SELECT 1 FROM labels WHERE entity = 'product')"
	" AND NOT EXISTS (SELECT 1 FROM labels WHERE entity = 'product' AND lang = ?1)";

static void check_data(struct merchant *mr, json_t *report)
{
	readiness(mr, report, "single_variant", SQL_SINGLE_VARIANT, NULL,
		  "products with a single variant look one-size and get no recommendation; "
		  "export every size, out of stock too");
	readiness(mr, report, "order_lines_unknown_product", SQL_ORDER_LINES_UNKNOWN_PRODUCT, NULL,
		  "order lines name products that are not in the catalog (product_id must agree everywhere)");
	readiness(mr, report, "order_lines_unknown_variant", SQL_ORDER_LINES_UNKNOWN_VARIANT, NULL,
		  "order lines name variants that are not in the catalog");
	readiness(mr, report, "return_lines_unknown_product", SQL_RETURN_LINES_UNKNOWN_PRODUCT, NULL,
		  "return lines name products that are not in the catalog");
	readiness(mr, report, "return_lines_unknown_variant", SQL_RETURN_LINES_UNKNOWN_VARIANT, NULL,
		  "return lines name variants that are not in the catalog");
	readiness(mr, report, "return_lines_unlinked", SQL_RETURN_LINES_UNLINKED, NULL,
		  "return lines whose order line is not found (same order, then same variant, else "
		  "same sku): size_outcomes and order_line_outcomes cannot count them");
	readiness(mr, report, "return_reasons_unclassified", SQL_REASONS_UNCLASSIFIED, NULL,
		  "return reasons not classified too_small, too_large, other_fit or not_fit: list "
		  "their codes or ids in the [fit] section of the merchant's file");
	readiness(mr, report, "order_lines_unknown_currency", SQL_ORDER_LINES_UNKNOWN_CURRENCY, NULL,
		  "order lines whose currency is missing or not an ISO 4217 code: their unit price "
		  "is not converted (unit_price_minor is NULL; the source's text is in the raw layer)");
	for (int i = 0; i < mr->conf->n_languages; i++)
		readiness(mr, report, "language_missing", SQL_LANGUAGE_MISSING, mr->conf->languages[i],
			  "a configured language has no product text in the mirror: the shop does not "
			  "serve it, or the catalog has not synced yet");
}

/* Which streams the API cannot give, whether SFTP can, and what blocks go-live. */
static void conclude(const struct merchant_conf *m, json_t *report)
{
	json_t *cred = json_object_get(report, "credentials");
	const char *cs = json_string_value(json_object_get(cred, "status"));
	json_t *folders = json_object_get(json_object_get(report, "sftp"), "folders");
	const char *ss = json_string_value(json_object_get(json_object_get(report, "sftp"), "status"));
	bool sftp_ok = ss && strcmp(ss, "ok") == 0;

	if (m->has_wshop && strcmp(cs, "refused") == 0)
		block(report, "credentials", "WSHOP refused the API user %s: ask the merchant to check the "
					     "user's e-mail and password in the WSHOP back office",
		      m->wshop.username);
	else if (m->has_wshop && strcmp(cs, "failing") == 0)
		block(report, "credentials", "%s could not be asked (%s): check api_url and that the shop "
					     "answers, then run the check again",
		      m->wshop.api_url,
		      json_string_value(json_object_get(cred, "message")));

	json_t *ep;
	json_t *eps = json_object_get(report, "endpoints");
	for (size_t k = 0; k < sizeof(endpoints) / sizeof(endpoints[0]); k++) {
		ep = m->has_wshop ? json_array_get(eps, k) : NULL;
		const char *st = ep ? json_string_value(json_object_get(ep, "status")) : "not_configured";
		if (strcmp(st, "authorized") == 0)
			continue;
		const char *folder = endpoints[k].folder;
		bool via_sftp = m->has_sftp && sftp_ok && json_is_true(json_object_get(folders, folder));
		json_array_append_new(json_object_get(report, "needs_sftp"),
				      json_string(stream_name(endpoints[k].stream)));
		if (via_sftp)
			continue;
		const char *path = ep ? json_string_value(json_object_get(ep, "endpoint")) : NULL;
		if (ep && strcmp(st, "unauthorized") == 0)
			block(report, stream_name(endpoints[k].stream),
			      "endpoint %s is not authorized for this API user: ask the merchant to add it to "
			      "the user's permission profile in the WSHOP back office, or to drop %s CSV files "
			      "in the SFTP folder %s/",
			      path, folder, folder);
		else if (ep && strcmp(st, "not_checked") != 0)
			block(report, stream_name(endpoints[k].stream),
			      "endpoint %s fails (%s); if it persists, %s can come from SFTP %s/", path,
			      json_string_value(json_object_get(ep, "message")), stream_name(endpoints[k].stream),
			      folder);
		else if (!ep)
			block(report, stream_name(endpoints[k].stream),
			      "no [wshop] section: %s needs the SFTP folder %s/%s",
			      stream_name(endpoints[k].stream), m->has_sftp ? m->sftp.root : "(none)", folder);
	}
	if (m->has_sftp && !sftp_ok && json_array_size(json_object_get(report, "needs_sftp")))
		block(report, "sftp", "the SFTP server is needed but %s: %s",
		      strcmp(ss, "host_key") == 0 ? "its host key does not match known_hosts"
		      : strcmp(ss, "auth") == 0 ? "it refused the key" : "it cannot be reached",
		      json_string_value(json_object_get(json_object_get(report, "sftp"), "message")));
	json_object_set_new(report, "go_live",
			    json_boolean(json_array_size(json_object_get(report, "blocking")) == 0));
}

int check_run(const struct config *c, const struct merchant_conf *m, const struct merchant_shop *shop,
	      atomic_bool *stop, json_t **report)
{
	struct merchant *mr;
	char err[1024];
	int r = merchant_open(c, m, shop, &mr, err, sizeof(err));
	*report = NULL;
	if (r < 0)
		return r;
	json_t *rep = json_pack("{s:s,s:b,s:{s:s},s:[],s:[],s:{s:s},s:[],s:[]}", "merchant", m->id,
				"go_live", 0, "credentials", "status", "not_configured", "endpoints",
				"needs_sftp", "sftp", "status", "not_configured", "readiness", "blocking");
	if (m->has_wshop) {
		/* mr->profile is this merchant's own copy: a check asks once or twice, then tells. */
		mr->profile->retry_attempts = CHECK_RETRIES;
		check_api(mr, stop, rep);
	}
	if (m->has_sftp)
		check_sftp(m, rep);
	check_data(mr, rep);
	conclude(m, rep);
	merchant_close(mr);
	*report = rep;
	return 0;
}
