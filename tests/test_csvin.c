/* test_csvin.c - CSV ingestion: the bad-CSV corpus, line numbers, the reject ratio, latest wins. */
#include "unit.h"
#include "unit_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "csvin.h"
#include "store.h"

struct fx {
	char *dir;
	struct store *st;
	struct merchant_conf m;
	struct tz *zones;
	int n_files;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unit_mirror_open(&f->dir, &f->st);
	unit_merchant(&f->m, "m", &f->zones);
	f->m.has_sftp = true;
	f->m.sftp.max_reject_ratio = 0.05;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	unit_mirror_close(f->dir, f->st);
	tz_free(f->zones);
	free(f);
	return 0;
}

/* Ingest content (len bytes, or strlen when len < 0) as a file of kind named path. */
static int ingest_n(struct fx *f, enum csvin_kind kind, const char *path, const char *file_time,
		    const char *content, long len, struct csvin_result *res)
{
	char fpath[512];
	snprintf(fpath, sizeof(fpath), "%s/in-%d.csv", f->dir, f->n_files++);
	FILE *w = fopen(fpath, "wb");
	assert_non_null(w);
	size_t n = len < 0 ? strlen(content) : (size_t)len;
	assert_int_equal(fwrite(content, 1, n, w), n);
	fclose(w);
	FILE *in = fopen(fpath, "rb");
	assert_non_null(in);
	struct csvin_opts o = {
		.kind = kind,
		.path = path,
		.file_time = file_time,
		.m = &f->m,
		.run_id = 1,
	};
	int r = csvin_apply(f->st, &o, in, res);
	fclose(in);
	return r;
}

static int ingest(struct fx *f, enum csvin_kind kind, const char *path, const char *content,
		  struct csvin_result *res)
{
	return ingest_n(f, kind, path, "2025-01-15T01:00:00Z", content, -1, res);
}

/* The first column of the first row of a query, as an integer. */
static long long q_int(struct fx *f, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(store_db(f->st)));
	long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
	sqlite3_finalize(s);
	return v;
}

/* The same, as text ("(null)" for NULL, "(none)" without a row); static buffer. */
static const char *q_text(struct fx *f, const char *fmt, ...)
{
	static char out[1024];
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(store_db(f->st)));
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		snprintf(out, sizeof(out), "%s", t ? t : "(null)");
	} else {
		snprintf(out, sizeof(out), "(none)");
	}
	sqlite3_finalize(s);
	return out;
}

#define RET_HEADER "return_id,order_id,returned_at,product_id,quantity,variant_id,reason_id,comment\n"

static void t_plain_returns(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/a.csv",
				RET_HEADER
				"7001,99001,2025-01-10,1042,1,50211,2,trop petit\n"
				"7001,99001,2025-01-10,1042,1,50212,3,\n"
				"7002,99002,2025-01-11 14:30:00,1043,2,50300,,\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(res.rows, 3);
	assert_int_equal(res.applied, 3);
	assert_int_equal(res.rejects, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), 3);
	/* a date alone is midnight in Paris; lines numbered in file order */
	assert_string_equal(q_text(f, "SELECT returned_at FROM returns WHERE return_id='7001'"),
			    "2025-01-09T23:00:00Z");
	assert_string_equal(q_text(f, "SELECT returned_at FROM returns WHERE return_id='7002'"),
			    "2025-01-11T13:30:00Z");
	assert_string_equal(q_text(f, "SELECT variant_id FROM return_lines WHERE return_id='7001'"
				      " AND line_no=2"), "50212");
	assert_string_equal(q_text(f, "SELECT comment FROM return_lines WHERE return_id='7001'"
				      " AND line_no=2"), "(null)");
	/* the source time is the file's when there is no updated_at */
	assert_string_equal(q_text(f, "SELECT updated_at FROM returns WHERE return_id='7002'"),
			    "2025-01-15T01:00:00Z");
	assert_int_equal(q_int(f, "SELECT count(*) FROM records WHERE stream='returns'"
				  " AND source='sftp'"), 3);
	assert_string_equal(q_text(f, "SELECT json FROM records WHERE id='7001:variant:50211'"),
			    "{\"return_id\":\"7001\",\"order_id\":\"99001\",\"returned_at\":"
			    "\"2025-01-10\",\"product_id\":\"1042\",\"quantity\":\"1\",\"variant_id\":"
			    "\"50211\",\"reason_id\":\"2\",\"comment\":\"trop petit\"}");
}

