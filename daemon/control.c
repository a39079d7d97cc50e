/* control.c - the control socket: per-client buffers on the event loop, peer checks,
 * and the commands of DESIGN.md §7. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "ctl.h"
#include "kleepd.h"
#include "log.h"

#define CONTROL_CLIENTS_MAX 4096
#define CONTROL_OUT_MAX (64u * 1024 * 1024) /* a client that reads nothing is dropped past this */
/* While this much of a client's replies waits to be sent, its further requests wait
 * too: a client that pipelines requests and reads nothing gets no more of the loop. */
#define CONTROL_OUT_PAUSE (256u * 1024)
#define CONTROL_IDLE_USEC (60 * 1000000ull)   /* a silent client is closed after a minute */
#define CONTROL_GROUP "kleep"

struct client {
	struct control *ctl;
	int fd;
	sd_event_source *io, *idle;
	sd_event_source *resume;  /* a deferred read of requests held while waiting */
	char in[CTL_REQUEST_MAX + 1];
	size_t in_len;
	bool discarding;          /* skipping the rest of an oversized request */
	char *out;
	size_t out_len, out_off, out_cap;
	bool waiting;             /* a job will answer (sync --wait, check) */
	struct waiter *waiter;    /* that job's note of us, cleared if we go first */
	bool closing;             /* close once out is flushed */
	struct client *prev, *next;
};

struct control {
	struct daemon *d;
	int fd;
	bool owns_path;
	char path[108];
	sd_event_source *src;
	struct client *clients;
	int n_clients;
};

static void client_free(struct client *cl)
{
	struct control *c = cl->ctl;
	if (cl->waiter)
		cl->waiter->client = NULL;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;
	sd_event_source_disable_unref(cl->io);
	sd_event_source_disable_unref(cl->idle);
	sd_event_source_disable_unref(cl->resume);
	close(cl->fd);
	free(cl->out);
	free(cl);
}

static size_t client_pending(const struct client *cl)
{
	return cl->out_len - cl->out_off;
}

static void client_update_events(struct client *cl)
{
	uint32_t ev = 0;
	if (!cl->waiting && !cl->closing && client_pending(cl) < CONTROL_OUT_PAUSE)
		ev |= EPOLLIN;
	if (cl->out_len > cl->out_off)
		ev |= EPOLLOUT;
	sd_event_source_set_io_events(cl->io, ev);
}

/* Write what we can; false when the client is gone. */
static bool client_flush(struct client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			client_free(cl);
			return false;
		}
		cl->out_off += (size_t)n;
	}
	if (cl->out_off == cl->out_len) {
		cl->out_off = cl->out_len = 0;
		if (cl->closing) {
			client_free(cl);
			return false;
		}
	}
	client_update_events(cl);
	return true;
}

/* Queue one reply line (taken); false when the client is gone. */
static bool client_send(struct client *cl, char *line)
{
	if (!line)
		line = strdup("{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n");
	size_t n = line ? strlen(line) : 0;
	if (!line || client_pending(cl) + n > CONTROL_OUT_MAX) {
		free(line);
		client_free(cl);
		return false;
	}
	if (cl->out_off && cl->out_len + n > cl->out_cap) {
		/* Reuse the room of what was sent before growing. */
		memmove(cl->out, cl->out + cl->out_off, client_pending(cl));
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	if (cl->out_len + n > cl->out_cap) {
		/* Grow by doubling: appending many replies stays linear. */
		size_t cap = cl->out_cap ? cl->out_cap * 2 : 4096;
		while (cap < cl->out_len + n)
			cap *= 2;
		char *grown = realloc(cl->out, cap);
		if (!grown) {
			free(line);
			client_free(cl);
			return false;
		}
		cl->out = grown;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, line, n);
	cl->out_len += n;
	free(line);
	return client_flush(cl);
}

/* ---- commands ------------------------------------------------------------ */

/*
 * A waiter for a job that will answer this client, which stops reading
 * until then.  NULL (and an error reply sent) when out of memory.
 */
static struct waiter *client_wait(struct client *cl)
{
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		client_send(cl, ctl_reply_error("internal", "out of memory"));
		return NULL;
	}
	w->client = cl;
	cl->waiter = w;
	cl->waiting = true;
	client_update_events(cl);
	return w;
}

