/* runtime.c - the service's merchants: start, reload, stop, and the requests of runtime.h
 * (DESIGN.md §2).  Timers and job ends are sched.c's, pool work job.c's, status status.c's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "runtime_priv.h"

#define FIRST_RUN_SPREAD_USEC (5 * 1000000ull)   /* first runs spread over 5 s */
#define QUERY_ROWS_RUNS 20                         /* rows of runs unless asked */
#define QUERY_ROWS_OTHER 1000                      /* rows of files and rejects unless asked */

/* Log context of a merchant-level line. */
#define MCTX(ms) (&(struct log_ctx){ .merchant = (ms)->id })

void cfg_unref(struct cfg *c)
{
	if (c && --c->refs == 0) {
		config_free(c->c);
		free(c);
	}
}

static struct cfg *cfg_new(struct config *c)
{
	struct cfg *nc = calloc(1, sizeof(*nc));
	if (!nc) {
		config_free(c);
		return NULL;
	}
	nc->c = c;
	nc->refs = 1;
	return nc;
}

void shop_unref(struct shop *sh)
{
	if (sh && --sh->refs == 0) {
		merchant_shop_clear(&sh->s);
		free(sh);
	}
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * The merchant's shop for its settings now: kept across a reload that leaves
 * the API settings alone; a new one (new rate, no token) when they change.
 * Jobs still running keep the old one until they end.
 */
static void mstate_shop(struct mstate *ms, const struct merchant_conf *old)
{
	const struct wshop_conf *o = old ? &old->wshop : NULL, *n = &ms->conf->wshop;
	if (ms->shop && o && old->has_wshop == ms->conf->has_wshop && o->rate_limit == n->rate_limit &&
	    same(o->api_url, n->api_url) && same(o->username, n->username) &&
	    same(o->password_file, n->password_file))
		return;
	struct shop *sh = calloc(1, sizeof(*sh));
	if (!sh || merchant_shop_init(&sh->s, ms->conf) < 0) {
		free(sh);
		log_err(MCTX(ms), "out of memory: jobs of this merchant use a rate cap of their own");
		sh = NULL;
	} else {
		sh->refs = 1;
	}
	shop_unref(ms->shop);
	ms->shop = sh;
}

/* ---- merchants ----------------------------------------------------------- */

static uint64_t stream_interval(const struct merchant_conf *m, enum stream s)
{
	return s == STREAM_SFTP ? m->sftp.poll_usec : m->wshop.poll_usec[s];
}

static bool stream_enabled(const struct merchant_conf *m, enum stream s)
{
	return s == STREAM_SFTP ? m->has_sftp : m->has_wshop;
}

static void mstate_free(struct mstate *ms)
{
	wlist_gone(&ms->reproject, ms->id, NULL, "the merchant was removed before the job ran");
	wlist_gone(&ms->golive, ms->id, NULL, "the merchant was removed before the job ran");
	wlist_gone(&ms->rebind, ms->id, NULL, "the merchant was removed before the job ran");
	for (int s = 0; s < STREAM_COUNT; s++) {
		wlist_gone(&ms->s[s].waiters, ms->id, stream_name(s),
			   "the merchant was removed before the run started");
		sd_event_source_disable_unref(ms->s[s].timer);
		outcome_clear(&ms->s[s].last);
	}
	shop_unref(ms->shop);
	free(ms);
}

void mstate_forget(struct runtime *rt, struct mstate *ms)
{
	for (size_t i = 0; i < rt->n_ms; i++)
		if (rt->ms[i] == ms) {
			rt->ms[i] = rt->ms[--rt->n_ms];
			break;
		}
	mstate_free(ms);
}

/* When a stream should first run: soon (first, spread per merchant), or an interval after its last success. */
static uint64_t first_run_at(const struct stream_rt *st, uint64_t first)
{
	time_t last, wall = time(NULL);
	if (!st->last.last_success[0] || tstamp_parse(st->last.last_success, &last) < 0)
		return first;
	uint64_t age = wall > last ? (uint64_t)(wall - last) * 1000000u : 0;
	if (age >= st->interval_usec)
		return first;
	return now_usec() + (st->interval_usec - age) + jitter(st->interval_usec / 10 + 1);
}

/* Timers of one merchant from its settings: first runs spread, later ones from the last success. */
static void mstate_arm(struct runtime *rt, struct mstate *ms, bool settings_changed)
{
	/* One offset per merchant for first runs: merchants spread out, while
	 * one merchant's streams come due together and run reference data first. */
	uint64_t first = now_usec() + jitter(FIRST_RUN_SPREAD_USEC);
	for (int s = 0; s < STREAM_COUNT; s++) {
		struct stream_rt *st = &ms->s[s];
		bool was = st->enabled;
		uint64_t old_interval = st->interval_usec;
		st->enabled = stream_enabled(ms->conf, s);
		st->interval_usec = st->enabled ? stream_interval(ms->conf, s) : 0;
		if (!st->enabled) {
			if (st->timer)
				sd_event_source_set_enabled(st->timer, SD_EVENT_OFF);
			st->due = st->full = false;
			st->next_usec = 0;
			wlist_gone(&st->waiters, ms->id, stream_name(s), "the stream was turned off by a reload");
			continue;
		}
		if (!ms->loaded || (was && !settings_changed))
			continue; /* not loaded yet: mstate_loaded arms it from what the mirror says */
		if (was && old_interval == st->interval_usec && (st->next_usec || st->due))
			continue;
		stream_schedule(rt, ms, s, first_run_at(st, first));
	}
}

/* Its mirror was read: arm the timers from the last successes, so that a restart
 * does not re-run what ran a minute ago.  A sync asked for meanwhile runs now. */
void mstate_loaded(struct runtime *rt, struct mstate *ms, struct job *job)
{
	ms->loaded = true;
	uint64_t first = now_usec() + jitter(FIRST_RUN_SPREAD_USEC);
	for (int s = 0; s < STREAM_COUNT; s++) {
		struct stream_rt *st = &ms->s[s];
		if (job->loaded[s].last_attempt || job->loaded[s].last_success)
			outcome_take(&st->last, &job->loaded[s]);
		if (st->enabled && !st->due && !st->next_usec && !ms->removed && !rt->stopping)
			stream_schedule(rt, ms, s, first_run_at(st, first));
	}
}

/* A new merchant: its mirror is read on the pool, as its first job. */
static struct mstate *mstate_new(struct runtime *rt, const struct merchant_conf *m)
{
	struct mstate *ms = calloc(1, sizeof(*ms));
	if (!ms)
		return NULL;
	ms->rt = rt;
	ms->conf = m;
	snprintf(ms->id, sizeof(ms->id), "%s", m->id);
	mstate_shop(ms, NULL);
	struct job *job = job_new(rt, JOB_LOAD, ms);
	if (job) {
		job->ms = ms;
		ms->job = job;
		pool_submit(rt->pool, &job->pj);
	}
	return ms;
}

struct mstate *runtime_find(struct runtime *rt, const char *id)
{
	for (size_t i = 0; i < rt->n_ms; i++)
		if (!rt->ms[i]->removed && strcmp(rt->ms[i]->id, id) == 0)
			return rt->ms[i];
	return NULL;
}

/* A merchant gone from the configuration: no more timers; freed now, or when its job ends. */
static void mstate_remove(struct runtime *rt, size_t i)
{
	struct mstate *ms = rt->ms[i];
	log_notice(MCTX(ms), "merchant removed from the configuration");
	ms->removed = true;
	for (int s = 0; s < STREAM_COUNT; s++) {
		ms->s[s].timer = sd_event_source_disable_unref(ms->s[s].timer);
		ms->s[s].due = false;
	}
	if (!ms->job)
		mstate_forget(rt, ms);
}

/* Bring the merchant list in line with rt->cfg: add, update, remove. */
static int merchants_apply(struct runtime *rt)
{
	const struct config *c = rt->cfg->c;
	size_t cap = rt->n_ms + c->n_merchants;
	struct mstate **list = realloc(rt->ms, (cap ? cap : 1) * sizeof(*list));
	if (!list)
		return -ENOMEM;
	rt->ms = list;

	for (size_t i = rt->n_ms; i-- > 0;) {
		struct mstate *ms = rt->ms[i];
		if (ms->removed)
			continue;
		const struct merchant_conf *m = config_merchant(c, ms->id);
		if (!m) {
			mstate_remove(rt, i);
			continue;
		}
		const struct merchant_conf *old = ms->conf;
		ms->conf = m;
		mstate_shop(ms, old);
		mstate_arm(rt, ms, true);
		rebind_source_moved(rt, ms, old);
	}
	for (size_t i = 0; i < c->n_merchants; i++) {
		const struct merchant_conf *m = &c->merchants[i];
		if (runtime_find(rt, m->id))
			continue;
		/* Removed while its job still runs, and back already: the same
		 * state again, so the merchant still has at most one job. */
		struct mstate *ms = NULL;
		for (size_t k = 0; k < rt->n_ms && !ms; k++)
			if (rt->ms[k]->removed && strcmp(rt->ms[k]->id, m->id) == 0)
				ms = rt->ms[k];
		if (ms) {
			const struct merchant_conf *old = ms->conf;
			ms->removed = false;
			ms->conf = m;
			mstate_shop(ms, old);
			log_info(MCTX(ms), "merchant added back");
		} else if ((ms = mstate_new(rt, m))) {
			rt->ms[rt->n_ms++] = ms;
			log_info(MCTX(ms), "merchant added");
		} else {
			return -ENOMEM;
		}
		mstate_arm(rt, ms, true);
	}
	return 0;
}

/* ---- life ---------------------------------------------------------------- */

struct runtime *runtime_new(sd_event *e, const char *config_path, struct config *c, char *err,
			    size_t errlen)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	int efd;
	if (!rt || !(rt->cfg = cfg_new(c))) {
		if (!rt)
			config_free(c);
		free(rt);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->e = sd_event_ref(e);
	rt->config_path = config_path;
	rt->started_usec = now_usec();
	if (mkdir(c->daemon.state_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the state folder: %s", c->daemon.state_dir,
			 strerror(errno));
		goto fail;
	}
	if (!(rt->pool = pool_new(c->daemon.workers, &efd)) ||
	    sd_event_add_io(e, &rt->pool_src, efd, EPOLLIN, on_pool, rt) < 0) {
		snprintf(err, errlen, "cannot start the workers");
		goto fail;
	}
	if (merchants_apply(rt) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	notify_status(rt);
	return rt;
fail:
	runtime_stop(rt);
	runtime_free(rt);
	return NULL;
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	/* The loop only ends with no job running and none queued (runtime_stop). */
	pool_free(rt->pool);
	for (size_t i = 0; i < rt->n_ms; i++)
		mstate_free(rt->ms[i]);
	free(rt->ms);
	sd_event_source_disable_unref(rt->pool_src);
	sd_event_source_disable_unref(rt->status_timer);
	sd_event_unref(rt->e);
	cfg_unref(rt->cfg);
	free(rt);
}

bool runtime_stopping(const struct runtime *rt)
{
	return rt->stopping;
}

const struct config *runtime_config(const struct runtime *rt)
{
	return rt->cfg->c;
}

void runtime_stop(struct runtime *rt)
{
	if (rt->stopping)
		return;
	rt->stopping = true;
	atomic_store(&rt->stop, true);
	sd_notify(0, "STOPPING=1");
	int running = rt->pool ? pool_running(rt->pool) : 0;
	log_notice(NULL, "stopping: %d job%s to finish", running, running == 1 ? "" : "s");
	/* Runs asked for and not queued yet will not happen either. */
	for (size_t i = 0; i < rt->n_ms; i++) {
		wlist_gone(&rt->ms[i]->reproject, rt->ms[i]->id, NULL, "kleepd is stopping");
		wlist_gone(&rt->ms[i]->golive, rt->ms[i]->id, NULL, "kleepd is stopping");
		wlist_gone(&rt->ms[i]->rebind, rt->ms[i]->id, NULL, "kleepd is stopping");
		for (int s = 0; s < STREAM_COUNT; s++)
			wlist_gone(&rt->ms[i]->s[s].waiters, rt->ms[i]->id, stream_name(s), "kleepd is stopping");
	}
	if (!rt->pool)
		return;
	/* Queued jobs never start. */
	struct pool_job *list = pool_drain(rt->pool);
	while (list) {
		struct pool_job *next = list->next;
		struct job *job = (struct job *)list;
		job->rc = -EAGAIN;
		job->res.outcome = "interrupted";
		snprintf(job->res.message, sizeof(job->res.message), "kleepd is stopping");
		job->started_usec = job->finished_usec = now_usec();
		job_done(rt, job);
		list = next;
	}
	if (pool_idle(rt->pool))
		sd_event_exit(rt->e, 0);
}

/* config_load's FILE:LINE problems, for the journal and the client. */
static void reload_refused(const char *buf, char *err, size_t errlen)
{
	char *copy = strdup(buf ? buf : ""), *save = NULL;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
		log_err(NULL, "reload refused: %s", line);
	free(copy);
	snprintf(err, errlen, "the new configuration has errors; the old one stays: %s", buf ? buf : "");
	size_t n = strlen(err);
	if (n && err[n - 1] == '\n')
		err[n - 1] = 0;
}

/* Folders and the pool size are the running process's: they change at restart. */
static void keep_process_settings(struct daemon_conf *nd, const struct daemon_conf *od)
{
	if (strcmp(nd->state_dir, od->state_dir) == 0 && strcmp(nd->runtime_dir, od->runtime_dir) == 0 &&
	    nd->workers == od->workers)
		return;
	log_warning(NULL, "reload: state_dir, runtime_dir and workers take effect at the next "
			  "restart; keeping %s, %s and %d workers", od->state_dir, od->runtime_dir,
		    od->workers);
	char *keep_state = strdup(od->state_dir), *keep_run = strdup(od->runtime_dir);
	if (keep_state && keep_run) {
		free(nd->state_dir);
		free(nd->runtime_dir);
		nd->state_dir = keep_state;
		nd->runtime_dir = keep_run;
		keep_state = keep_run = NULL;
	}
	free(keep_state);
	free(keep_run);
	nd->workers = od->workers;
}

int runtime_reload(struct runtime *rt, char *err, size_t errlen)
{
	struct config *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&buf, &len);
	if (!errs)
		return -ENOMEM;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec());
	int r = config_load(rt->config_path, &c, errs);
	fclose(errs);
	if (r < 0)
		reload_refused(buf, err, errlen);
	free(buf);
	struct cfg *nc = r < 0 ? NULL : cfg_new(c);
	if (!nc) {
		sd_notify(0, "READY=1");
		return r < 0 ? -EINVAL : -ENOMEM;
	}
	keep_process_settings(&c->daemon, &rt->cfg->c->daemon);
	struct cfg *old = rt->cfg;
	rt->cfg = nc;
	log_set_level(c->daemon.log_level);
	r = merchants_apply(rt);
	cfg_unref(old);
	log_notice(NULL, "configuration reloaded: %zu merchants", c->n_merchants);
	notify_status(rt);
	sd_notify(0, "READY=1");
	return r;
}

