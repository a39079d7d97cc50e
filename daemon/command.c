/* command.c - the control socket's commands (DESIGN.md §7): each asks the runtime and
 * words its answer, at once or when the job it started ends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_priv.h"
#include "log.h"
#include "store.h"

#define STATUS_CHUNK 16           /* merchants written per loop turn of a long status */

/* A refusal of the runtime as a reply; false when the client is gone. */
static bool refused(struct client *cl, enum runtime_refusal r, const struct ctl_request *rq, const char *err)
{
	switch (r) {
	case RUNTIME_OK: return true;
	case RUNTIME_NO_MERCHANT:
		return client_send(cl, ctl_reply_error("no_such_merchant", "no merchant '%s' is configured",
						       rq->merchant));
	case RUNTIME_USAGE: return client_send(cl, ctl_reply_error("usage", "%s", err));
	case RUNTIME_PAUSED:
		return client_send(cl, ctl_reply_error("paused", "merchant '%s' is paused; resume it first",
						       rq->merchant));
	case RUNTIME_STOPPING: return client_send(cl, ctl_reply_error("stopping", "kleepd is stopping"));
	case RUNTIME_NOMEM: break;
	}
	return client_send(cl, ctl_reply_error("internal", "out of memory"));
}

/* The merchant a request names, or false with an error reply sent. */
static bool need_merchant(struct client *cl, const struct ctl_request *rq)
{
	if (rq->merchant)
		return true;
	client_send(cl, ctl_reply_error("usage", "'%s' needs a merchant", rq->cmd));
	return false;
}

static void cmd_version(struct client *cl, const struct ctl_request *rq)
{
	(void)rq;
	client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:i}", "version", KLEEP_VERSION, "protocol",
					       CTL_VERSION, "schema", store_schema_latest())));
}

/* ---- status, a few merchants per loop turn ---------------------------------- */

/* Write the next merchants of a long status; the end of the reply after the last. */
static int on_status_chunk(sd_event_source *src, void *userdata)
{
	struct client *cl = userdata;
	(void)src;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	size_t n = json_array_size(cl->ids);
	for (int k = 0; f && k < STATUS_CHUNK && cl->next_id < n; cl->next_id++) {
		json_t *m = runtime_merchant_status(cl->ctl->rt, json_string_value(json_array_get(cl->ids, cl->next_id)));
		if (!m)
			continue; /* removed meanwhile */
		fputs(cl->written++ ? "," : "", f);
		json_dumpf(m, f, JSON_COMPACT);
		json_decref(m);
		k++;
	}
	bool last = cl->next_id >= n;
	if (f) {
		fputs(last ? "]}}\n" : "", f);
		fclose(f);
	}
	if (!f || !text) {
		client_free(cl);
		free(text);
		return 0;
	}
	bool alive = client_write(cl, text, len);
	free(text);
	if (alive && last) {
		cl->streamer = sd_event_source_disable_unref(cl->streamer);
		cl->ids = (json_decref(cl->ids), NULL);
		client_answered(cl);
	}
	return 0;
}

/*
 * status of every merchant: the daemon's part now, then the merchants a few
 * per loop turn at idle priority, so that a thousand merchants' status never
 * holds up another client's short request.
 */
static void cmd_status(struct client *cl, const struct ctl_request *rq)
{
	struct runtime *rt = cl->ctl->rt;
	json_t *head = runtime_status_head(rt);
	if (rq->merchant) {
		json_t *m = runtime_merchant_status(rt, rq->merchant);
		if (!m) {
			json_decref(head);
			refused(cl, RUNTIME_NO_MERCHANT, rq, NULL);
			return;
		}
		json_object_set_new(head, "merchants", json_pack("[o]", m));
		client_send(cl, ctl_reply_ok(head));
		return;
	}
	/* {"ok":true,"data":{...head..., "merchants":[ ... ]}} */
	json_object_set_new(head, "merchants", json_array());
	static const char tail[] = "]}}\n";
	char *line = ctl_reply_ok(head);
	size_t n = line ? strlen(line) : 0;
	bool ok = n > strlen(tail) && strcmp(line + n - strlen(tail), tail) == 0;
	cl->ids = runtime_merchant_ids(rt);
	if (!ok || !cl->ids || sd_event_add_defer(cl->ctl->e, &cl->streamer, on_status_chunk, cl) < 0) {
		free(line);
		client_send(cl, ctl_reply_error("internal", "out of memory"));
		return;
	}
	sd_event_source_set_priority(cl->streamer, SD_EVENT_PRIORITY_IDLE);
	sd_event_source_set_enabled(cl->streamer, SD_EVENT_ON); /* a defer source fires once by default */
	cl->next_id = cl->written = 0;
	client_wait(cl, WAIT_STATUS);
	client_write(cl, line, n - strlen(tail));
	free(line);
}

