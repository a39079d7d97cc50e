/* log.c - journald with structured fields, or one plain line per message on stderr. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

#define LOG_LINE_MAX 2048 /* bytes of one message; longer ones are cut, never overflowed */

static bool log_to_journal;
static atomic_int log_level = LOG_INFO; /* set on reload by the loop, read by every thread */

static const char *const log_level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_init(bool to_stderr)
{
	/* Not under systemd (or asked for -f): journald may still run, but the
	 * operator watching a terminal wants the lines there. */
	log_to_journal = !to_stderr && access("/run/systemd/journal/socket", W_OK) == 0;
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

void log_msg(int prio, const struct log_ctx *ctx, const char *msgid, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	if (prio < LOG_EMERG || prio > LOG_DEBUG)
		prio = LOG_ERR;
	if (prio > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (!log_to_journal) {
		log_stderr(prio, ctx, msg);
		return;
	}

	/* Each field is "NAME=value"; absent context fields are simply not sent. */
	char f_msg[LOG_LINE_MAX + 16], f_prio[16], f_merchant[96], f_stream[64], f_run[48], f_msgid[64];
	struct iovec iov[7];
	int n = 0;
	iov_field(&iov[n++], f_msg, sizeof(f_msg), "MESSAGE=%s", msg);
	iov_field(&iov[n++], f_prio, sizeof(f_prio), "PRIORITY=%d", prio);
	iov[n].iov_base = (char *)"SYSLOG_IDENTIFIER=kleepd";
	iov[n++].iov_len = strlen("SYSLOG_IDENTIFIER=kleepd");
	if (ctx && ctx->merchant)
		iov_field(&iov[n++], f_merchant, sizeof(f_merchant), "MERCHANT=%s", ctx->merchant);
	if (ctx && ctx->stream)
		iov_field(&iov[n++], f_stream, sizeof(f_stream), "STREAM=%s", ctx->stream);
	if (ctx && ctx->run_id > 0)
		iov_field(&iov[n++], f_run, sizeof(f_run), "RUN_ID=%" PRId64, ctx->run_id);
	if (msgid)
		iov_field(&iov[n++], f_msgid, sizeof(f_msgid), "MESSAGE_ID=%s", msgid);
	int r = sd_journal_sendv(iov, n);
	if (r < 0)
		log_stderr(prio, ctx, msg);
}