/* ---- requests ------------------------------------------------------------ */

enum runtime_refusal runtime_sync(struct runtime *rt, const char *m, int s, bool full,
				  struct runtime_waiter *waiters, int *queued, char *err, size_t errlen)
{
	struct mstate *ms = runtime_find(rt, m);
	*queued = 0;
	if (!ms)
		return RUNTIME_NO_MERCHANT;
	if (s >= 0 && !ms->s[s].enabled) {
		snprintf(err, errlen, "merchant '%s' does not sync %s", ms->id, stream_name(s));
		return RUNTIME_USAGE;
	}
	if (full && s == STREAM_SFTP) {
		snprintf(err, errlen, "--full resets an API stream's cursor; the SFTP ledger re-applies "
				      "a file when its content changes");
		return RUNTIME_USAGE;
	}
	if (full && s < 0) {
		snprintf(err, errlen, "--full resets one stream: name it");
		return RUNTIME_USAGE;
	}
	if (rt->stopping)
		return RUNTIME_STOPPING;
	if (ms->paused)
		return RUNTIME_PAUSED;
	for (int k = 0; k < STREAM_COUNT; k++) {
		if ((s >= 0 && k != s) || !ms->s[k].enabled)
			continue;
		ms->s[k].due = true;
		ms->s[k].full = ms->s[k].full || full;
		/* Parked before the run is asked for, which may start it at once. */
		if (waiters)
			wlist_push(&ms->s[k].waiters, &waiters[k]);
		(*queued)++;
	}
	if (*queued)
		dispatch(rt, ms);
	return RUNTIME_OK;
}