/* ---- commands that change things ------------------------------------------ */

static void cmd_sync(struct client *cl, const struct ctl_request *rq)
{
	int s = -1, queued;
	char err[512] = "";
	if (!need_merchant(cl, rq))
		return;
	if (rq->stream && (s = stream_from_name(rq->stream)) < 0) {
		client_send(cl, ctl_reply_error("usage", "no stream '%s'", rq->stream));
		return;
	}
	enum runtime_refusal r = runtime_sync(cl->ctl->rt, rq->merchant, s, rq->full,
					      rq->wait ? cl->w : NULL, &queued, err, sizeof(err));
	if (r != RUNTIME_OK) {
		refused(cl, r, rq, err);
		return;
	}
	if (!rq->wait) {
		client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:b}", "merchant", rq->merchant, "queued",
						       queued, "full", rq->full)));
		return;
	}
	if (queued == 0) {
		client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:[]}", "merchant", rq->merchant, "failed", 0,
						       "runs")));
		return;
	}
	/* Answered by client_on_answer as each run this request started ends. */
	cl->pending = queued;
	if (s < 0 && !(cl->answers = json_array())) {
		for (int k = 0; k < STREAM_COUNT; k++)
			runtime_waiter_cancel(&cl->w[k]);
		client_send(cl, ctl_reply_error("internal", "out of memory"));
		return;
	}
	client_wait(cl, s < 0 ? WAIT_SYNC_ALL : WAIT_SYNC);
}

static void cmd_pause(struct client *cl, const struct ctl_request *rq)
{
	if (!need_merchant(cl, rq))
		return;
	bool pause = strcmp(rq->cmd, "pause") == 0;
	enum runtime_refusal r = runtime_pause(cl->ctl->rt, rq->merchant, pause);
	if (refused(cl, r, rq, NULL) && r == RUNTIME_OK)
		client_send(cl, ctl_reply_ok(json_pack("{s:s,s:b}", "merchant", rq->merchant, "paused", pause)));
}

static void cmd_reload(struct client *cl, const struct ctl_request *rq)
{
	char err[8192];
	(void)rq;
	int r = runtime_reload(cl->ctl->rt, err, sizeof(err));
	control_reconfigured(cl->ctl);
	if (r < 0)
		client_send(cl, ctl_reply_error("bad_config", "%s", err));
	else
		client_send(cl, ctl_reply_ok(json_pack("{s:I}", "merchants",
						       (json_int_t)runtime_config(cl->ctl->rt)->n_merchants)));
}

static void cmd_metrics(struct client *cl, const struct ctl_request *rq)
{
	bool openmetrics = json_is_true(json_object_get(rq->json, "openmetrics"));
	char *text = runtime_metrics(cl->ctl->rt, openmetrics);
	if (!text) {
		client_send(cl, ctl_reply_error("internal", "out of memory"));
		return;
	}
	client_send(cl, ctl_reply_ok(json_pack("{s:s}", "text", text)));
	free(text);
}