/* Every line of the mirror, one text: return_id:line_no:variant_id:sku:comment in key order. */
static const char *lines_text(struct fx *f)
{
	return q_text(f, "SELECT group_concat(t, ' ') FROM (SELECT return_id || ':' || line_no || ':'"
			 " || ifnull(variant_id, '-') || ':' || ifnull(sku, '-') || ':' || ifnull(comment, '-')"
			 " AS t FROM return_lines ORDER BY return_id, line_no)");
}

/*
 * A new parent's lines are placed from memory while its rows come together;
 * an existing one's by the mirror.  Both place them alike: the same file
 * applied to an empty mirror and again over itself leaves the same lines.
 */
static void t_lines_placed_alike(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	static const char content[] =
		"return_id,order_id,returned_at,product_id,quantity,variant_id,sku,comment\n"
		"8001,1,2025-01-10,1042,1,501,,a\n"
		"8001,1,2025-01-10,1042,1,502,,b\n"
		"8001,2,2025-01-11,1042,1,501,,c\n"   /* the same parent, other values */
		"8001,2,2025-01-11,1042,1,,SKU9,d\n"
		"8001,2,2025-01-11,1042,1,,SKU9,e\n"
		"8002,3,2025-01-12,1043,1,501,,f\n"
		"8001,2,2025-01-11,1042,1,503,,g\n";  /* back to a parent held by now */
	static const char want[] = "8001:1:501:-:c 8001:2:502:-:b 8001:3:-:SKU9:e 8001:4:503:-:g "
				   "8002:1:501:-:f";
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/a.csv", content, &res), 0);
	assert_int_equal(res.applied, 7);
	assert_string_equal(lines_text(f), want);
	assert_int_equal(ingest_n(f, CSVIN_RETURNS, "returns/b.csv", "2025-01-16T01:00:00Z", content,
				  -1, &res), 0);
	assert_int_equal(res.applied, 7);
	assert_string_equal(lines_text(f), want);
}

/* The raw record keeps every cell exactly, whatever it holds, as valid JSON. */
static void t_raw_record_json_escapes(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/a.csv",
				RET_HEADER
				"7001,99001,2025-01-10,1042,1,50211,2,\"say \"\"hi\"\"\\ é,\tTシャツ\n"
				"second line\x01\"\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(q_int(f, "SELECT json_valid(json) FROM records"), 1);
	assert_string_equal(q_text(f, "SELECT json_extract(json, '$.comment') FROM records"),
			    "say \"hi\"\\ é,\tTシャツ\nsecond line\x01");
	assert_string_equal(q_text(f, "SELECT comment FROM return_lines"),
			    "say \"hi\"\\ é,\tTシャツ\nsecond line\x01");
	assert_int_equal(q_int(f, "SELECT json_extract(json, '$.reason_id') FROM records"), 2);
}

static void t_bom_semicolon_crlf(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/a.csv",
				"\xEF\xBB\xBFOrder_ID;ORDERED_AT;product_id;quantity;Price;line_no;Currency\r\n"
				"1;2025-01-10T10:00:00+01:00;P1;2;19,90;1;EUR\r\n"
				"1;2025-01-10T10:00:00+01:00;P2;1;5;2;EUR\r\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(res.applied, 2);
	/* A unit price in cents, exact; the row's text stays in the raw layer. */
	assert_int_equal(q_int(f, "SELECT unit_price_minor FROM order_lines WHERE line_no=1"), 1990);
	assert_int_equal(q_int(f, "SELECT unit_price_minor FROM order_lines WHERE line_no=2"), 500);
	assert_string_equal(q_text(f, "SELECT currency FROM order_lines WHERE line_no=1"), "EUR");
	assert_string_equal(q_text(f, "SELECT ordered_at FROM orders"), "2025-01-10T09:00:00Z");
	/* no carriage return left in the last cell */
	assert_int_equal(q_int(f, "SELECT line_no FROM order_lines WHERE product_id='P2'"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records WHERE json LIKE '%%\r%%'"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records WHERE json LIKE '%%Order_ID%%'"), 2);
}