/* The merchant a request names, or an error reply sent. */
static struct mstate *need_merchant(struct client *cl, const struct ctl_request *rq)
{
	if (!rq->merchant) {
		client_send(cl, ctl_reply_error("usage", "'%s' needs a merchant", rq->cmd));
		return NULL;
	}
	struct mstate *ms = runtime_merchant(cl->ctl->d, rq->merchant);
	if (!ms)
		client_send(cl, ctl_reply_error("no_such_merchant", "no merchant '%s' is configured",
						rq->merchant));
	return ms;
}

static void cmd_version(struct client *cl, const struct ctl_request *rq)
{
	(void)rq;
	client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:i}", "version", KLEEP_VERSION, "protocol",
					       CTL_VERSION, "schema", store_schema_latest())));
}

static void cmd_status(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = NULL;
	if (rq->merchant && !(ms = need_merchant(cl, rq)))
		return;
	client_send(cl, ctl_reply_ok(runtime_status(cl->ctl->d, ms)));
}

static void cmd_sync(struct client *cl, const struct ctl_request *rq)
{
	struct daemon *d = cl->ctl->d;
	struct mstate *ms = need_merchant(cl, rq);
	int s = -1;
	if (!ms)
		return;
	if (rq->stream && (s = stream_from_name(rq->stream)) < 0) {
		client_send(cl, ctl_reply_error("usage", "no stream '%s'", rq->stream));
		return;
	}
	if (s >= 0 && !ms->s[s].enabled) {
		client_send(cl, ctl_reply_error("usage", "merchant '%s' does not sync %s", ms->id, rq->stream));
		return;
	}
	if (rq->wait && s < 0) {
		client_send(cl, ctl_reply_error("usage", "--wait waits for one stream's run: name the stream"));
		return;
	}
	if (rq->full && s == STREAM_SFTP) {
		client_send(cl, ctl_reply_error("usage", "--full resets an API stream's cursor; the SFTP "
							 "ledger re-applies a file when its content changes"));
		return;
	}
	if (rq->full && s < 0) {
		client_send(cl, ctl_reply_error("usage", "--full resets one stream: name it"));
		return;
	}
	if (d->stopping) {
		client_send(cl, ctl_reply_error("stopping", "kleepd is stopping"));
		return;
	}
	if (ms->paused) {
		client_send(cl, ctl_reply_error("paused", "merchant '%s' is paused; resume it first", ms->id));
		return;
	}
	if (rq->wait && s >= 0) {
		/* Answered by control_job_done when the run this request starts
		 * ends: the waiter goes with the stream until its next job takes it.
		 * Parked before the run is asked for, which may start it at once. */
		struct waiter *w = client_wait(cl);
		if (!w)
			return;
		w->next = ms->s[s].waiters;
		ms->s[s].waiters = w;
		runtime_sync_now(d, ms, s, rq->full);
		return;
	}
	int n = runtime_sync_now(d, ms, s, rq->full);
	client_send(cl, ctl_reply_ok(json_pack("{s:s,s:i,s:b}", "merchant", ms->id, "queued", n, "full",
					       rq->full)));
}

static void cmd_pause(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = need_merchant(cl, rq);
	if (!ms)
		return;
	bool pause = strcmp(rq->cmd, "pause") == 0;
	runtime_pause(cl->ctl->d, ms, pause);
	client_send(cl, ctl_reply_ok(json_pack("{s:s,s:b}", "merchant", ms->id, "paused", pause)));
}

static void cmd_reload(struct client *cl, const struct ctl_request *rq)
{
	char err[8192];
	(void)rq;
	if (runtime_reload(cl->ctl->d, err, sizeof(err)) < 0)
		client_send(cl, ctl_reply_error("bad_config", "%s", err));
	else
		client_send(cl, ctl_reply_ok(json_pack("{s:I}", "merchants",
						       (json_int_t)cl->ctl->d->cfg->c->n_merchants)));
}

