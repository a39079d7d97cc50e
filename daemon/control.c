/* control.c - the control socket: accepting clients and checking their peers, per-client
 * buffers on the event loop; the commands themselves are command.c's. */
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

#include "control_priv.h"
#include "log.h"

#define CONTROL_CLIENTS_MAX 4096
#define CONTROL_OUT_MAX (64u * 1024 * 1024) /* a client that reads nothing is dropped past this */
/* While this much of a client's replies waits to be sent, its further requests wait
 * too: a client that pipelines requests and reads nothing gets no more of the loop. */
#define CONTROL_OUT_PAUSE (256u * 1024)
#define CONTROL_IDLE_USEC (60 * 1000000ull)   /* a silent client is closed after a minute */
#define CONTROL_GROUP "kleep"

void client_free(struct client *cl)
{
	if (cl->busy) {
		cl->dead = true;
		return;
	}
	struct control *c = cl->ctl;
	for (int k = 0; k < STREAM_COUNT; k++)
		runtime_waiter_cancel(&cl->w[k]);
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
	sd_event_source_disable_unref(cl->streamer);
	json_decref(cl->answers);
	json_decref(cl->ids);
	close(cl->fd);
	free(cl->out);
	free(cl);
}

static size_t client_pending(const struct client *cl)
{
	return cl->out_len - cl->out_off;
}

static bool client_reading(const struct client *cl)
{
	return cl->wait == WAIT_NONE && !cl->closing && client_pending(cl) < CONTROL_OUT_PAUSE;
}

static void client_update_events(struct client *cl)
{
	uint32_t ev = 0;
	if (client_reading(cl))
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
		if (cl->closing && cl->wait == WAIT_NONE) {
			client_free(cl);
			return false;
		}
	}
	client_update_events(cl);
	return true;
}

