/* csvin.h - ingest one SFTP CSV file of one kind into the mirror, in one transaction. */
#ifndef KLEEP_CSVIN_H
#define KLEEP_CSVIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "store.h"

#define CSVIN_FIELD_MAX  (1024 * 1024)     /* bytes in one cell; longer is a bad row */
#define CSVIN_ROW_MAX    (4 * 1024 * 1024) /* bytes in one record's cells together */
#define CSVIN_COLS_MAX   512               /* cells in one record */
#define CSVIN_TICK_ROWS  4096              /* opts->tick runs this often */

/*
 * The kinds of file (DOMAIN.md §3), in the order files with the same name
 * timestamp are applied: reasons and products before the orders and returns
 * that refer to them.
 */
enum csvin_kind {
	CSVIN_RETURN_REASONS,
	CSVIN_PRODUCTS,
	CSVIN_ORDERS,
	CSVIN_RETURNS,
	CSVIN_DIMENSIONS,
	CSVIN_KIND_COUNT
};

/* "return_reasons", "products", ...: the file name prefix and the records stream. */
const char *csvin_kind_name(enum csvin_kind k);
/* The kind named s, or -1. */
int csvin_kind_from_name(const char *s);

enum csvin_outcome { CSVIN_APPLIED, CSVIN_APPLIED_WITH_REJECTS, CSVIN_REJECTED };
/* The sftp_files outcome: "applied", "applied_with_rejects", "rejected". */
const char *csvin_outcome_name(enum csvin_outcome o);

struct csvin_result {
	enum csvin_outcome outcome;
	int64_t rows;     /* data records read; blank lines and the header do not count */
	int64_t applied;  /* good records written (0 when the file was rejected) */
	int64_t rejects;  /* bad records, each in csv_rejects */
	char reason[320]; /* why the file was rejected or could not be read; "" otherwise */
	bool storage;     /* the mirror's database failed (reason says how): the error is
	                   * the daemon's own disk's, not the file's */
};

/* How to ingest one file; every pointer is borrowed for the call. */
struct csvin_opts {
	enum csvin_kind kind;
	const char *path;      /* the file's ledger path, e.g. "returns/returns_2025-01-15T02-00-00.csv":
	                        * the csv_rejects key */
	const char *file_time; /* UTC text of the name's timestamp: the source modification time
	                        * of rows without updated_at; may be NULL */
	const struct merchant_conf *m; /* timezone, languages, sftp.max_reject_ratio */
	int64_t run_id;        /* records.last_run of the rows written */
	atomic_bool *stop;     /* may be NULL; checked between lines */
	void (*tick)(void *arg); /* may be NULL; called every CSVIN_TICK_ROWS records */
	void *tick_arg;
	/*
	 * May be NULL.  Called inside the file's transaction just before it
	 * commits, with the final result (also for a rejected file, whose
	 * transaction then holds only its csv_rejects), so that the caller's
	 * ledger row commits with the data.  A negative return rolls everything
	 * back and becomes csvin_apply's result.
	 */
	int (*before_commit)(struct store *st, const struct csvin_result *res, void *arg);
	void *commit_arg;
};

/*
 * Read the CSV in f (streamed, constant memory; f must be seekable, for a
 * rejected file is read a second time to record its bad rows) and apply it
 * in one transaction: good records go to `records` (source "sftp", stream =
 * the kind's name) and to the canonical tables; bad records to csv_rejects
 * (path, physical line where the record starts, reason), replacing those of an
 * earlier version of the same path.  A file that is empty, lacks a required
 * column, or whose bad records are more than max_reject_ratio of its records
 * is rejected whole: nothing of it is applied, its rejects are recorded.
 *
 * The records ids per kind: products "variant:<variant_id>" (a product id of
 * the API must not meet a variant id of a file); orders and returns
 * "<parent>:line:<n>", else "<parent>:variant:<v>", else "<parent>:sku:<s>";
 * return_reasons "<reason_id>", or "<reason_id>:<lang>" when the file has a
 * lang column; dimensions "<variant|product>:<id>:<measurement>".
 * Canonical rows: a child row (variant, order or return line) follows its
 * parent: when the parent row is kept because the stored one is newer, the
 * child is only written if it is not stored yet.
 *
 * Returns 0 when the file was processed (res->outcome says how), -EAGAIN when
 * *stop was raised, -EIO when reading f or the database failed, -ENOMEM (and
 * res->reason says why); on a negative return nothing of the file was
 * written.  The caller must not hold a transaction.
 */
int csvin_apply(struct store *st, const struct csvin_opts *o, FILE *f, struct csvin_result *res);

/* The same from a file descriptor, read from offset 0; fd stays open and the caller's. */
int csvin_apply_fd(struct store *st, const struct csvin_opts *o, int fd, struct csvin_result *res);

#endif