static void cmd_metrics(struct client *cl, const struct ctl_request *rq)
{
	(void)rq;
	char *text = runtime_metrics(cl->ctl->d);
	if (!text) {
		client_send(cl, ctl_reply_error("internal", "out of memory"));
		return;
	}
	client_send(cl, ctl_reply_ok(json_pack("{s:s}", "text", text)));
	free(text);
}

/* Read-only queries on a merchant's mirror: short, indexed, on a connection of their own. */
static json_t *query_rows(const char *db_path, const char *sql, const char *param, long n, char *err,
			  size_t errlen)
{
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	json_t *rows = NULL;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 1000);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (param)
		sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, n);
	rows = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *row = json_object();
		for (int i = 0; i < sqlite3_column_count(s); i++) {
			const char *name = sqlite3_column_name(s, i);
			switch (sqlite3_column_type(s, i)) {
			case SQLITE_INTEGER:
				json_object_set_new(row, name, json_integer(sqlite3_column_int64(s, i)));
				break;
			case SQLITE_FLOAT:
				json_object_set_new(row, name, json_real(sqlite3_column_double(s, i)));
				break;
			case SQLITE_NULL:
				json_object_set_new(row, name, json_null());
				break;
			default: {
				/* A remote file name may not be UTF-8: show it mended, never drop the row. */
				json_t *v = json_string((const char *)sqlite3_column_text(s, i));
				if (!v) {
					char *copy = strdup((const char *)sqlite3_column_text(s, i));
					if (copy) {
						ctl_utf8_mend(copy);
						v = json_string(copy);
						free(copy);
					}
				}
				json_object_set_new(row, name, v ? v : json_null());
			}
			}
		}
		json_array_append_new(rows, row);
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		json_decref(rows);
		rows = NULL;
	}
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return rows;
}

static const char *SQL_RUNS =
	"SELECT run_id, stream, started, finished, outcome, pages, rows_in, rows_changed,"
	"       http_requests, bytes, error_class, error"
	" FROM sync_runs WHERE ?1 IS NULL OR stream = ?1 ORDER BY run_id DESC LIMIT ?2";
static const char *SQL_FILES =
	"SELECT path, kind, size, mtime, sha256, first_seen, applied_at, outcome, rows, rejects, reason"
	" FROM sftp_files WHERE ?1 IS NULL OR path = ?1 ORDER BY path LIMIT ?2";
static const char *SQL_REJECTS =
	"SELECT path, line, reason FROM csv_rejects WHERE ?1 IS NULL OR path = ?1"
	" ORDER BY path, line LIMIT ?2";

static void cmd_query(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = need_merchant(cl, rq);
	if (!ms)
		return;
	const char *sql = strcmp(rq->cmd, "runs") == 0 ? SQL_RUNS
			  : strcmp(rq->cmd, "files") == 0 ? SQL_FILES : SQL_REJECTS;
	const char *param = sql == SQL_RUNS ? rq->stream : rq->file;
	long n = rq->n > 0 ? rq->n : sql == SQL_RUNS ? 20 : 1000;
	char path[4096], err[5000] = "";
	snprintf(path, sizeof(path), "%s/%s.db", cl->ctl->d->cfg->c->daemon.state_dir, ms->id);
	if (access(path, F_OK) < 0) {
		client_send(cl, ctl_reply_ok(json_array()));
		return;
	}
	json_t *rows = query_rows(path, sql, param, n, err, sizeof(err));
	if (!rows)
		client_send(cl, ctl_reply_error("store", "%s", err));
	else
		client_send(cl, ctl_reply_ok(rows));
}

static void cmd_check(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = need_merchant(cl, rq);
	if (!ms)
		return;
	if (cl->ctl->d->stopping) {
		client_send(cl, ctl_reply_error("stopping", "kleepd is stopping"));
		return;
	}
	struct waiter *w = client_wait(cl);
	if (w && runtime_check(cl->ctl->d, ms, w) < 0) {
		control_waiter_drop(w, "out of memory");
		free(w);
	}
}