static void t_quoted_newlines_lines(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/q.csv",
				RET_HEADER                                          /* line 1 */
				"7001,1,2025-01-10,P,1,V1,2,\"two\nlines, \"\"quoted\"\"\"\n" /* 2-3 */
				"7002,1,2025-01-10,P,1,V1,2,\"three\r\n\r\nlines\"\r\n" /* 4-6 */
				"\n"                                                /* 7 blank */
				"7003,1,not a date,P,1,V1,2,\n"                     /* 8 bad */
				"7004,1,2025-01-10,P,x,V1,2,\n"                     /* 9 bad */
				"7005,1,2025-01-10,P,1,V1,2,ok",                    /* 10, no LF */
				&res), 0);
	assert_int_equal(res.rows, 5);
	assert_int_equal(res.rejects, 2);
	/* 2 of 5 is more than 5%: rejected, the rejects still recorded */
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM csv_rejects WHERE path='returns/q.csv'"), 2);
	assert_int_equal(q_int(f, "SELECT min(line) FROM csv_rejects"), 8);
	assert_int_equal(q_int(f, "SELECT max(line) FROM csv_rejects"), 9);
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=8"),
			       "returned_at 'not a date' is not a date"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=9"),
			       "quantity 'x' is not an integer"));

	/* with a lenient ratio the good rows land, embedded newlines intact */
	f->m.sftp.max_reject_ratio = 0.5;
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/q2.csv",
				RET_HEADER
				"7001,1,2025-01-10,P,1,V1,2,\"two\nlines, \"\"quoted\"\"\"\n"
				"7003,1,not a date,P,1,V1,2,\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED_WITH_REJECTS);
	assert_string_equal(q_text(f, "SELECT comment FROM return_lines WHERE return_id='7001'"),
			    "two\nlines, \"quoted\"");
	assert_int_equal(q_int(f, "SELECT line FROM csv_rejects WHERE path='returns/q2.csv'"), 4);
}

static void t_missing_column(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/m.csv",
				"return_id,order_id,product_id,quantity\n7001,1,P,1\n", &res), 0);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_non_null(strstr(res.reason, "missing required column returned_at"));
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 0);
	assert_int_equal(q_int(f, "SELECT line FROM csv_rejects WHERE path='returns/m.csv'"), 1);
}

static void t_extra_columns(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_PRODUCTS, "products/x.csv",
				"product_id,variant_id,colour,sku,title,images,deactivated,updated_at\n"
				"P1,V1,blue,SKU-1,T-shirt,a.jpg | b.jpg,true,2025-01-01 10:00:00\n"
				"P1,V2,blue,SKU-2,T-shirt,\"[\"\"a.jpg\"\"]\",0,2025-01-01 10:00:00\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(q_int(f, "SELECT count(*) FROM products"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM variants WHERE product_id='P1'"), 2);
	assert_string_equal(q_text(f, "SELECT images FROM products"), "[\"a.jpg\"]");
	assert_int_equal(q_int(f, "SELECT deactivated FROM products"), 0);
	assert_string_equal(q_text(f, "SELECT updated_at FROM products"), "2025-01-01T09:00:00Z");
	assert_string_equal(q_text(f, "SELECT value FROM labels WHERE entity='product' AND"
				      " field='name' AND lang='fr'"), "T-shirt");
	/* the extra column is kept in the raw record */
	assert_non_null(strstr(q_text(f, "SELECT json FROM records WHERE id='variant:V1'"),
			       "\"colour\":\"blue\""));
}

