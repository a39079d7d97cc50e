/* bulkload.h - a large load into a few tables inside one transaction: their secondary
 * indexes are dropped when it starts and built again, each in one sorted pass, before
 * it commits.
 *
 * Inserting a row into a b-tree index costs a descent and a page write wherever the
 * key falls; CREATE INDEX sorts all keys once and writes the pages in order.  For a
 * file that brings many rows next to the rows stored, the rebuild is several times
 * cheaper (1,000,000 return lines: 8 s of index inserts against 2 s of rebuild).
 * Nothing outside the transaction sees the indexes missing: other connections read
 * the last commit, and a rollback (a crash, a rejected file) restores them with it.
 * The primary key and UNIQUE indexes stay: upserts find their conflicts through them.
 * Partial indexes stay too: in this schema they hold few rows (lines waiting for their
 * variant, deleted records; no SFTP row enters one), and building one again would scan
 * the whole table.
 */
#ifndef KLEEP_BULKLOAD_H
#define KLEEP_BULKLOAD_H

#include <stdint.h>

#include "store.h"

#define BULKLOAD_INDEX_MAX 16     /* secondary indexes set aside at most */
#define BULKLOAD_MIN_ROWS  5000   /* a load of fewer rows keeps its indexes */
#define BULKLOAD_STORED_PER_ROW 3 /* ...and so does one into tables holding more than
                                   * this many rows per row it brings */
#define BULKLOAD_CACHE "-2048"    /* the page cache while indexes are built: KiB */

struct bulkload {
	int n;
	char *sql[BULKLOAD_INDEX_MAX]; /* the CREATE INDEX of each index dropped */
};

/*
 * Inside the caller's transaction: when rows (the load's estimate) is at least
 * BULKLOAD_MIN_ROWS and no table of tables (NULL-terminated) holds more than
 * BULKLOAD_STORED_PER_ROW * rows, drop the tables' secondary indexes, remembering
 * them in b; else leave everything as it is (b->n = 0).  0, or -EIO (the
 * transaction must then be rolled back) or -ENOMEM.
 */
int bulkload_begin(struct store *st, struct bulkload *b, const char *const *tables, int64_t rows);

/* Build again every index bulkload_begin dropped, still inside the transaction; 0 or
 * -EIO.  b is empty afterwards either way. */
int bulkload_end(struct store *st, struct bulkload *b);

/* After a rollback, which restored the indexes itself: empty b. */
void bulkload_forget(struct bulkload *b);

#endif
