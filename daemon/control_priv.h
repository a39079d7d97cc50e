/* control_priv.h - the control socket's clients, shared by control.c (the socket, buffers,
 * peers) and command.c (the commands).  Loop thread only. */
#ifndef KLEEP_CONTROL_PRIV_H
#define KLEEP_CONTROL_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "control.h"
#include "ctl.h"
#include "stream.h"

/* What a client is waiting for, so the runtime's answer can be worded. */
enum client_wait { WAIT_NONE, WAIT_SYNC, WAIT_SYNC_ALL, WAIT_CHECK, WAIT_REPROJECT, WAIT_QUERY,
		   WAIT_STATUS, WAIT_GOLIVE, WAIT_REBIND };

/* What a peer may do (DESIGN.md §7): read, or also change things and call shops. */
enum role { ROLE_NONE, ROLE_READ, ROLE_ADMIN };

struct client {
	struct control *ctl;
	int fd;
	enum role role;           /* from the peer's credentials at connect */
	char who[64];             /* "uid N pid P", for the log */
	sd_event_source *io, *idle;
	sd_event_source *resume;  /* a deferred read of requests held while waiting */
	sd_event_source *streamer;/* writes a long status a few merchants at a time */
	char in[CTL_REQUEST_MAX + 1];
	size_t in_len;
	bool discarding;          /* skipping the rest of an oversized request */
	char *out;
	size_t out_len, out_off, out_cap;
	bool closing;             /* close once out is flushed */
	int busy;                 /* inside a request: a free waits until it returns */
	bool dead;                /* freed while busy */
	/* an answer to come (sync --wait, check, reproject, a query, a long status) */
	enum client_wait wait;
	struct runtime_waiter w[STREAM_COUNT]; /* embedded: they go with the client */
	int pending;              /* waiters not answered yet */
	json_t *answers;          /* sync --wait of several streams: one object each */
	json_t *ids;              /* a long status: the merchants still to write */
	size_t next_id, written;
	struct client *prev, *next;
};

struct control {
	sd_event *e;
	struct runtime *rt;
	int fd;
	bool owns_path;
	char path[108];
	sd_event_source *src;
	struct client *clients;
	int n_clients;
	/* the groups' ids, resolved at start and reload: never per client, on the loop */
	gid_t read_gid, admin_gid;
	bool have_read_gid, have_admin_gid;
	char admin_group[64];
};

/* control.c */
/* Free cl (its waits cancelled), or mark it dead while a request runs. */
void client_free(struct client *cl);
/* Queue one reply line (taken); false when the client is gone. */
bool client_send(struct client *cl, char *line);
/* Likewise, of n bytes. */
bool client_send_len(struct client *cl, char *line, size_t n);
/* Queue raw reply bytes; false when the client is gone. */
bool client_write(struct client *cl, const char *text, size_t n);
/* Stop reading requests until the answer comes. */
void client_wait(struct client *cl, enum client_wait what);
/* The answer came: read the requests sent meanwhile, on the next loop turn. */
void client_answered(struct client *cl);

/* command.c */
/* One request line; false when the client is gone. */
bool client_request(struct client *cl, const char *line, size_t len);
/* The runtime's answer to one of the client's waiters. */
void client_on_answer(void *arg, const struct runtime_result *r);

#endif