static void t_empty_and_header_only(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/empty.csv", "", &res), 0);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_non_null(strstr(res.reason, "empty file"));
	assert_int_equal(q_int(f, "SELECT line FROM csv_rejects WHERE path='orders/empty.csv'"), 0);

	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/blank.csv", "\xEF\xBB\xBF\n \n", &res), 0);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_non_null(strstr(res.reason, "no header"));

	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/header.csv",
				"order_id,ordered_at,product_id,quantity,sku\n", &res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(res.rows, 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM csv_rejects WHERE path='orders/header.csv'"),
			 0);
}

static void t_invalid_utf8(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	f->m.sftp.max_reject_ratio = 0.5;
	assert_int_equal(ingest(f, CSVIN_RETURN_REASONS, "return_reasons/u.csv",
				"reason_id,code,label,lang\n"
				"1,too_small,Trop petit,fr\n"
				"2,too_big,Trop \xE9norme,fr\n"   /* Latin-1, not UTF-8 */
				"3,other,Autre \xC3\xA9t\xC3\xA9,fr\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED_WITH_REJECTS);
	assert_int_equal(res.rejects, 1);
	assert_int_equal(q_int(f, "SELECT line FROM csv_rejects"), 3);
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects"), "label is not valid UTF-8"));
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_reasons"), 2);
}

static void t_reasons_languages(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_RETURN_REASONS, "return_reasons/l.csv",
				"reason_id,code,label,lang\n"
				"2,too_small,Too small,EN\n"
				"2,,Trop petit,fr\n"
				"3,too_big,Too big,en\n"
				"4,other,Autre,\n",
				&res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	/* the first language wins the canonical label; the code survives a row without it */
	assert_string_equal(q_text(f, "SELECT label FROM return_reasons WHERE reason_id='2'"),
			    "Trop petit");
	assert_string_equal(q_text(f, "SELECT code FROM return_reasons WHERE reason_id='2'"),
			    "too_small");
	assert_string_equal(q_text(f, "SELECT label FROM return_reasons WHERE reason_id='3'"),
			    "Too big");
	assert_string_equal(q_text(f, "SELECT lang FROM labels WHERE entity_id='4'"), "fr");
	assert_int_equal(q_int(f, "SELECT count(*) FROM labels WHERE entity='return_reason'"), 4);
}

/* A returns file of rows records, bad of them with an impossible date, spread evenly. */
static char *returns_with_bad(int rows, int bad)
{
	size_t cap = 100 + (size_t)rows * 80;
	char *s = malloc(cap);
	size_t n = (size_t)snprintf(s, cap, "%s", RET_HEADER);
	for (int i = 0; i < rows; i++)
		n += (size_t)snprintf(s + n, cap - n, "R%d,O%d,%s,P1,1,V1,2,\n", i, i,
				      i % (rows / bad) == 1 ? "31/02/2025" : "15/01/2025");
	return s;
}

static void t_ratio_5_percent(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	char *csv = returns_with_bad(100, 5);
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/r5.csv", csv, &res), 0);
	free(csv);
	/* 5/100 is not more than 0.05 */
	assert_int_equal(res.outcome, CSVIN_APPLIED_WITH_REJECTS);
	assert_int_equal(res.applied, 95);
	assert_int_equal(res.rejects, 5);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 95);
	assert_int_equal(q_int(f, "SELECT count(*) FROM csv_rejects"), 5);
	/* row i is on line i + 2 */
	assert_int_equal(q_int(f, "SELECT min(line) FROM csv_rejects"), 3);
	/* DD/MM/YYYY in Paris */
	assert_string_equal(q_text(f, "SELECT returned_at FROM returns WHERE return_id='R0'"),
			    "2025-01-14T23:00:00Z");
}

static void t_ratio_50_percent(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	char *csv = returns_with_bad(100, 50);
	assert_int_equal(ingest(f, CSVIN_RETURNS, "returns/r50.csv", csv, &res), 0);
	free(csv);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_int_equal(res.applied, 0);
	assert_int_equal(res.rejects, 50);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM csv_rejects WHERE path='returns/r50.csv'"), 50);
}

static void t_latest_wins(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest_n(f, CSVIN_RETURNS, "returns/d1.csv", "2025-01-14T01:00:00Z",
				  RET_HEADER "7001,1,2025-01-10,P,1,V1,2,first\n"
					     "7002,1,2025-01-10,P,1,V1,2,only in the first\n", -1,
				  &res), 0);
	assert_int_equal(ingest_n(f, CSVIN_RETURNS, "returns/d2.csv", "2025-01-15T01:00:00Z",
				  RET_HEADER "7001,1,2025-01-10,P,3,V1,5,second\n", -1, &res), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), 2);
	assert_string_equal(q_text(f, "SELECT comment FROM return_lines WHERE return_id='7001'"),
			    "second");
	assert_int_equal(q_int(f, "SELECT quantity FROM return_lines WHERE return_id='7001'"), 3);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records"), 2);

	/* a row whose updated_at is older than what is stored keeps the newer one */
	assert_int_equal(ingest(f, CSVIN_PRODUCTS, "products/p1.csv",
				"product_id,variant_id,title,updated_at\nP1,V1,New,2025-02-01\n",
				&res), 0);
	assert_int_equal(ingest(f, CSVIN_PRODUCTS, "products/p2.csv",
				"product_id,variant_id,title,updated_at\nP1,V1,Old,2025-01-01\n"
				"P1,V2,Old,2025-01-01\n", &res), 0);
	assert_string_equal(q_text(f, "SELECT title FROM products"), "New");
	assert_int_equal(q_int(f, "SELECT count(*) FROM variants"), 2); /* the new V2 still lands */
}

