/* status.c - what the runtime tells: kleepctl status one merchant at a time, metrics, and
 * the one-line STATUS= for systemd. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "ctl.h"
#include "runtime_priv.h"
#include "source.h"

#define STATUS_INTERVAL_USEC 1000000ull /* a thousand merchants start and end jobs fast */

/* "12 merchants, 2 syncing, 1 failing, 0 queued": for STATUS= and kleepctl status. */
static void status_summary(struct runtime *rt, char *line, size_t size)
{
	int syncing = 0, failing = 0, merchants = 0;
	for (size_t i = 0; i < rt->n_ms; i++) {
		struct mstate *ms = rt->ms[i];
		if (ms->removed)
			continue;
		merchants++;
		if (ms->job && ms->job->kind != JOB_LOAD && atomic_load(&ms->job->started))
			syncing++;
		for (int s = 0; s < STREAM_COUNT; s++)
			if (ms->s[s].enabled && ms->s[s].last.error_class[0]) {
				failing++;
				break;
			}
	}
	snprintf(line, size, "%d merchant%s, %d syncing, %d failing, %d queued", merchants,
		 merchants == 1 ? "" : "s", syncing, failing, pool_queued(rt->pool));
}

static int on_status_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	(void)src, (void)usec;
	notify_status(userdata);
	return 0;
}

/*
 * Keep STATUS= current without flooding the notify socket: a changed line
 * goes out at once when the last one is a second old, otherwise a timer
 * sends the line current then.
 */
void notify_status(struct runtime *rt)
{
	char line[256];
	status_summary(rt, line, sizeof(line));
	if (strcmp(line, rt->status_line) == 0)
		return;
	uint64_t now = now_usec();
	if (rt->status_sent_usec && now < rt->status_sent_usec + STATUS_INTERVAL_USEC) {
		uint64_t at = rt->status_sent_usec + STATUS_INTERVAL_USEC;
		if (!rt->status_timer)
			sd_event_add_time(rt->e, &rt->status_timer, CLOCK_MONOTONIC, at, 0, on_status_timer, rt);
		else {
			sd_event_source_set_time(rt->status_timer, at);
			sd_event_source_set_enabled(rt->status_timer, SD_EVENT_ONESHOT);
		}
		return;
	}
	snprintf(rt->status_line, sizeof(rt->status_line), "%s", line);
	rt->status_sent_usec = now;
	sd_notifyf(0, "STATUS=%s", line);
}

static bool stream_running(const struct mstate *ms, enum stream s)
{
	return ms->job && ms->job->kind == JOB_SYNC && ms->job->s == s;
}

const char *stream_state(const struct mstate *ms, enum stream s)
{
	const struct stream_rt *st = &ms->s[s];
	if (!st->enabled)
		return "disabled";
	if (stream_running(ms, s))
		return atomic_load(&ms->job->started) ? "running" : "queued";
	if (ms->paused)
		return "paused";
	if (st->last.unauthorized)
		return "unauthorized";
	if (st->last.error_class[0])
		return "failing";
	return "idle";
}

/* A string for status, or null; text that is not valid UTF-8 (a file name
 * from a merchant's server) is shown with '?' rather than dropping the stream. */
static json_t *str_or_null(const char *s)
{
	return s && *s ? ctl_json_text(s) : json_null();
}

/* age_s, next_run, next_in_s and progress: what changes with the clock. */
static void stream_times(const struct mstate *ms, enum stream s, json_t *o)
{
	const struct stream_rt *st = &ms->s[s];
	time_t wall = time(NULL), t;
	uint64_t now = now_usec();
	if (st->last.last_success[0] && tstamp_parse(st->last.last_success, &t) == 0)
		json_object_set_new(o, "age_s", json_integer(wall > t ? (json_int_t)(wall - t) : 0));
	else
		json_object_set_new(o, "age_s", json_null());
	if (st->next_usec && !ms->paused) {
		int64_t in = (int64_t)(st->next_usec > now ? st->next_usec - now : 0) / 1000000;
		tstamp_t next;
		tstamp_format(wall + (time_t)in, next);
		json_object_set_new(o, "next_run", json_string(next));
		json_object_set_new(o, "next_in_s", json_integer(in));
	} else {
		json_object_set_new(o, "next_run", json_null());
		json_object_set_new(o, "next_in_s", json_null());
	}
	if (stream_running(ms, s) && atomic_load(&ms->job->started))
		json_object_set_new(o, "progress",
				    json_pack("{s:I,s:I}", "pages",
					      (json_int_t)atomic_load(&ms->job->progress.pages), "rows",
					      (json_int_t)atomic_load(&ms->job->progress.rows)));
}

static json_t *stream_status(const struct mstate *ms, enum stream s)
{
	const struct stream_rt *st = &ms->s[s];
	json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:I}",
			      "stream", stream_name(s), "state", stream_state(ms, s),
			      "last_success", str_or_null(st->last.last_success),
			      "last_attempt", str_or_null(st->last.last_attempt),
			      "cursor", str_or_null(st->last.cursor), "rows_total", (json_int_t)st->last.rows_total,
			      "error_class", str_or_null(st->last.error_class),
			      "last_error", str_or_null(st->last.last_error),
			      "endpoint", str_or_null(st->last.endpoint),
			      "interval_s", (json_int_t)(st->interval_usec / 1000000u));
	if (o)
		stream_times(ms, s, o);
	return o;
}

