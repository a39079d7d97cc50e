/* log.c - journald with structured fields, or one plain line per message on stderr. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

#define LOG_LINE_MAX 2048 /* bytes of one message; longer ones are cut, never overflowed */

static bool log_to_journal;
static bool stderr_is_journal; /* stderr is systemd's journal stream: "<N>" prefixes, no stamp */
static atomic_int log_level = LOG_INFO; /* set on reload by the loop, read by every thread */

static const char *const log_level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* True when JOURNAL_STREAM ("DEV:INODE") names the file stderr is now. */
static bool stderr_is_journal_stream(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(bool to_stderr)
{
	/* Not under systemd (or asked for -f): journald may still run, but the
	 * operator watching a terminal wants the lines there. */
	log_to_journal = !to_stderr && access("/run/systemd/journal/socket", W_OK) == 0;
	/* systemd reads a leading "<N>" on its stream as the line's priority. */
	stderr_is_journal = stderr_is_journal_stream();
}

void log_set_level(int prio)
{
	log_level = prio;
}

int log_get_level(void)
{
	return log_level;
}

int log_level_parse(const char *s)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(s, log_level_names[i]) == 0)
			return i;
	return -1;
}

static void log_stderr(int prio, const struct log_ctx *ctx, const char *msg)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	char where[160] = "";

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ctx && ctx->merchant) {
		int n = snprintf(where, sizeof(where), "%s%s%s", ctx->merchant,
				 ctx->stream ? "/" : "", ctx->stream ? ctx->stream : "");
		if (n > 0 && ctx->run_id > 0 && (size_t)n < sizeof(where))
			snprintf(where + n, sizeof(where) - (size_t)n, "#%" PRId64, ctx->run_id);
	}
	/* One fprintf per line: stdio locks the stream, so threads never interleave. */
	if (stderr_is_journal) {
		fprintf(stderr, "<%d>%s%s%s\n", prio, where, where[0] ? ": " : "", msg);
		return;
	}
	fprintf(stderr, "%s kleepd %s%s%s: %s\n", stamp, log_level_names[prio],
		where[0] ? " " : "", where, msg);
}

/* Fill one journal field into buf; a value too long for buf is cut. */
__attribute__((format(printf, 4, 5)))
static void iov_field(struct iovec *iov, char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	iov->iov_base = buf;
	iov->iov_len = n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

void log_msg_at(const char *file, int line, const char *func, int prio, const struct log_ctx *ctx,
		const char *msgid, int errnum, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	if (prio < LOG_EMERG || prio > LOG_DEBUG)
		prio = LOG_ERR;
	if (prio > log_level)
		return;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errnum = errnum < 0 ? -errnum : errnum;
	if (errnum && len >= 0 && (size_t)len < sizeof(msg))
		snprintf(msg + len, sizeof(msg) - (size_t)len, ": %s", strerror(errnum));

	if (!log_to_journal) {
		log_stderr(prio, ctx, msg);
		return;
	}

	/* Each field is "NAME=value"; absent context fields are simply not sent. */
	char f_msg[LOG_LINE_MAX + 16], f_prio[16], f_merchant[96], f_stream[64], f_run[48], f_msgid[64];
	char f_file[256], f_line[32], f_errno[32];
	struct iovec iov[8];
	int n = 0;
	iov_field(&iov[n++], f_msg, sizeof(f_msg), "MESSAGE=%s", msg);
	iov_field(&iov[n++], f_prio, sizeof(f_prio), "PRIORITY=%d", prio);
	iov[n].iov_base = (char *)"SYSLOG_IDENTIFIER=kleepd";
	iov[n++].iov_len = strlen("SYSLOG_IDENTIFIER=kleepd");
	if (errnum)
		iov_field(&iov[n++], f_errno, sizeof(f_errno), "ERRNO=%d", errnum);
	if (ctx && ctx->merchant)
		iov_field(&iov[n++], f_merchant, sizeof(f_merchant), "MERCHANT=%s", ctx->merchant);
	if (ctx && ctx->stream)
		iov_field(&iov[n++], f_stream, sizeof(f_stream), "STREAM=%s", ctx->stream);
	if (ctx && ctx->run_id > 0)
		iov_field(&iov[n++], f_run, sizeof(f_run), "RUN_ID=%" PRId64, ctx->run_id);
	if (msgid)
		iov_field(&iov[n++], f_msgid, sizeof(f_msgid), "MESSAGE_ID=%s", msgid);
	/* The caller's place, not this function's (what sd_journal_sendv() would name). */
	snprintf(f_file, sizeof(f_file), "CODE_FILE=%s", file);
	snprintf(f_line, sizeof(f_line), "CODE_LINE=%d", line);
	int r = sd_journal_sendv_with_location(f_file, f_line, func, iov, n);
	if (r < 0)
		log_stderr(prio, ctx, msg);
}