static void t_line_no_and_sku_fill(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_PRODUCTS, "products/p.csv",
				"product_id,variant_id,sku,size_label\nP1,V1,SKU-M,M\nP1,V2,SKU-L,L\n",
				&res), 0);
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/o1.csv",
				"order_id,ordered_at,product_id,quantity,variant_id\n"
				"O1,2025-01-10,P1,1,V1\nO1,2025-01-10,P1,1,V2\n", &res), 0);
	assert_string_equal(q_text(f, "SELECT sku FROM order_lines WHERE line_no=2"), "SKU-L");
	assert_string_equal(q_text(f, "SELECT size_label FROM order_lines WHERE line_no=1"), "M");
	/* a later file with only the second line updates that line, not the first */
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/o2.csv",
				"order_id,ordered_at,product_id,quantity,variant_id\n"
				"O1,2025-01-10,P1,4,V2\n", &res), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM order_lines"), 2);
	assert_int_equal(q_int(f, "SELECT quantity FROM order_lines WHERE variant_id='V2'"), 4);
	assert_int_equal(q_int(f, "SELECT line_no FROM order_lines WHERE variant_id='V2'"), 2);
	/* no line_no, variant_id or sku: a bad row */
	f->m.sftp.max_reject_ratio = 1;
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/o3.csv",
				"order_id,ordered_at,product_id,quantity,variant_id\n"
				"O2,2025-01-10,P1,4,\n", &res), 0);
	assert_int_equal(res.rejects, 1);
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects"), "tell the line apart"));
}