json_t *runtime_merchant_status(struct runtime *rt, const char *m)
{
	struct mstate *ms = runtime_find(rt, m);
	if (!ms)
		return NULL;
	json_t *streams = json_array();
	for (int k = 0; k <= STREAM_API_COUNT; k++) {
		enum stream s = k < STREAM_API_COUNT ? sync_order[k] : STREAM_SFTP;
		if (ms->s[s].enabled)
			json_array_append_new(streams, stream_status(ms, s));
	}
	char db[4200];
	snprintf(db, sizeof(db), "%s/%s.db", rt->cfg->c->daemon.state_dir, ms->id);
	json_t *o = json_pack("{s:s,s:s,s:b,s:s,s:o}", "merchant", ms->id, "environment",
			      source_environment_name(ms->conf->environment), "paused", ms->paused,
			      "db", db, "streams", streams);
	rebind_status(ms, o);
	return o;
}

json_t *runtime_merchant_ids(struct runtime *rt)
{
	json_t *ids = json_array();
	for (size_t i = 0; ids && i < rt->n_ms; i++)
		if (!rt->ms[i]->removed)
			json_array_append_new(ids, json_string(rt->ms[i]->id));
	return ids;
}

json_t *runtime_status_head(struct runtime *rt)
{
	char summary[256];
	status_summary(rt, summary, sizeof(summary));
	return json_pack("{s:s,s:s,s:I,s:i,s:i}", "version", KLEEP_VERSION, "summary", summary,
			 "uptime_s", (json_int_t)((now_usec() - rt->started_usec) / 1000000u),
			 "jobs_running", pool_running(rt->pool), "queue", pool_queued(rt->pool));
}

/* ---- metrics ------------------------------------------------------------- */

/* One per-stream family; value() false when the stream has no sample of it. */
struct family {
	const char *name, *type, *help;
	bool (*value)(const struct stream_rt *st, enum stream s, double *v);
};

static bool v_last_success(const struct stream_rt *st, enum stream s, double *v)
{
	(void)s;
	time_t t;
	if (!st->last.last_success[0] || tstamp_parse(st->last.last_success, &t) < 0)
		return false; /* never succeeded: no sample, rather than 0 (1970) */
	*v = (double)t;
	return true;
}

static bool v_rows(const struct stream_rt *st, enum stream s, double *v) { (void)s; *v = (double)st->last.rows_total; return true; }
static bool v_runs(const struct stream_rt *st, enum stream s, double *v) { (void)s; *v = (double)st->runs; return true; }
static bool v_errors(const struct stream_rt *st, enum stream s, double *v) { (void)s; *v = (double)st->errors; return true; }
static bool v_duration(const struct stream_rt *st, enum stream s, double *v) { (void)s; *v = st->last_duration_s; return true; }
static bool v_unauthorized(const struct stream_rt *st, enum stream s, double *v) { (void)s; *v = st->last.unauthorized; return true; }

static bool v_interval(const struct stream_rt *st, enum stream s, double *v)
{
	(void)s;
	*v = (double)st->interval_usec / 1e6;
	return true;
}

static bool v_files_rejected(const struct stream_rt *st, enum stream s, double *v)
{
	*v = (double)st->files_rejected;
	return s == STREAM_SFTP;
}

static const struct family families[] = {
	{ "kleep_last_success_timestamp_seconds", "gauge", "When the stream last synced whole.", v_last_success },
	{ "kleep_rows", "gauge", "Records mirrored for the stream.", v_rows },
	{ "kleep_runs", "counter", "Runs since kleepd started.", v_runs },
	{ "kleep_errors", "counter", "Failed runs since kleepd started.", v_errors },
	{ "kleep_last_run_duration_seconds", "gauge", "Duration of the last run.", v_duration },
	{ "kleep_unauthorized", "gauge", "1 when the API user may not call the stream's endpoint.", v_unauthorized },
	{ "kleep_interval_seconds", "gauge", "How often the stream runs.", v_interval },
	{ "kleep_sftp_files_rejected", "counter", "CSV files the SFTP scan refused whole since kleepd started.",
	  v_files_rejected },
};

/*
 * A family's TYPE and HELP.  Prometheus text names them after the samples
 * (kleep_runs_total); OpenMetrics after the family (kleep_runs), its samples
 * carrying the _total suffix.
 */
static void family_head(FILE *f, const char *name, const char *type, const char *help, bool om)
{
	const char *suffix = !om && strcmp(type, "counter") == 0 ? "_total" : "";
	fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
}

static void daemon_gauge(FILE *f, const char *name, const char *help, long long v, bool om)
{
	family_head(f, name, "gauge", help, om);
	fprintf(f, "%s %lld\n", name, v);
}

char *runtime_metrics(struct runtime *rt, bool openmetrics)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	long long live = 0;
	for (size_t i = 0; i < rt->n_ms; i++)
		live += !rt->ms[i]->removed;
	daemon_gauge(f, "kleep_merchants", "Merchants configured.", live, openmetrics);
	daemon_gauge(f, "kleep_jobs_running", "Jobs running now.", pool_running(rt->pool), openmetrics);
	daemon_gauge(f, "kleep_queue_length", "Jobs waiting for a worker.", pool_queued(rt->pool), openmetrics);
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct family *fam = &families[k];
		const char *suffix = strcmp(fam->type, "counter") == 0 ? "_total" : "";
		family_head(f, fam->name, fam->type, fam->help, openmetrics);
		for (size_t i = 0; i < rt->n_ms; i++) {
			const struct mstate *ms = rt->ms[i];
			for (int s = 0; s < STREAM_COUNT && !ms->removed; s++) {
				double v;
				if (ms->s[s].enabled && fam->value(&ms->s[s], s, &v))
					fprintf(f, "%s%s{merchant=\"%s\",stream=\"%s\"} %.15g\n", fam->name,
						suffix, ms->id, stream_name(s), v);
			}
		}
	}
	if (openmetrics)
		fputs("# EOF\n", f);
	fclose(f);
	return buf;
}