enum runtime_refusal runtime_pause(struct runtime *rt, const char *m, bool paused)
{
	struct mstate *ms = runtime_find(rt, m);
	if (!ms)
		return RUNTIME_NO_MERCHANT;
	ms->paused = paused;
	log_notice(MCTX(ms), paused ? "paused" : "resumed");
	if (!paused)
		dispatch(rt, ms);
	notify_status(rt);
	return RUNTIME_OK;
}

enum runtime_refusal runtime_reproject(struct runtime *rt, const char *m, struct runtime_waiter *w,
				       char *err, size_t errlen)
{
	struct mstate *ms = runtime_find(rt, m);
	if (!ms)
		return RUNTIME_NO_MERCHANT;
	if (!ms->conf->has_wshop) {
		snprintf(err, errlen, "merchant '%s' has no [wshop]: nothing to reproject", ms->id);
		return RUNTIME_USAGE;
	}
	if (rt->stopping)
		return RUNTIME_STOPPING;
	wlist_push(&ms->reproject, w);
	dispatch(rt, ms);
	return RUNTIME_OK;
}

/* A job beside the merchant's syncs (a check, a query): it may outlive the merchant. */
static enum runtime_refusal side_job(struct runtime *rt, const char *m, enum job_kind kind,
				     struct runtime_waiter *w, struct job **out)
{
	struct mstate *ms = runtime_find(rt, m);
	if (!ms)
		return RUNTIME_NO_MERCHANT;
	if (rt->stopping)
		return RUNTIME_STOPPING;
	struct job *job = job_new(rt, kind, ms);
	if (!job)
		return RUNTIME_NOMEM;
	wlist_push(&job->waiters, w);
	*out = job;
	return RUNTIME_OK;
}

enum runtime_refusal runtime_check(struct runtime *rt, const char *m, struct runtime_waiter *w)
{
	struct job *job;
	enum runtime_refusal r = side_job(rt, m, JOB_CHECK, w, &job);
	if (r == RUNTIME_OK)
		pool_submit(rt->pool, &job->pj);
	return r;
}

enum runtime_refusal runtime_query(struct runtime *rt, const char *m, enum runtime_query q,
				   const char *param, long n, runtime_render render,
				   struct runtime_waiter *w)
{
	struct job *job;
	enum runtime_refusal r = side_job(rt, m, JOB_QUERY, w, &job);
	if (r != RUNTIME_OK)
		return r;
	job->q = q;
	job->render = render;
	job->n = n > 0 ? n : q == RUNTIME_RUNS ? QUERY_ROWS_RUNS : QUERY_ROWS_OTHER;
	if (param && !(job->param = strdup(param))) {
		runtime_waiter_cancel(w);
		job_free(job);
		return RUNTIME_NOMEM;
	}
	pool_submit(rt->pool, &job->pj);
	return RUNTIME_OK;
}