static void t_dimensions(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	assert_int_equal(ingest(f, CSVIN_DIMENSIONS, "misc/dimensions_a.csv",
				"product_id;variant_id;measurement;value;unit\n"
				"P1;V1;chest;52,5;cm\nP1;;length;70;cm\nP1;V1;chest;53;cm\n", &res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(q_int(f, "SELECT count(*) FROM dimensions"), 2);
	assert_string_equal(q_text(f, "SELECT value FROM dimensions WHERE key_kind='variant'"), "53.0");
	assert_string_equal(q_text(f, "SELECT key_id FROM dimensions WHERE key_kind='product'"), "P1");
	assert_int_equal(ingest(f, CSVIN_DIMENSIONS, "misc/dimensions_b.csv",
				"measurement,value\nchest,1\n", &res), 0);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_non_null(strstr(res.reason, "variant_id or product_id"));
}

static void t_malformed_and_caps(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	f->m.sftp.max_reject_ratio = 1;
	size_t big = CSVIN_FIELD_MAX + 100;
	size_t cap = big + 1000;
	char *csv = malloc(cap);
	size_t n = (size_t)snprintf(csv, cap, "%s", RET_HEADER);
	n += (size_t)snprintf(csv + n, cap - n, "1,1,2025-01-10,P,1,V,2,bad\"quote\n"); /* 2 */
	n += (size_t)snprintf(csv + n, cap - n, "2,1,2025-01-10,P,1,V,2,\"x\"y\n");     /* 3 */
	n += (size_t)snprintf(csv + n, cap - n, "3,1,2025-01-10,P,1,V,2,");              /* 4 */
	memset(csv + n, 'z', big);
	n += big;
	n += (size_t)snprintf(csv + n, cap - n, "\n4,1,2025-01-10,P,1,V,2,ok\n");      /* 5 */
	n += (size_t)snprintf(csv + n, cap - n, "5,1,2025-01-10,P,1,V,2\n");            /* 6 */
	n += (size_t)snprintf(csv + n, cap - n, "6,1,2025-01-10,P,1,V,2,,,\n");         /* 7 */
	n += (size_t)snprintf(csv + n, cap - n, "7,1,2025-01-10,P,1,V,2,x,y\n");        /* 8 */
	n += (size_t)snprintf(csv + n, cap - n, "8,1,2025-01-10,P,1,V,2,\"open\nquote"); /* 9 */
	assert_int_equal(ingest_n(f, CSVIN_RETURNS, "returns/bad.csv", NULL, csv, (long)n, &res), 0);
	free(csv);
	assert_int_equal(res.rows, 8);
	assert_int_equal(res.applied, 2); /* rows 4 and 6 (trailing empty cells are fine) */
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns WHERE return_id IN ('4','6')"), 2);
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=2"), "quot"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=3"), "quot"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=4"), "1 MiB"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=6"), "7 fields"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=8"), "9 fields"));
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=9"), "not closed"));
	/* no source time at all: the row is still applied, updated_at unknown */
	assert_string_equal(q_text(f, "SELECT updated_at FROM returns WHERE return_id='4'"), "(null)");
}

/* Cells each under the cell cap that together pass the record cap: that row alone is refused. */
static void t_record_cap(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	f->m.sftp.max_reject_ratio = 1;
	size_t cell = CSVIN_FIELD_MAX - 100, cells = CSVIN_ROW_MAX / cell + 1;
	size_t cap = cells * (cell + 1) + 1000;
	char *csv = malloc(cap);
	size_t n = (size_t)snprintf(csv, cap, "%s", RET_HEADER);
	n += (size_t)snprintf(csv + n, cap - n, "1,1,2025-01-10,P,1,V,2,ok\n"); /* 2 */
	for (size_t i = 0; i < cells; i++) {                                    /* 3 */
		memset(csv + n, 'z', cell);
		n += cell;
		csv[n++] = i + 1 < cells ? ',' : '\n';
	}
	n += (size_t)snprintf(csv + n, cap - n, "2,1,2025-01-10,P,1,V,2,ok\n"); /* 4 */
	assert_int_equal(ingest_n(f, CSVIN_RETURNS, "returns/big.csv", NULL, csv, (long)n, &res), 0);
	free(csv);
	assert_int_equal(res.rows, 3);
	assert_int_equal(res.applied, 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns WHERE return_id IN ('1','2')"), 2);
	assert_non_null(strstr(q_text(f, "SELECT reason FROM csv_rejects WHERE line=3"), "4 MiB"));
}

static bool stop_now = true;

static void t_stop(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	char fpath[512];
	snprintf(fpath, sizeof(fpath), "%s/stop.csv", f->dir);
	FILE *w = fopen(fpath, "w");
	fputs(RET_HEADER "1,1,2025-01-10,P,1,V,2,\n", w);
	fclose(w);
	FILE *in = fopen(fpath, "r");
	atomic_bool stop = stop_now;
	struct csvin_opts o = { .kind = CSVIN_RETURNS, .path = "returns/s.csv", .m = &f->m,
				.stop = &stop };
	assert_int_equal(csvin_apply(f->st, &o, in, &res), -EAGAIN);
	fclose(in);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 0);
}

