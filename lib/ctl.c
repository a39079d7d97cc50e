/* ctl.c - encode and decode control-protocol lines; the client half used by kleepctl. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "utf8.h"

#define CTL_RECV_CHUNK 16384 /* bytes read from the socket at a time */

static const char *opt_string(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, const char **code,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	bool bad = false;

	memset(req, 0, sizeof(*req));
	*code = "bad_request";
	req->json = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req->json) {
		snprintf(err, errlen, "malformed JSON: %s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(req->json)) {
		snprintf(err, errlen, "a request is a JSON object");
		goto fail;
	}
	json_t *v = json_object_get(req->json, "v");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "the request has no protocol version \"v\"");
		goto fail;
	}
	if (json_integer_value(v) != CTL_VERSION) {
		*code = "unsupported_version";
		snprintf(err, errlen, "protocol version %" JSON_INTEGER_FORMAT " is not supported (this kleepd speaks %d)",
			 json_integer_value(v), CTL_VERSION);
		goto fail;
	}
	req->cmd = opt_string(req->json, "cmd", &bad);
	req->merchant = opt_string(req->json, "merchant", &bad);
	req->stream = opt_string(req->json, "stream", &bad);
	req->file = opt_string(req->json, "file", &bad);
	json_t *full = json_object_get(req->json, "full"), *wait = json_object_get(req->json, "wait");
	json_t *n = json_object_get(req->json, "n");
	if ((full && !json_is_boolean(full)) || (wait && !json_is_boolean(wait)) ||
	    (n && (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 100000)))
		bad = true;
	req->full = json_is_true(full);
	req->wait = json_is_true(wait);
	req->n = n ? (long)json_integer_value(n) : 0;
	if (bad) {
		snprintf(err, errlen, "a field has the wrong type");
		goto fail;
	}
	if (!req->cmd) {
		snprintf(err, errlen, "the request has no \"cmd\"");
		goto fail;
	}
	return 0;
fail:
	ctl_request_free(req);
	return -EINVAL;
}

void ctl_request_free(struct ctl_request *req)
{
	json_decref(req->json);
	memset(req, 0, sizeof(*req));
}

/* One JSON object as a line; NULL on out-of-memory. */
static char *line_of(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *l = realloc(s, n + 2);
	if (!l) {
		free(s);
		return NULL;
	}
	l[n] = '\n';
	l[n + 1] = 0;
	return l;
}

char *ctl_reply_ok(json_t *data)
{
	return line_of(json_pack("{s:b,s:o}", "ok", 1, "data", data ? data : json_null()));
}

/* Make text valid UTF-8 in place: a sequence cut by the buffer's end is
 * dropped, a broken one becomes '?', so the message still goes out. */
void ctl_utf8_mend(char *text)
{
	size_t left = strlen(text);
	while (left > 0) {
		size_t n = utf8_seq(text, left);
		if (n == 0 && utf8_cut(text, left)) {
			*text = 0;
			return;
		}
		if (n == 0) {
			*text = '?';
			n = 1;
		}
		text += n;
		left -= n;
	}
}

json_t *ctl_json_text(const char *text)
{
	json_t *v = json_string(text);
	if (!v) {
		char *copy = strdup(text);
		if (copy) {
			ctl_utf8_mend(copy);
			v = json_string(copy);
			free(copy);
		}
	}
	return v ? v : json_null();
}

char *ctl_reply_error(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_utf8_mend(msg);
	return line_of(json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message", msg));
}

int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

int ctl_call(int fd, json_t *request, json_t **reply, int timeout_ms)
{
	char *out = line_of(request);
	char chunk[CTL_RECV_CHUNK];
	size_t len;
	struct buf in;
	int r = 0;

	*reply = NULL;
	if (!out)
		return -ENOMEM;
	buf_init(&in, CTL_REPLY_MAX);
	len = strlen(out);
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, out + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		if ((r = wait_fd(fd, POLLIN, timeout_ms)) < 0)
			goto out;
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n == 0 ? -ECONNRESET : -errno;
			goto out;
		}
		char *nl = memchr(chunk, '\n', (size_t)n);
		/* The reply is one line: what follows its newline is not ours. */
		if ((r = buf_add(&in, chunk, nl ? (size_t)(nl - chunk) : (size_t)n)) < 0)
			goto out;
		if (nl) {
			json_error_t jerr;
			*reply = json_loadb(buf_str(&in), in.len, 0, &jerr);
			r = *reply ? 0 : -EPROTO;
			goto out;
		}
	}
out:
	free(out);
	buf_free(&in);
	return r;
}
