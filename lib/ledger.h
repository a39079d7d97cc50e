/* ledger.h - the sftp_files ledger: each SFTP file version seen, and what it came to (DESIGN.md §6). */
#ifndef KLEEP_LEDGER_H
#define KLEEP_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "csvin.h"
#include "store.h"

/* One file version as listed (all borrowed). */
struct ledger_file {
	const char *path;   /* ledger path: folder/name */
	const char *kind;   /* csvin_kind_name(); NULL for a file outside the layout */
	uint64_t size;
	const char *mtime;  /* tstamp text */
};

/* What the ledger says of a listed version. */
struct ledger_view {
	bool current;       /* the processed version is the one listed */
	bool seen_same;     /* an earlier scan saw this same size and mtime */
	char *done_sha;     /* unless current: digest of the version last processed, or NULL */
	char *done_outcome; /* unless current: its outcome, or NULL (both owned by the caller) */
};

/*
 * Note what a scan at now saw of f; outcome NULL keeps the stored outcome and
 * reason (a version about to be processed).  0 or -EIO; likewise below.
 */
int ledger_seen(struct store *st, const char *now, const struct ledger_file *f,
		const char *outcome, const char *reason);

/* The ledger's view of f into *v (zeroed on error). */
int ledger_look(struct store *st, const struct ledger_file *f, struct ledger_view *v);

/* The processed version is still the one listed: only note that it was seen. */
int ledger_current(struct store *st, const struct ledger_file *f);

/* f has the content of the processed version under a new mtime: adopt it, apply nothing. */
int ledger_same(struct store *st, const struct ledger_file *f, const char *reason);

/* A processed version, for ledger_done (borrowed). */
struct ledger_done {
	struct ledger_file f;
	const char *sha;    /* its SHA-256, hex */
	const char *now;    /* when it was applied */
};

/* csvin's before_commit (arg: a struct ledger_done): the ledger row commits with the file's data. */
int ledger_done(struct store *st, const struct csvin_result *r, void *arg);

#endif