static int commit_hook_calls;

static int commit_hook(struct store *st, const struct csvin_result *r, void *arg)
{
	(void)st;
	(void)arg;
	commit_hook_calls++;
	return r->outcome == CSVIN_REJECTED ? 0 : -EIO;
}

static void t_before_commit(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	char fpath[512];
	snprintf(fpath, sizeof(fpath), "%s/hook.csv", f->dir);
	FILE *w = fopen(fpath, "w");
	fputs(RET_HEADER "1,1,2025-01-10,P,1,V,2,\n", w);
	fclose(w);
	int fd = open(fpath, O_RDONLY);
	struct csvin_opts o = { .kind = CSVIN_RETURNS, .path = "returns/h.csv", .m = &f->m,
				.before_commit = commit_hook };
	/* a failing hook rolls the file back */
	assert_int_equal(csvin_apply_fd(f->st, &o, fd, &res), -EIO);
	close(fd);
	assert_int_equal(commit_hook_calls, 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM records"), 0);
}

/* ---- a large file: secondary indexes set aside and built again (bulkload.h) ---- */

#include "bulkload.h"

/* The mirror's indexes, names and definitions, in one string (static buffer). */
static const char *index_set(struct fx *f)
{
	return q_text(f, "SELECT group_concat(name || ' ' || coalesce(sql, ''), '; ') FROM"
			 " (SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name)");
}

/* rows return lines, two per return, every bad-th row (0: none) with an impossible date. */
static char *returns_big(int rows, int bad)
{
	size_t cap = 100 + (size_t)rows * 64;
	char *s = malloc(cap);
	size_t n = (size_t)snprintf(s, cap, "%s", RET_HEADER);
	for (int i = 0; i < rows; i++)
		n += (size_t)snprintf(s + n, cap - n, "R%d,O%d,%s,P%d,1,V%d,%d,\n", i / 2, i / 2,
				      bad && i % bad == 0 ? "31/02/2025" : "15/01/2025", i % 50, i,
				      i % 7);
	return s;
}

/* Whether return_lines_reason, and the partial return_lines_unfilled, existed when the
 * load's tick came; -1: no tick came. */
static int tick_saw_index, tick_saw_partial;

/* The tick during the load (every CSVIN_TICK_ROWS records): are the indexes there? */
static void index_tick(void *arg)
{
	struct fx *f = arg;
	tick_saw_index = q_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
					 " AND name = 'return_lines_reason'") == 1;
	tick_saw_partial = q_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
				    " AND name = 'return_lines_unfilled'") == 1;
}

static int failing_hook(struct store *st, const struct csvin_result *r, void *arg)
{
	(void)st;
	(void)r;
	(void)arg;
	return -EIO;
}

static int ingest_hooked(struct fx *f, const char *path, const char *csv, bool fail,
			 struct csvin_result *res)
{
	char fpath[512];
	snprintf(fpath, sizeof(fpath), "%s/in-%d.csv", f->dir, f->n_files++);
	FILE *w = fopen(fpath, "w");
	fputs(csv, w);
	fclose(w);
	FILE *in = fopen(fpath, "r");
	struct csvin_opts o = { .kind = CSVIN_RETURNS, .path = path, .m = &f->m, .run_id = 1,
				.tick = index_tick, .tick_arg = f,
				.before_commit = fail ? failing_hook : NULL };
	tick_saw_index = -1;
	int r = csvin_apply(f->st, &o, in, res);
	fclose(in);
	return r;
}