/* runs, files, rejects: read on the pool, answered when read. */
static void cmd_query(struct client *cl, const struct ctl_request *rq)
{
	if (!need_merchant(cl, rq))
		return;
	enum runtime_query q = strcmp(rq->cmd, "runs") == 0 ? RUNTIME_RUNS
			       : strcmp(rq->cmd, "files") == 0 ? RUNTIME_FILES : RUNTIME_REJECTS;
	const char *param = q == RUNTIME_RUNS ? rq->stream : rq->file;
	enum runtime_refusal r = runtime_query(cl->ctl->rt, rq->merchant, q, param, rq->n, ctl_reply_ok,
					       &cl->w[0]);
	if (r == RUNTIME_OK)
		client_wait(cl, WAIT_QUERY);
	else
		refused(cl, r, rq, NULL);
}

static void cmd_check(struct client *cl, const struct ctl_request *rq)
{
	if (!need_merchant(cl, rq))
		return;
	enum runtime_refusal r = runtime_check(cl->ctl->rt, rq->merchant, &cl->w[0]);
	if (r == RUNTIME_OK)
		client_wait(cl, WAIT_CHECK);
	else
		refused(cl, r, rq, NULL);
}

static void cmd_reproject(struct client *cl, const struct ctl_request *rq)
{
	char err[512] = "";
	if (!need_merchant(cl, rq))
		return;
	enum runtime_refusal r = runtime_reproject(cl->ctl->rt, rq->merchant, &cl->w[0], err, sizeof(err));
	if (r == RUNTIME_OK)
		client_wait(cl, WAIT_REPROJECT);
	else
		refused(cl, r, rq, err);
}

/* golive and rebind: the merchant's next job, answered when it ends. */
static void cmd_rebind(struct client *cl, const struct ctl_request *rq)
{
	if (!need_merchant(cl, rq))
		return;
	bool golive = strcmp(rq->cmd, "golive") == 0;
	enum runtime_refusal r = runtime_rebind(cl->ctl->rt, rq->merchant, golive, &cl->w[0]);
	if (r == RUNTIME_OK)
		client_wait(cl, golive ? WAIT_GOLIVE : WAIT_REBIND);
	else
		refused(cl, r, rq, NULL);
}

/* ---- answers ------------------------------------------------------------- */

/* The reply to golive or rebind: what was done, or why not (the mirror is untouched then). */
static char *rebind_answer(const char *cmd, const struct runtime_result *r)
{
	if (r->rc != 0)
		return ctl_reply_error(r->rc == -EALREADY ? "nothing_to_do"
				       : r->rc == -EINVAL || r->rc == -ENOENT ? "refused" : "failed",
				       "%s %s: %s", cmd, r->merchant, r->message);
	return ctl_reply_ok(json_pack("{s:s,s:s,s:s}", "merchant", r->merchant, "command", cmd,
				      "message", r->message));
}

static json_t *run_object(const struct runtime_result *r)
{
	return json_pack("{s:s,s:s?,s:s,s:s?,s:I,s:I,s:I,s:I,s:s}", "merchant", r->merchant, "stream",
			 r->stream, "outcome", r->gone ? "failed" : r->outcome, "error_class",
			 r->error_class, "run_id", (json_int_t)r->run_id, "pages", (json_int_t)r->pages,
			 "rows", (json_int_t)r->rows, "changed", (json_int_t)r->changed, "message",
			 r->message ? r->message : "");
}

/* The reply line to one waiter; taken by the caller. */
static char *answer_line(enum client_wait what, const struct runtime_result *r)
{
	if (r->gone)
		return ctl_reply_error("gone", "%s", r->gone);
	switch (what) {
	case WAIT_CHECK:
		return r->data ? ctl_reply_ok(json_incref(r->data))
			       : ctl_reply_error("check_failed", "%s", r->message);
	case WAIT_QUERY:
		return ctl_reply_error("store", "%s", r->rc ? r->message : "out of memory");
	case WAIT_REPROJECT:
		return r->rc == 0 ? ctl_reply_ok(json_pack("{s:s,s:I,s:s}", "merchant", r->merchant,
							   "records", (json_int_t)r->rows, "message",
							   r->message))
				  : ctl_reply_error("reproject_failed", "%s: %s", r->merchant, r->message);
	case WAIT_GOLIVE:
		return rebind_answer("golive", r);
	case WAIT_REBIND:
		return rebind_answer("rebind", r);
	default:
		break;
	}
	if (r->rc != 0)
		return ctl_reply_error("run_failed", "%s/%s: %s%s%s", r->merchant, r->stream, r->outcome,
				       r->message[0] ? ": " : "", r->message);
	return ctl_reply_ok(run_object(r));
}

