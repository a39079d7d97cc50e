/* scan.h - one SFTP scan of one merchant's drop folder: list, settle, download, ingest once. */
#ifndef KLEEP_SCAN_H
#define KLEEP_SCAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "store.h"

struct scan_result {
	int files_seen, files_applied, files_rejected, files_failed, files_ignored, files_pending;
	int64_t rows;            /* rows applied to the canonical tables */
	int64_t run_id;          /* the sync_runs row of this scan (stream "sftp") */
	const char *error_class; /* NULL on success, else "config", "auth", "transient", ... */
	char error[512];         /* a sentence for a person when the scan failed; no secrets */
};

/*
 * Run one scan of merchant m (which must have [sftp]) into its open store:
 * records a sync_runs row and the sftp sync_state, the sftp_files ledger and
 * csv_rejects.  state_dir holds temporary downloads.  Returns 0 when the scan
 * succeeded (even if some files were rejected), a negative errno-style code
 * when it could not connect, authenticate, verify the host key, or was
 * stopped (*stop raised).
 */
int scan_run(const struct merchant_conf *m, struct store *st, const char *state_dir,
	     atomic_bool *stop, const struct log_ctx *log, struct scan_result *res);

#endif
