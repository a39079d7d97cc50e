/* ctl.h - the control protocol (DESIGN.md §7): one JSON object per line each way. */
#ifndef KLEEP_CTL_H
#define KLEEP_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CTL_VERSION 1
#define CTL_REQUEST_MAX (64 * 1024)   /* bytes of one request line, newline included */
#define CTL_REPLY_MAX (64 * 1024 * 1024) /* bytes of one reply line kleepctl accepts */
#define CTL_SOCKET_NAME "kleepd.sock"

/* A parsed request; strings point into `json`, which the request owns. */
struct ctl_request {
	json_t *json;
	const char *cmd;
	const char *merchant;   /* NULL when absent */
	const char *stream;     /* NULL when absent */
	const char *file;       /* NULL when absent */
	bool full, wait;
	long n;                 /* 0 when absent */
};

/*
 * Parse one request line (without its newline).  0, or -EINVAL with *code
 * ("bad_request", "unsupported_version") and a message in err.  On success
 * the caller frees with ctl_request_free().
 */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, const char **code,
		      char *err, size_t errlen);
void ctl_request_free(struct ctl_request *req);

/* Reply lines, newline-terminated; the caller frees them.  data is stolen (may be NULL). */
char *ctl_reply_ok(json_t *data);
char *ctl_reply_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Make text valid UTF-8 in place: a sequence cut at the end is dropped, a broken one becomes '?'. */
void ctl_utf8_mend(char *text);
/* text as a JSON string (new reference), mended when it is not UTF-8 (a file name from a
 * merchant's server): shown with '?' rather than dropped; JSON null when out of memory. */
json_t *ctl_json_text(const char *text);

/* Client side: connect to the socket at path; the fd, or -errno. */
int ctl_connect(const char *path);

/*
 * Send request (stolen) and read one reply line into *reply (new reference).
 * timeout_ms < 0 waits forever.  0, or -errno (-EPROTO for a reply that is not JSON,
 * -EMSGSIZE for one longer than CTL_REPLY_MAX).
 */
int ctl_call(int fd, json_t *request, json_t **reply, int timeout_ms);

#endif
