/* merchant.c - open a merchant's mirror and run one job of it: an API stream or an SFTP scan. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errclass.h"
#include "merchant.h"
#include "log.h"
#include "outcome.h"
#include "scan.h"
#include "source.h"
#include "tstamp.h"

int merchant_shop_init(struct merchant_shop *sh, const struct merchant_conf *m)
{
	sh->ratelimit = wshop_ratelimit_new(m->has_wshop ? m->wshop.rate_limit : 0);
	sh->tokens = token_cache_new();
	if (sh->ratelimit && sh->tokens)
		return 0;
	merchant_shop_clear(sh);
	return -ENOMEM;
}

void merchant_shop_clear(struct merchant_shop *sh)
{
	wshop_ratelimit_free(sh->ratelimit);
	token_cache_free(sh->tokens);
	sh->ratelimit = NULL;
	sh->tokens = NULL;
}

int merchant_open(const struct config *c, const struct merchant_conf *m,
		  const struct merchant_shop *shop, struct merchant **out, char *err, size_t errlen)
{
	struct merchant *mr = calloc(1, sizeof(*mr));
	int r;

	*out = NULL;
	if (!mr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	mr->conf = m;
	mr->daemon = &c->daemon;
	if (mkdir(c->daemon.state_dir, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot create the state folder: %s", c->daemon.state_dir,
			 strerror(-r));
		goto fail;
	}
	if (snprintf(mr->db_path, sizeof(mr->db_path), "%s/%s.db", c->daemon.state_dir, m->id) >=
	    (int)sizeof(mr->db_path)) {
		r = -ENAMETOOLONG;
		snprintf(err, errlen, "%s: state_dir is too long", c->daemon.state_dir);
		goto fail;
	}
	r = pii_key_load(c->daemon.state_dir, mr->pii_key, err, errlen);
	if (r < 0)
		goto fail;
	r = store_open(mr->db_path, &mr->st, err, errlen);
	if (r < 0)
		goto fail;
	if (m->has_wshop) {
		char *buf = NULL;
		size_t len = 0;
		FILE *errs = open_memstream(&buf, &len);
		if (!errs) {
			r = -ENOMEM;
			goto fail;
		}
		r = profile_load(c->daemon.profile_dir, m->wshop.profile, m->wshop.overrides,
				 m->wshop.n_overrides, &mr->profile, errs);
		fclose(errs);
		if (r < 0) {
			r = -EINVAL; /* a config failure, whatever profile_load says */
			snprintf(err, errlen, "%s", buf && *buf ? buf : "cannot load the profile");
			size_t n = strlen(err);
			if (n && err[n - 1] == '\n')
				err[n - 1] = 0;
		}
		free(buf);
		if (r < 0)
			goto fail;
	}
	if (shop) {
		mr->shop = *shop;
	} else if ((r = merchant_shop_init(&mr->shop, m)) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	} else {
		mr->own_shop = true;
	}
	/* The views read these; a mirror that cannot take them still syncs. */
	char why[512];
	if (outcome_prepare(mr->st, mr->profile, c->daemon.profile_dir, m, why, sizeof(why)) < 0) {
		struct log_ctx lc = { m->id, NULL, 0 };
		log_warning(&lc, "%s", why);
	}
	*out = mr;
	return 0;
fail:
	merchant_close(mr);
	return r;
}

void merchant_close(struct merchant *mr)
{
	if (!mr)
		return;
	store_close(mr->st);
	profile_free(mr->profile);
	if (mr->own_shop)
		merchant_shop_clear(&mr->shop);
	explicit_bzero(mr->pii_key, sizeof(mr->pii_key));
	free(mr);
}

enum errclass merchant_open_class(int rc)
{
	return rc == -EINVAL || rc == -ENAMETOOLONG ? ERRC_CONFIG
	       : rc == -ENOMEM ? ERRC_TRANSIENT : ERRC_STORAGE;
}

bool merchant_has_stream(const struct merchant *mr, enum stream s)
{
	return s == STREAM_SFTP ? mr->conf->has_sftp : mr->conf->has_wshop && s < STREAM_API_COUNT;
}

static int run_scan(struct merchant *mr, atomic_bool *stop, struct merchant_result *res)
{
	struct scan_result sr;
	struct log_ctx log = { mr->conf->id, "sftp", 0 };
	memset(&sr, 0, sizeof(sr));
	int r = scan_run(mr->conf, mr->st, mr->daemon->state_dir, stop, &log, &sr);
	res->run_id = sr.run_id;
	res->rows_in = res->rows_changed = sr.rows;
	res->pages = sr.files_applied;
	res->files_rejected = sr.files_rejected;
	res->error_class = r == 0 ? NULL : sr.error_class;
	res->outcome = r == 0 ? "success" : r == -EAGAIN ? "interrupted" : "failed";
	snprintf(res->message, sizeof(res->message), "%s", r == 0 ? "" : sr.error);
	if (r == 0)
		snprintf(res->message, sizeof(res->message),
			 "%d files seen, %d applied, %d rejected, %d failed, %d waiting to settle",
			 sr.files_seen, sr.files_applied, sr.files_rejected, sr.files_failed,
			 sr.files_pending);
	return r;
}

/* Stream s's sync_state says the failure (and when, unless when is NULL), for status. */
static void state_says(struct merchant *mr, enum stream s, const char *when,
		       const struct merchant_result *res)
{
	struct store_state st;
	if (store_state_get(mr->st, stream_name(s), &st) < 0)
		return;
	if (when)
		store_state_set(&st.last_attempt, when);
	store_state_set(&st.last_error, res->message);
	store_state_set(&st.error_class, res->error_class);
	store_state_put(mr->st, stream_name(s), &st);
	store_state_clear(&st);
}