static void t_bulk_rebuilds_indexes(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	int rows = 3 * BULKLOAD_MIN_ROWS / 2;
	char before[1024];
	snprintf(before, sizeof(before), "%s", index_set(f));
	/* an order line that the return lines of R0 find by their variants */
	assert_int_equal(ingest(f, CSVIN_ORDERS, "orders/o.csv",
				"order_id,ordered_at,product_id,quantity,variant_id,line_no\n"
				"O0,2025-01-01,P0,1,V9,1\nO0,2025-01-01,P1,1,V1,2\n", &res), 0);
	char *csv = returns_big(rows, 0);
	assert_int_equal(ingest_hooked(f, "returns/big.csv", csv, false, &res), 0);
	free(csv);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	assert_int_equal(res.applied, rows);
	assert_int_equal(tick_saw_index, 0); /* the load went without it */
	assert_int_equal(tick_saw_partial, 1); /* a partial index stays: no rebuild scan for it */
	/* the same indexes as before, and each agrees with its table */
	assert_string_equal(index_set(f), before);
	assert_string_equal(q_text(f, "PRAGMA integrity_check"), "ok");
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), rows);
	assert_int_equal(q_int(f, "SELECT count(*) FROM returns"), rows / 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines INDEXED BY return_lines_reason"
				  " WHERE reason_id = '3'"), (rows + 3) / 7);
	assert_int_equal(q_int(f, "SELECT order_line_no FROM return_lines WHERE return_id = 'R0'"
				  " AND variant_id = 'V1'"), 2);
	/* a file of fewer rows than BULKLOAD_MIN_ROWS keeps the indexes while it loads */
	csv = returns_big(BULKLOAD_MIN_ROWS - 1, 0);
	assert_int_equal(ingest_hooked(f, "returns/small.csv", csv, false, &res), 0);
	free(csv);
	assert_int_equal(tick_saw_index, 1);
	assert_string_equal(index_set(f), before);
}

static void t_bulk_rolled_back(void **state)
{
	struct fx *f = *state;
	struct csvin_result res;
	int rows = 3 * BULKLOAD_MIN_ROWS / 2;
	char before[1024];
	snprintf(before, sizeof(before), "%s", index_set(f));
	/* a failing commit hook: the load is rolled back with the indexes it set aside */
	char *csv = returns_big(rows, 0);
	assert_int_equal(ingest_hooked(f, "returns/big.csv", csv, true, &res), -EIO);
	free(csv);
	assert_int_equal(tick_saw_index, 0);
	assert_string_equal(index_set(f), before);
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), 0);
	/* too many bad rows: only the rejects stay, and the indexes */
	csv = returns_big(rows, 2);
	assert_int_equal(ingest_hooked(f, "returns/bad.csv", csv, false, &res), 0);
	free(csv);
	assert_int_equal(res.outcome, CSVIN_REJECTED);
	assert_string_equal(index_set(f), before);
	assert_string_equal(q_text(f, "PRAGMA integrity_check"), "ok");
	assert_int_equal(q_int(f, "SELECT count(*) FROM return_lines"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM csv_rejects"), rows / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_plain_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(t_lines_placed_alike, setup, teardown),
		cmocka_unit_test_setup_teardown(t_raw_record_json_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(t_bom_semicolon_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(t_quoted_newlines_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(t_missing_column, setup, teardown),
		cmocka_unit_test_setup_teardown(t_extra_columns, setup, teardown),
		cmocka_unit_test_setup_teardown(t_empty_and_header_only, setup, teardown),
		cmocka_unit_test_setup_teardown(t_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reasons_languages, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ratio_5_percent, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ratio_50_percent, setup, teardown),
		cmocka_unit_test_setup_teardown(t_latest_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(t_line_no_and_sku_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(t_dimensions, setup, teardown),
		cmocka_unit_test_setup_teardown(t_malformed_and_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(t_record_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(t_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(t_bulk_rebuilds_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(t_bulk_rolled_back, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