/* Make room for n more bytes of output; false (client freed) past the cap or out of memory. */
static bool client_room(struct client *cl, size_t n)
{
	if (client_pending(cl) + n > CONTROL_OUT_MAX) {
		client_free(cl);
		return false;
	}
	if (cl->out_off && cl->out_len + n > cl->out_cap) {
		/* Reuse the room of what was sent before growing. */
		memmove(cl->out, cl->out + cl->out_off, client_pending(cl));
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	if (cl->out_len + n <= cl->out_cap)
		return true;
	/* Grow by doubling: appending many replies stays linear. */
	size_t cap = cl->out_cap ? cl->out_cap * 2 : 4096;
	while (cap < cl->out_len + n)
		cap *= 2;
	char *grown = realloc(cl->out, cap);
	if (!grown) {
		client_free(cl);
		return false;
	}
	cl->out = grown;
	cl->out_cap = cap;
	return true;
}

bool client_write(struct client *cl, const char *text, size_t n)
{
	if (cl->dead || !client_room(cl, n))
		return false;
	memcpy(cl->out + cl->out_len, text, n);
	cl->out_len += n;
	return client_flush(cl);
}

bool client_send(struct client *cl, char *line)
{
	if (!line)
		line = strdup("{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n");
	if (!line) {
		client_free(cl);
		return false;
	}
	return client_send_len(cl, line, strlen(line));
}

bool client_send_len(struct client *cl, char *line, size_t n)
{
	if (cl->out_len == 0 && !cl->dead && n <= CONTROL_OUT_MAX) {
		/* Nothing queued: the line becomes the output buffer, not a copy of it. */
		free(cl->out);
		cl->out = line;
		cl->out_len = n;
		cl->out_off = 0;
		cl->out_cap = n + 1;
		return client_flush(cl);
	}
	bool alive = client_write(cl, line, n);
	free(line);
	return alive;
}

void client_wait(struct client *cl, enum client_wait what)
{
	cl->wait = what;
	client_update_events(cl);
}

/* Handle every complete line in the input buffer. */
static bool client_lines(struct client *cl)
{
	size_t start = 0;
	while (client_reading(cl) && start < cl->in_len) {
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

static int on_resume(sd_event_source *src, void *userdata)
{
	struct client *cl = userdata;
	(void)src;
	cl->resume = sd_event_source_disable_unref(cl->resume);
	client_lines(cl);
	return 0;
}

void client_answered(struct client *cl)
{
	cl->wait = WAIT_NONE;
	if (cl->closing && !client_pending(cl)) {
		client_free(cl);
		return;
	}
	client_update_events(cl);
	/* Not now: the job that answered is still being retired. */
	if (!cl->resume && memchr(cl->in, '\n', cl->in_len))
		sd_event_add_defer(cl->ctl->e, &cl->resume, on_resume, cl);
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
		if (client_reading(cl) && memchr(cl->in, '\n', cl->in_len) && !client_lines(cl))
			return 0;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	size_t room = sizeof(cl->in) - 1 - cl->in_len;
	if (!client_reading(cl) || room == 0) {
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
		if (cl->wait != WAIT_NONE || cl->out_len > cl->out_off) {
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
	if (cl->wait != WAIT_NONE) {
		sd_event_source_set_time_relative(cl->idle, CONTROL_IDLE_USEC);
		sd_event_source_set_enabled(cl->idle, SD_EVENT_ONESHOT);
		return 0;
	}
	client_free(cl);
	return 0;
}

/* A group's id by name; blocking NSS, so only at start and reload. */
static bool group_id(const char *name, gid_t *gid)
{
	struct group g, *res = NULL;
	char buf[16384];
	if (getgrnam_r(name, &g, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	*gid = g.gr_gid;
	return true;
}

void control_reconfigured(struct control *c)
{
	const char *admin = runtime_config(c->rt)->daemon.admin_group;
	snprintf(c->admin_group, sizeof(c->admin_group), "%s", admin ? admin : "kleep-admin");
	c->have_read_gid = group_id(CONTROL_GROUP, &c->read_gid);
	c->have_admin_gid = group_id(c->admin_group, &c->admin_gid);
}

/*
 * The peer's role from its credentials: root and the daemon's user are
 * admins; then the admin group, then group kleep, among the peer's primary
 * and supplementary groups as the kernel gives them (SO_PEERGROUPS: no
 * lookup that could block the loop).
 */
static enum role peer_role(struct control *c, int fd, char *who, size_t size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[256];
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return ROLE_NONE;
	snprintf(who, size, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	if (cred.uid == 0 || cred.uid == geteuid())
		return ROLE_ADMIN;
	len = sizeof(groups) - sizeof(gid_t);
	int n = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0 ? 0 : (int)(len / sizeof(gid_t));
	groups[n++] = cred.gid;
	enum role role = ROLE_NONE;
	for (int i = 0; i < n; i++) {
		if (c->have_admin_gid && groups[i] == c->admin_gid)
			return ROLE_ADMIN;
		if (c->have_read_gid && groups[i] == c->read_gid)
			role = ROLE_READ;
	}
	return role;
}

static struct client *client_new(struct control *c, int cfd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return NULL;
	cl->ctl = c;
	cl->fd = cfd;
	for (int k = 0; k < STREAM_COUNT; k++)
		cl->w[k] = (struct runtime_waiter){ .done = client_on_answer, .arg = cl };
	if (sd_event_add_io(c->e, &cl->io, cfd, EPOLLIN, on_client, cl) < 0 ||
	    sd_event_add_time_relative(c->e, &cl->idle, CLOCK_MONOTONIC, CONTROL_IDLE_USEC, 1000000,
				       on_idle, cl) < 0) {
		sd_event_source_unref(cl->io);
		free(cl);
		return NULL;
	}
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	c->n_clients++;
	return cl;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct control *c = userdata;
	(void)src, (void)revents;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd < 0)
			return 0;
		if (c->n_clients >= CONTROL_CLIENTS_MAX) {
			log_warning(NULL, "control: %d clients already; refused one", c->n_clients);
			close(cfd);
			continue;
		}
		/* A peer with no role is answered permission_denied at its first
		 * request, then closed: closing now would leave kleepctl with a
		 * broken pipe instead of the reason. */
		struct client *cl = client_new(c, cfd);
		if (!cl) {
			close(cfd);
			continue;
		}
		cl->role = peer_role(c, cfd, cl->who, sizeof(cl->who));
	}
}

/* Bind path ourselves: mode 0660, group kleep. */
static int control_bind(struct control *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: the socket path is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
			return -errno;
		}
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(path); /* a socket left by a previous run */
	mode_t old = umask(0117);
	int r = c->fd < 0 ? -1 : bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(c->fd, 512) < 0) {
		snprintf(err, errlen, "%s: cannot listen: %s", path, strerror(errno));
		return -errno;
	}
	c->owns_path = true;
	struct group *g = getgrnam(CONTROL_GROUP);
	if (g && chown(path, (uid_t)-1, g->gr_gid) < 0)
		log_errno(LOG_WARNING, NULL, errno, "%s: cannot give it to group " CONTROL_GROUP, path);
	chmod(path, 0660);
	return 0;
}

struct control *control_new(sd_event *e, struct runtime *rt, int listen_fd, const char *path,
			    char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->e = e;
	c->rt = rt;
	c->fd = listen_fd;
	if (listen_fd >= 0)
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	else if (control_bind(c, path, err, errlen) < 0)
		goto fail;
	control_reconfigured(c);
	if (sd_event_add_io(e, &c->src, c->fd, EPOLLIN, on_accept, c) < 0) {
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
	while (c->clients)
		client_free(c->clients);
	sd_event_source_disable_unref(c->src);
	if (c->fd >= 0)
		close(c->fd);
	if (c->owns_path)
		unlink(c->path);
	free(c);
}