static void cmd_reproject(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = need_merchant(cl, rq);
	if (!ms)
		return;
	if (!ms->conf->has_wshop) {
		client_send(cl, ctl_reply_error("usage", "merchant '%s' has no [wshop]: nothing to reproject",
						ms->id));
		return;
	}
	if (cl->ctl->d->stopping) {
		client_send(cl, ctl_reply_error("stopping", "kleepd is stopping"));
		return;
	}
	struct waiter *w = client_wait(cl);
	if (w)
		runtime_reproject(cl->ctl->d, ms, w);
}

/* golive and rebind: the merchant's next job, answered when it ends (admin commands). */
static void cmd_rebind(struct client *cl, const struct ctl_request *rq)
{
	struct mstate *ms = need_merchant(cl, rq);
	if (!ms)
		return;
	if (cl->ctl->d->stopping) {
		client_send(cl, ctl_reply_error("stopping", "kleepd is stopping"));
		return;
	}
	struct waiter *w = client_wait(cl);
	if (w)
		runtime_rebind(cl->ctl->d, ms, strcmp(rq->cmd, "golive") == 0, w);
}

static const struct command {
	const char *name;
	void (*run)(struct client *cl, const struct ctl_request *rq);
} commands[] = {
	{ "status", cmd_status },   { "version", cmd_version }, { "sync", cmd_sync },
	{ "pause", cmd_pause },     { "resume", cmd_pause },    { "reload", cmd_reload },
	{ "metrics", cmd_metrics }, { "runs", cmd_query },      { "files", cmd_query },
	{ "rejects", cmd_query },   { "check", cmd_check },     { "reproject", cmd_reproject },
	{ "golive", cmd_rebind },   { "rebind", cmd_rebind },
};

/* One request line; false when the client is gone. */
static bool client_request(struct client *cl, const char *line, size_t len)
{
	struct ctl_request rq;
	const char *code;
	char err[512];

	if (ctl_request_parse(line, len, &rq, &code, err, sizeof(err)) < 0)
		return client_send(cl, ctl_reply_error(code, "%s", err));
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, rq.cmd) == 0) {
			int fd = cl->fd;
			struct control *ctl = cl->ctl; /* cl may be freed by the command */
			commands[i].run(cl, &rq);
			ctl_request_free(&rq);
			/* The command may have dropped the client: look it up again. */
			for (struct client *c = ctl->clients; c; c = c->next)
				if (c == cl && c->fd == fd)
					return true;
			return false;
		}
	}
	bool alive = client_send(cl, ctl_reply_error("unknown_command", "unknown command '%s'", rq.cmd));
	ctl_request_free(&rq);
	return alive;
}

/* Handle every complete line in the input buffer. */
static bool client_lines(struct client *cl)
{
	size_t start = 0;
	while (!cl->waiting && start < cl->in_len && client_pending(cl) < CONTROL_OUT_PAUSE) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (cl->in + start));
		if (cl->discarding) {
			cl->discarding = false;
		} else if (!client_request(cl, cl->in + start, len)) {
			return false;
		}
		start += len + 1;
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CTL_REQUEST_MAX - 1 && !memchr(cl->in, '\n', cl->in_len)) {
		/* No newline within the cap: answer once, then skip to the next line. */
		cl->in_len = 0;
		if (!cl->discarding) {
			cl->discarding = true;
			return client_send(cl, ctl_reply_error("too_large", "a request is at most %d bytes",
							       CTL_REQUEST_MAX));
		}
	}
	client_update_events(cl);
	return true;
}

