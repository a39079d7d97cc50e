/* csvin_read.c - reading a CSV file: blocks, the BOM, the delimiter, libcsv, one record's cells.
 *
 * See csvin.c for why the input is fed one physical line at a time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include "canon.h"
#include "csvin_ctx.h"
#include "tstamp.h"
#include "utf8.h"

#define READ_BLOCK (64 * 1024)
#define CSV_BLOCK  4096 /* libcsv grows its cell buffer by this much */
#define ROW_PARSER_NOT_BEGUN 0 /* libcsv's ROW_NOT_BEGUN: the parser stands between records */

/* libcsv grows its cell buffer through this: refusing is how a cell is capped. */
static void *capped_realloc(void *p, size_t size)
{
	if (size > CSVIN_FIELD_MAX + 1)
		return NULL;
	return realloc(p, size);
}

static int parser_start(struct ctx *x)
{
	if (x->parser_live)
		csv_free(&x->p);
	x->parser_live = false;
	if (csv_init(&x->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		return -ENOMEM;
	csv_set_delim(&x->p, x->delim);
	csv_set_realloc_func(&x->p, capped_realloc);
	csv_set_blk_size(&x->p, CSV_BLOCK);
	x->parser_live = true;
	return 0;
}

void csvin_row_reset(struct ctx *x)
{
	buf_reset(&x->row);
	x->n = 0;
	x->bad = NULL;
	free(x->images);
	x->images = NULL;
	free(x->fill_sku);
	free(x->fill_size);
	x->fill_sku = x->fill_size = NULL;
}

static void on_cell(void *s, size_t len, void *data)
{
	struct ctx *x = data;
	if (x->bad || x->fatal || x->file_bad)
		return;
	if (x->n == CSVIN_COLS_MAX) {
		x->bad = "more than 512 fields";
		return;
	}
	size_t at = x->row.len;
	/* Each cell ends in its own NUL, so the next cell starts after it. */
	int r = buf_add(&x->row, s, len);
	if (r == 0)
		r = buf_add(&x->row, "", 1);
	if (r == -EMSGSIZE) {
		x->bad = "record larger than 4 MiB";
		return;
	}
	if (r < 0) {
		csvin_fatal(x, r, "%s: out of memory", x->o->path);
		return;
	}
	x->off[x->n] = at;
	x->flen[x->n] = len;
	x->n++;
}


static bool row_blank(const struct ctx *x)
{
	if (x->bad)
		return false;
	for (int i = 0; i < x->n; i++)
		if (x->flen[i])
			return false;
	return true;
}

static void on_row(int c, void *data)
{
	struct ctx *x = data;
	(void)c;
	if (x->fatal || x->file_bad)
		goto out;
	if (!x->header_done) {
		csvin_check_header(x);
		goto out;
	}
	if (row_blank(x))
		goto out; /* a line of bare delimiters, as spreadsheets leave behind */
	x->res->rows++;
	const char *bad = csvin_check_row(x);
	if (bad)
		csvin_reject(x, x->row_line, bad);
	else if (!x->dry) {
		int r = csvin_write_row(x);
		if (r == -ENOMEM)
			csvin_fatal(x, r, "%s: out of memory", x->o->path);
		else if (r < 0)
			csvin_db_fatal(x);
		else
			x->res->applied++;
	}
	if (++x->rows_since_tick >= CSVIN_TICK_ROWS) {
		x->rows_since_tick = 0;
		if (x->o->tick)
			x->o->tick(x->o->tick_arg);
	}
out:
	csvin_row_reset(x);
}

/* libcsv stopped on bad input: the record it was in is bad; resume on the next line. */
static void parse_failed(struct ctx *x, const char *what)
{
	if (!what)
		what = csv_error(&x->p) == CSV_ENOMEM ? "a field longer than 1 MiB"
						      : "malformed quoting (a quote inside an "
							"unquoted field, or text after a closing quote)";
	if (!x->header_done) {
		x->whole_line = x->row_line;
		csvin_file_reject(x, "header line %lld: %s", (long long)x->row_line, what);
	}
	else {
		x->res->rows++;
		csvin_reject(x, x->row_line, what);
	}
	csvin_row_reset(x);
	if (parser_start(x) < 0)
		csvin_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
}

/* Feed a block to libcsv one physical line at a time (see the top of the file). */
static void feed(struct ctx *x, const char *p, size_t n)
{
	while (n > 0 && !x->fatal && !x->file_bad) {
		const char *lf = memchr(p, '\n', n);
		size_t seg = lf ? (size_t)(lf - p) + 1 : n;
		if (!x->skip_line) {
			if (x->p.pstate == ROW_PARSER_NOT_BEGUN)
				x->row_line = x->line;
			size_t done = csv_parse(&x->p, p, seg, on_cell, on_row, x);
			if (done < seg) {
				parse_failed(x, NULL);
				x->skip_line = true;
				p += done;
				n -= done;
				continue;
			}
		} else if (lf) {
			x->skip_line = false;
		}
		if (lf)
			x->line++;
		p += seg;
		n -= seg;
	}
}

/* Comma or semicolon: whichever the header line has more of outside quotes. */
static unsigned char detect_delim(const char *p, size_t n)
{
	size_t commas = 0, semis = 0;
	bool quoted = false, content = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '"')
			quoted = !quoted;
		else if (quoted)
			continue;
		else if (c == ',')
			commas++;
		else if (c == ';')
			semis++;
		else if (c == '\n' && content)
			break;
		if (!isspace((unsigned char)c))
			content = true;
	}
	return semis > commas ? ';' : ',';
}

/* One pass over f.  0, or the fatal error (x->file_bad is not an error here). */
int csvin_read_pass(struct ctx *x, FILE *f)
{
	char *buf = malloc(READ_BLOCK);
	int r = 0;
	if (!buf) {
		csvin_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, READ_BLOCK, f), start = 0;
	if (ferror(f)) {
		csvin_fatal(x, -EIO, "%s: cannot read the downloaded file", x->o->path);
		goto out;
	}
	if (n == 0) {
		csvin_file_reject(x, "empty file (0 bytes)");
		goto out;
	}
	if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	x->delim = detect_delim(buf + start, n - start);
	if (parser_start(x) < 0) {
		csvin_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
		goto out;
	}
	x->line = 1;
	for (;;) {
		feed(x, buf + start, n - start);
		if (x->fatal || x->file_bad)
			goto out;
		if (x->o->stop && atomic_load(x->o->stop)) {
			csvin_fatal(x, -EAGAIN, "%s: stopped", x->o->path);
			goto out;
		}
		start = 0;
		n = fread(buf, 1, READ_BLOCK, f);
		if (n == 0) {
			if (ferror(f))
				csvin_fatal(x, -EIO, "%s: cannot read the downloaded file", x->o->path);
			break;
		}
	}
	if (!x->fatal && !x->skip_line && csv_fini(&x->p, on_cell, on_row, x) != 0)
		parse_failed(x, "a quoted field is not closed before the end of the file");
	if (!x->fatal && !x->header_done)
		csvin_file_reject(x, "no header line");
out:
	free(buf);
	if (x->fatal)
		r = x->fatal;
	return r;
}