void client_on_answer(void *arg, const struct runtime_result *r)
{
	struct client *cl = arg;
	if (cl->wait == WAIT_SYNC_ALL) {
		json_array_append_new(cl->answers, run_object(r));
		if (--cl->pending > 0)
			return;
		int failed = 0;
		size_t i;
		json_t *a;
		json_array_foreach(cl->answers, i, a)
			failed += strcmp(json_string_value(json_object_get(a, "outcome")), "success") != 0;
		json_t *runs = cl->answers;
		cl->answers = NULL;
		if (!client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:o}", "merchant", r->merchant,
							    "failed", failed, "runs", runs))))
			return;
	} else if (cl->wait == WAIT_QUERY && !r->gone && r->rc == 0 && *r->text) {
		/* The reply line was made on the worker: taken whole, not copied. */
		char *line = *r->text;
		*r->text = NULL;
		if (!client_send_len(cl, line, r->text_len))
			return;
	} else if (!client_send(cl, answer_line(cl->wait, r))) {
		return;
	}
	client_answered(cl);
}

/* Reading commands for role read; the others change state or call a shop: role admin. */
static const struct command {
	const char *name;
	void (*run)(struct client *cl, const struct ctl_request *rq);
	enum role needs;
} commands[] = {
	{ "status", cmd_status, ROLE_READ },   { "version", cmd_version, ROLE_READ },
	{ "metrics", cmd_metrics, ROLE_READ }, { "runs", cmd_query, ROLE_READ },
	{ "files", cmd_query, ROLE_READ },     { "rejects", cmd_query, ROLE_READ },
	{ "sync", cmd_sync, ROLE_ADMIN },      { "pause", cmd_pause, ROLE_ADMIN },
	{ "resume", cmd_pause, ROLE_ADMIN },   { "reload", cmd_reload, ROLE_ADMIN },
	{ "check", cmd_check, ROLE_ADMIN },    { "reproject", cmd_reproject, ROLE_ADMIN },
	{ "golive", cmd_rebind, ROLE_ADMIN },  { "rebind", cmd_rebind, ROLE_ADMIN },
};

/* A command the client's role does not allow: say so; a peer with no role is then closed. */
static void deny(struct client *cl, const char *cmd)
{
	const char *admin = cl->ctl->admin_group;
	if (cl->role == ROLE_NONE) {
		log_warning(NULL, "control: refused a client (%s): not root, kleepd's user, or in group "
				  "kleep", cl->who);
		cl->closing = true; /* once this reply is out */
		client_send(cl, ctl_reply_error("permission_denied", "permission denied: only root, "
						"kleepd's user and group kleep may use this socket"));
		return;
	}
	log_notice(NULL, "control: refused '%s' to %s: not root, kleepd's user, or in group %s", cmd,
		   cl->who, admin);
	client_send(cl, ctl_reply_error("permission_denied", "permission denied: '%s' changes things; "
					"only root, kleepd's user and group %s may", cmd, admin));
}

bool client_request(struct client *cl, const char *line, size_t len)
{
	struct ctl_request rq;
	const char *code;
	char err[512];

	if (ctl_request_parse(line, len, &rq, &code, err, sizeof(err)) < 0)
		return client_send(cl, ctl_reply_error(code, "%s", err));
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, rq.cmd) == 0)
			cmd = &commands[i];
	/* A command may free the client: it stays allocated, marked dead, until here. */
	cl->busy++;
	if (cl->role == ROLE_NONE || (cmd && cmd->needs > cl->role))
		deny(cl, rq.cmd);
	else if (cmd)
		cmd->run(cl, &rq);
	else
		client_send(cl, ctl_reply_error("unknown_command", "unknown command '%s'", rq.cmd));
	ctl_request_free(&rq);
	cl->busy--;
	if (cl->dead) {
		client_free(cl);
		return false;
	}
	return true;
}