static int on_client(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct client *cl = userdata;
	(void)src;
	sd_event_source_set_time_relative(cl->idle, CONTROL_IDLE_USEC);
	if (revents & EPOLLOUT) {
		if (!client_flush(cl))
			return 0;
		/* Requests held back while its replies piled up: their turn now. */
		if (!cl->waiting && !cl->closing && client_pending(cl) < CONTROL_OUT_PAUSE &&
		    memchr(cl->in, '\n', cl->in_len) && !client_lines(cl))
			return 0;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	size_t room = sizeof(cl->in) - 1 - cl->in_len;
	if (cl->waiting || cl->closing || client_pending(cl) >= CONTROL_OUT_PAUSE || room == 0) {
		/* Not reading now.  A hang-up means nobody is left to answer; left
		 * alone, the level-triggered EPOLLHUP would spin the loop. */
		if (revents & (EPOLLHUP | EPOLLERR))
			client_free(cl);
		return 0;
	}
	ssize_t n = recv(fd, cl->in + cl->in_len, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* Peer closed: finish what is queued, or go. */
		if (cl->waiting || cl->out_len > cl->out_off) {
			cl->closing = true;
			client_update_events(cl);
		} else {
			client_free(cl);
		}
		return 0;
	}
	cl->in_len += (size_t)n;
	client_lines(cl);
	return 0;
}

static int on_idle(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct client *cl = userdata;
	(void)src, (void)usec;
	if (cl->waiting) {
		sd_event_source_set_time_relative(cl->idle, CONTROL_IDLE_USEC);
		sd_event_source_set_enabled(cl->idle, SD_EVENT_ONESHOT);
		return 0;
	}
	client_free(cl);
	return 0;
}

/* Root, the daemon's own user, and members of group kleep may talk to us. */
static bool peer_allowed(int fd, char *who, size_t size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	snprintf(who, size, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	struct group *g = getgrnam(CONTROL_GROUP);
	if (!g)
		return false;
	if (cred.gid == g->gr_gid)
		return true;
	struct passwd *pw = getpwuid(cred.uid);
	if (!pw)
		return false;
	gid_t groups[256];
	int n = 256;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == g->gr_gid)
			return true;
	return false;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct control *c = userdata;
	(void)src, (void)revents;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd < 0)
			return 0;
		char who[64];
		if (!peer_allowed(cfd, who, sizeof(who))) {
			log_warning(NULL, "control: refused a client (%s): not root, the daemon's user, "
					  "or in group " CONTROL_GROUP, who);
			char *l = ctl_reply_error("permission_denied", "only root, kleepd's user and group "
							       CONTROL_GROUP " may use this socket");
			if (l && send(cfd, l, strlen(l), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			}
			free(l);
			close(cfd);
			continue;
		}
		if (c->n_clients >= CONTROL_CLIENTS_MAX) {
			log_warning(NULL, "control: %d clients already; refused one", c->n_clients);
			close(cfd);
			continue;
		}
		struct client *cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(cfd);
			continue;
		}
		cl->ctl = c;
		cl->fd = cfd;
		if (sd_event_add_io(c->d->e, &cl->io, cfd, EPOLLIN, on_client, cl) < 0 ||
		    sd_event_add_time_relative(c->d->e, &cl->idle, CLOCK_MONOTONIC, CONTROL_IDLE_USEC,
					       1000000, on_idle, cl) < 0) {
			sd_event_source_unref(cl->io);
			close(cfd);
			free(cl);
			continue;
		}
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->n_clients++;
	}
}

struct control *control_new(struct daemon *d, const char *path, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->d = d;
	c->fd = -1;
	int n = sd_listen_fds(1);
	if (n > 0) {
		/* Socket activation: systemd made and owns the socket. */
		c->fd = SD_LISTEN_FDS_START;
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	} else {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(path) >= sizeof(sa.sun_path)) {
			snprintf(err, errlen, "%s: the socket path is too long", path);
			goto fail;
		}
		snprintf(c->path, sizeof(c->path), "%s", path);
		strcpy(sa.sun_path, path);
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = 0;
			if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
				snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
				goto fail;
			}
		}
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		unlink(path); /* a socket left by a previous run */
		mode_t old = umask(0117);
		int r = c->fd < 0 ? -1 : bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (r < 0 || listen(c->fd, 512) < 0) {
			snprintf(err, errlen, "%s: cannot listen: %s", path, strerror(errno));
			goto fail;
		}
		c->owns_path = true;
		struct group *g = getgrnam(CONTROL_GROUP);
		if (g && chown(path, (uid_t)-1, g->gr_gid) < 0)
			log_errno(LOG_WARNING, NULL, errno, "%s: cannot give it to group " CONTROL_GROUP, path);
		chmod(path, 0660);
	}
	if (sd_event_add_io(d->e, &c->src, c->fd, EPOLLIN, on_accept, c) < 0) {
		snprintf(err, errlen, "cannot watch the control socket");
		goto fail;
	}
	return c;
