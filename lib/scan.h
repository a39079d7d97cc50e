/* scan.h - one SFTP scan of one merchant's drop folder: list, settle, download, ingest once. */
#ifndef KLEEP_SCAN_H
#define KLEEP_SCAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "csvin.h"
#include "log.h"
#include "store.h"

struct scan_result {
	int files_seen, files_applied, files_rejected, files_failed, files_ignored, files_pending;
	int64_t rows;            /* rows applied to the canonical tables */
	int64_t run_id;          /* the sync_runs row of this scan (stream "sftp") */
	const char *error_class; /* errclass_name(): NULL on success, else "config", "storage", ... */
	char error[512];         /* a sentence for a person when the scan failed; no secrets */
};

/*
 * Run one scan of merchant m (which must have [sftp]) into its open store:
 * records a sync_runs row and the sftp sync_state, the sftp_files ledger and
 * csv_rejects.  state_dir holds temporary downloads.  Returns 0 when the scan
 * succeeded (even if some files were rejected or one could not be read), a
 * negative errno-style code when it could not connect (-EIO, class
 * "transient"), verify the host key (-EPERM, "config"), authenticate (-EACCES,
 * "auth"), find its folder or use its settings (-EINVAL, "config"), lost the
 * connection midway (-EIO, "transient") or could not write the mirror (-EIO,
 * "storage"), or was stopped
 * (-EAGAIN, *stop raised).  res is filled either way.
 */
int scan_run(const struct merchant_conf *m, struct store *st, const char *state_dir,
	     atomic_bool *stop, const struct log_ctx *log, struct scan_result *res);

/*
 * Whether name, found in the layout folder of kind folder_kind, is a file of
 * that kind: "<kind>_YYYY-MM-DDTHH-MM-SS.csv" (".csv" in any case).  On
 * success *when is the name's time read as a wall time in the zone tz.
 * Otherwise reason (size bytes) says why the file is ignored.
 */
bool scan_name_parse(enum csvin_kind folder_kind, const char *name, const struct tz *tz,
		     time_t *when, char *reason, size_t size);

#endif
