/* log.h - structured logging to journald, or to stderr when there is no journal. */
#ifndef KLEEP_LOG_H
#define KLEEP_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* MESSAGE_IDs, so `journalctl MESSAGE_ID=...` finds every run of every merchant. */
#define LOG_MSGID_RUN_STARTED  "7d1a0f6a3a8e4c63b0f1b0c2a4e5d601"
#define LOG_MSGID_RUN_FINISHED "7d1a0f6a3a8e4c63b0f1b0c2a4e5d602"
#define LOG_MSGID_RUN_FAILED   "7d1a0f6a3a8e4c63b0f1b0c2a4e5d603"

/* Who a line is about: each field may be NULL / 0 when it does not apply. */
struct log_ctx {
	const char *merchant;
	const char *stream;
	int64_t run_id;
};

/*
 * Choose the sink once at start: journald when to_stderr is false and a
 * journal socket exists, stderr otherwise.  Thread-safe after this call.
 */
void log_init(bool to_stderr);

/* Lines above this syslog priority (e.g. LOG_INFO) are dropped. */
void log_set_level(int prio);
int log_get_level(void);

/* "err", "warning", "notice", "info", "debug" -> LOG_*; -1 when unknown. */
int log_level_parse(const char *s);

/*
 * Log one line.  ctx and msgid may be NULL.  The message must never hold a
 * secret or personal data: callers pass ids and counts, not payloads.
 * errnum, when not 0, is the errno (either sign) that caused the line: it goes
 * to the journal's ERRNO field and ": <strerror>" ends the message.  file, line
 * and func name the caller (journal fields CODE_FILE, CODE_LINE, CODE_FUNC):
 * call it through the macros below, which fill them in.
 */
void log_msg_at(const char *file, int line, const char *func, int prio, const struct log_ctx *ctx,
		const char *msgid, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

#define log_msg(prio, ctx, msgid, ...) \
	log_msg_at(__FILE__, __LINE__, __func__, prio, ctx, msgid, 0, __VA_ARGS__)
/* A line caused by errno value errnum: "<message>: <strerror(errnum)>". */
#define log_errno(prio, ctx, errnum, ...) \
	log_msg_at(__FILE__, __LINE__, __func__, prio, ctx, NULL, errnum, __VA_ARGS__)

#define log_err(ctx, ...)     log_msg(LOG_ERR, ctx, NULL, __VA_ARGS__)
#define log_warning(ctx, ...) log_msg(LOG_WARNING, ctx, NULL, __VA_ARGS__)
#define log_notice(ctx, ...)  log_msg(LOG_NOTICE, ctx, NULL, __VA_ARGS__)
#define log_info(ctx, ...)    log_msg(LOG_INFO, ctx, NULL, __VA_ARGS__)
#define log_debug(ctx, ...)   log_msg(LOG_DEBUG, ctx, NULL, __VA_ARGS__)

#endif