fail:
	control_free(c);
	return NULL;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->clients) {
		c->clients->waiting = false;
		client_free(c->clients);
	}
	sd_event_source_disable_unref(c->src);
	if (c->fd >= 0)
		close(c->fd);
	if (c->owns_path)
		unlink(c->path);
	free(c);
}

/* The reply to golive or rebind: what was done, or why not (the mirror is untouched then). */
static char *rebind_reply(const struct job *job)
{
	const char *cmd = job->kind == JOB_GOLIVE ? "golive" : "rebind";
	if (job->rc != 0)
		return ctl_reply_error(job->rc == -EALREADY ? "nothing_to_do"
				       : job->rc == -EINVAL || job->rc == -ENOENT ? "refused" : "failed",
				       "%s %s: %s", cmd, job->ms->id, job->res.message);
	return ctl_reply_ok(json_pack("{s:s,s:s,s:s}", "merchant", job->ms->id, "command", cmd,
				      "message", job->res.message));
}

/* The reply line to a job's waiter; taken by the caller. */
static char *job_reply(const struct job *job)
{
	if (job->kind == JOB_CHECK)
		return job->report ? ctl_reply_ok(json_incref(job->report))
				   : ctl_reply_error("check_failed", "%s", job->res.message);
	if (job->kind == JOB_REPROJECT)
		return job->rc == 0 ? ctl_reply_ok(json_pack("{s:s,s:I,s:s}", "merchant", job->ms->id,
							     "records", (json_int_t)job->res.rows_in,
							     "message", job->res.message))
				    : ctl_reply_error("reproject_failed", "%s: %s", job->ms->id,
						      job->res.message);
	if (job->kind == JOB_GOLIVE || job->kind == JOB_REBIND)
		return rebind_reply(job);
	const char *outcome = job->res.outcome ? job->res.outcome : "failed";
	if (job->rc != 0)
		return ctl_reply_error("run_failed", "%s/%s: %s%s%s", job->ms->id, stream_name(job->s),
				       outcome, job->res.message[0] ? ": " : "", job->res.message);
	return ctl_reply_ok(json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:s}", "merchant", job->ms->id,
				      "stream", stream_name(job->s), "outcome", outcome, "error_class",
				      job->res.error_class ? json_string(job->res.error_class) : json_null(),
				      "run_id", (json_int_t)job->res.run_id, "pages",
				      (json_int_t)job->res.pages, "rows", (json_int_t)job->res.rows_in,
				      "changed", (json_int_t)job->res.rows_changed, "message",
				      job->res.message));
}

static int on_resume(sd_event_source *src, void *userdata)
{
	struct client *cl = userdata;
	(void)src;
	cl->resume = sd_event_source_disable_unref(cl->resume);
	client_lines(cl);
	return 0;
}

/*
 * A waiting client was answered: requests it sent meanwhile are read on the
 * next loop turn (not now: the job that answered is still being retired).
 */
static void client_resume(struct client *cl)
{
	if (!cl->resume && memchr(cl->in, '\n', cl->in_len))
		sd_event_add_defer(cl->ctl->d->e, &cl->resume, on_resume, cl);
}

void control_job_done(struct control *c, struct job *job)
{
	(void)c;
	struct waiter *w = job->waiters;
	job->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;
		struct client *cl = w->client;
		if (cl) {
			cl->waiter = NULL;
			cl->waiting = false;
			if (client_send(cl, job_reply(job)))
				client_resume(cl);
		}
		free(w);
		w = next;
	}
}

void control_waiter_drop(struct waiter *w, const char *why)
{
	struct client *cl = w->client;
	w->client = NULL;
	cl->waiter = NULL;
	cl->waiting = false;
	if (client_send(cl, ctl_reply_error("gone", "%s", why)))
		client_resume(cl);
}
