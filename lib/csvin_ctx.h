/* csvin_ctx.h - csvin's private parts: the state of one pass over one file, shared by
 * reading (csvin_read.c), checking (csvin_check.c) and writing (csvin_write.c).
 * Nothing outside those files and csvin.c includes it.
 */
#ifndef KLEEP_CSVIN_CTX_H
#define KLEEP_CSVIN_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <csv.h>

#include "buf.h"
#include "canon.h"
#include "csvin.h"
#include "money.h"
#include "tstamp.h"

#define VALUE_QUOTE_MAX 40 /* bytes of a bad value quoted back in a reject reason */
#define CSVIN_LINES_KNOWN_MAX 32 /* lines of one parent placed without a query */
/*
 * Caps of the buffers built from a record that is already within
 * CSVIN_ROW_MAX: they bound memory and are never reached by such a record.
 * JSON escapes a byte in at most 6 (cells, and the header's names as keys);
 * a parent row holds cells and normalized images, 2 bytes more per value;
 * a records id joins cells with a few words.
 */
#define CSVIN_JSON_MAX   (16 * (size_t)CSVIN_ROW_MAX)
#define CSVIN_PARENT_MAX (8 * (size_t)CSVIN_ROW_MAX)
#define CSVIN_KEY_MAX    ((size_t)CSVIN_ROW_MAX + 64)

/* ---- the column contract (DOMAIN.md §3); csvin_check.c holds its tables ---- */

enum ctype { T_TEXT, T_INT, T_POSINT, T_DECIMAL, T_DATE, T_BOOL, T_IMAGES, T_LANG };

enum col {
	C_PRODUCT_ID, C_VARIANT_ID, C_SKU, C_EAN, C_TITLE, C_DESCRIPTION, C_URL, C_IMAGES,
	C_CATEGORY, C_SIZE_LABEL, C_PARENT_REFERENCE, C_UPDATED_AT, C_DEACTIVATED,
	C_ORDER_ID, C_ORDERED_AT, C_QUANTITY, C_LINE_NO, C_PRICE, C_CURRENCY, C_STATUS,
	C_RETURN_ID, C_RETURNED_AT, C_REASON_ID, C_COMMENT, C_CODE, C_LABEL, C_LANG,
	C_MEASUREMENT, C_VALUE, C_UNIT, C_COUNT
};

/* ---- state of one pass over one file ---- */

#define NORM_LEN 48 /* a normalized number, date or flag */

struct ctx {
	struct store *st;
	const struct csvin_opts *o;
	struct csvin_result *res;
	bool dry;                  /* the second pass over a rejected file: rejects only */
	const struct tz *tz;
	const char *lang0;         /* the merchant's first language */
	tstamp_t now;

	struct csv_parser p;
	bool parser_live;
	unsigned char delim;
	int64_t line;              /* the physical line being fed, from 1 */
	int64_t row_line;          /* where the record being parsed started */
	bool skip_line;            /* after a parse error: drop input up to the next LF */
	int fatal;                 /* negative errno: stop, roll back */
	bool file_bad;             /* rejected whole; res->reason says why */
	int64_t whole_line;        /* the line that reason is about: the header's, or 0 */

	/* the header */
	bool header_done;
	int ncols;
	char *names[CSVIN_COLS_MAX];
	int at[C_COUNT];           /* cell index of each known column, -1 when absent */

	/* the record being parsed: its cells, each NUL-terminated, in one buffer
	 * capped at CSVIN_ROW_MAX */
	struct buf row;
	size_t off[CSVIN_COLS_MAX], flen[CSVIN_COLS_MAX];
	int n;
	const char *bad;           /* why the record is bad while still parsing, or NULL */

	/* the record being applied */
	const char *v[C_COUNT];    /* normalized value of each known column, NULL when empty */
	char norm[C_COUNT][NORM_LEN];
	char *images;              /* normalized images JSON, owned */
	struct buf json;           /* the raw record's JSON text, reused row after row */
	char *keys;                /* the header's names as JSON keys, escaped once; owned */
	size_t key_off[CSVIN_COLS_MAX + 1]; /* where key i starts in keys */
	char reason[256];
	struct {
		char in[40];
		tstamp_t out;
	} dcache[C_COUNT];         /* the last date converted per column: dates repeat */
	struct money_memo money;   /* the last currency's exponent */
	struct buf key;            /* the records id being built */
	char *fill_sku, *fill_size; /* looked up from variants, owned */
	/* the parent row (product, order, return) last written, serialized, and whether
	 * it was applied: the lines of one parent come together and repeat it */
	struct buf parent[2];      /* [0] the last written, [1] the one being compared */
	bool parent_valid, parent_applied;
	enum canon_table parent_table;
	/* The lines of that parent, while all of them are known here: it was new
	 * to the mirror at its first line, and every line of it since came from
	 * this file, one row after the other.  Placing a line then needs no query. */
	bool lines_known;
	int n_known, known_at;     /* known_at: the line the current row was placed on */
	struct {
		char *variant, *sku;   /* as stored in line known[i] (line_no i + 1); owned */
	} known[CSVIN_LINES_KNOWN_MAX];
	int64_t rows_since_tick;
};

/* Cell i of the record being parsed (NUL-terminated). */
static inline const char *cell(const struct ctx *x, int i)
{
	return x->row.data + x->off[i];
}

/* csvin.c: failures and rejects. */
void csvin_fatal(struct ctx *x, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void csvin_db_fatal(struct ctx *x);
void csvin_file_reject(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void csvin_reject(struct ctx *x, int64_t line, const char *why);

/* csvin_read.c: one pass over the file through libcsv, calling check and write per record. */
int csvin_read_pass(struct ctx *x, FILE *f);
void csvin_row_reset(struct ctx *x);

/* csvin_check.c: the header against the kind's columns; one record's values normalized
 * into x->v (NULL when it is good, else why it is bad). */
void csvin_check_header(struct ctx *x);
const char *csvin_check_row(struct ctx *x);

/* csvin_write.c: one good record into records and the canonical tables.  0 or a negative errno. */
int csvin_write_row(struct ctx *x);
/* Forget the known lines (frees them). */
void csvin_lines_forget(struct ctx *x);

#endif