/*
 * A run refused before any request: the mirror's source is not the configured
 * one, or cannot be read.  Recorded as a failed run of class config, in the
 * run history and in the stream's state, so status says why.
 */
static int refuse_run(struct merchant *mr, enum stream s, int rc, struct merchant_result *res)
{
	struct log_ctx lc = { mr->conf->id, stream_name(s), 0 };
	tstamp_t now;
	tstamp_now(now);
	res->outcome = "failed";
	res->error_class = errclass_name(ERRC_CONFIG);
	if (store_run_start(mr->st, lc.stream, now, &res->run_id) == 0) {
		struct store_run run = { .run_id = res->run_id, .stream = lc.stream, .outcome = "failed",
					 .error = res->message, .error_class = res->error_class };
		store_run_finish(mr->st, &run, now);
	}
	state_says(mr, s, now, res);
	lc.run_id = res->run_id;
	log_msg(LOG_ERR, &lc, LOG_MSGID_RUN_FAILED, "run refused (config): %s", res->message);
	return rc;
}

/* What every job does at its end: keep the runs table and the -wal small. */
static int job_end(struct merchant *mr, enum stream s, struct merchant_result *res)
{
	struct log_ctx lc = { mr->conf->id, stream_name(s), res->run_id };
	char msg[512];
	if (store_runs_prune(mr->st, stream_name(s), mr->daemon->keep_runs) < 0) {
		store_failure(mr->st, msg, sizeof(msg));
		log_warning(&lc, "cannot prune old runs: %s", msg);
	}
	int r = store_checkpoint(mr->st, msg, sizeof(msg));
	if (r == -EBUSY) {
		log_warning(&lc, "%s", msg);
	} else if (r < 0) {
		/* The run's data is committed, but the disk failed under the
		 * write-ahead log: that is worth a failure of its own. */
		log_err(&lc, "%s", msg);
		if (strcmp(res->outcome, "success") == 0) {
			res->outcome = "failed";
			res->error_class = errclass_name(ERRC_STORAGE);
			res->errnum = -r;
			snprintf(res->message, sizeof(res->message), "%s", msg);
			state_says(mr, s, NULL, res); /* status reads sync_state: the same words */
			return r;
		}
	}
	return 0;
}

static int run_sync(struct merchant *mr, enum stream s, bool full, atomic_bool *stop,
		    struct sync_progress *progress, struct merchant_result *res)
{
	if (full && sync_reset(mr->st, s) < 0) {
		char why[400];
		res->outcome = "failed";
		res->error_class = errclass_name(ERRC_STORAGE);
		res->errnum = -store_failure(mr->st, why, sizeof(why));
		snprintf(res->message, sizeof(res->message), "cannot reset the cursor: %s", why);
		return -EIO;
	}
	struct wshop_opts o = {
		.api_url = mr->conf->wshop.api_url,
		.username = mr->conf->wshop.username,
		.password_file = mr->conf->wshop.password_file,
		.profile = mr->profile,
		.ratelimit = mr->shop.ratelimit,
		.tokens = mr->shop.tokens,
		.stop = stop,
		.log = { mr->conf->id, stream_name(s), 0 },
	};
	struct wshop *client = wshop_new(&o);
	if (!client) {
		res->outcome = "failed";
		res->error_class = errclass_name(ERRC_TRANSIENT);
		res->errnum = ENOMEM;
		snprintf(res->message, sizeof(res->message), "out of memory");
		return -ENOMEM;
	}
	struct sync_job job = {
		.m = mr->conf, .profile = mr->profile, .st = mr->st, .client = client,
		.pii_key = mr->pii_key, .lookback_usec = mr->daemon->lookback_usec,
		.full_every_usec = mr->daemon->full_every_usec,
		.stop = stop, .progress = progress,
	};
	struct sync_result sr;
	int r = sync_run(&job, s, &sr);
	res->outcome = sr.outcome;
	res->error_class = r == 0 || r == -EAGAIN ? NULL : errclass_name(sr.error);
	res->errnum = sr.errnum;
	res->run_id = sr.run_id;
	res->pages = sr.pages;
	res->rows_in = sr.rows_in;
	res->rows_changed = sr.rows_changed;
	res->requests = wshop_stats(client)->requests;
	snprintf(res->message, sizeof(res->message), "%s", sr.message);
	wshop_free(client);
	return r;
}

int merchant_run(struct merchant *mr, enum stream s, bool full, atomic_bool *stop,
		 struct sync_progress *progress, struct merchant_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!merchant_has_stream(mr, s)) {
		res->outcome = "failed";
		res->error_class = errclass_name(ERRC_CONFIG);
		snprintf(res->message, sizeof(res->message), "merchant %s has no %s section for %s",
			 mr->conf->id, s == STREAM_SFTP ? "[sftp]" : "[wshop]", stream_name(s));
		return -EINVAL;
	}
	/* A run left 'running' was cut short by a process that died: this
	 * merchant has one job at a time, so it is not another job's. */
	tstamp_t now;
	tstamp_now(now);
	if (store_run_reap(mr->st, now) < 0) {
		struct log_ctx lc = { mr->conf->id, stream_name(s), 0 };
		log_warning(&lc, "cannot mark interrupted runs: %s", store_errmsg(mr->st));
	}
	struct log_ctx mlc = { mr->conf->id, NULL, 0 };
	int rc = source_verify(mr->st, mr->conf, &mlc, res->message, sizeof(res->message));
	if (rc < 0)
		return refuse_run(mr, s, rc, res);
	int r = s == STREAM_SFTP ? run_scan(mr, stop, res) : run_sync(mr, s, full, stop, progress, res);
	int e = job_end(mr, s, res);
	return r == 0 && e < 0 ? e : r;
}
