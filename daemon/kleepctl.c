/* kleepctl.c - ask a running kleepd how every merchant's sync is doing, and tell it what to do. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "ctl.h"
#include "export.h"

#define DEFAULT_SOCKET "/run/kleep/" CTL_SOCKET_NAME
#define TABLE_COLS_MAX 12
#define CELL_MAX 200

enum { EXIT_OK = 0, EXIT_DAEMON = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

static bool opt_json;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kleepctl [--socket PATH] [--json] COMMAND [ARGS]\n"
		"\n"
		"  status [MERCHANT]                 every stream: state, last success, rows, next run, error\n"
		"  runs MERCHANT [-n N] [--stream S] run history, newest first\n"
		"  sync MERCHANT [STREAM] [--full] [--wait]\n"
		"                                    run now; --full re-reads one stream whole\n"
		"  pause MERCHANT | resume MERCHANT  stop or restart scheduling a merchant\n"
		"  check MERCHANT                    onboarding: credentials, endpoints, SFTP, data readiness\n"
		"  reproject MERCHANT                rebuild the canonical tables from the raw records\n"
		"  golive MERCHANT                   archive the mirror, start a fresh one from the\n"
		"                                    configured source, sync every stream in full\n"
		"  rebind MERCHANT                   the same shop moved: accept its new address,\n"
		"                                    keep the data and cursors\n"
		"  export MERCHANT KIND [--since T]  products|orders|returns|return_reasons as CSV on stdout\n"
		"  dimensions-template MERCHANT [--measurements LIST] [--unit U]\n"
		"                                    CSV to fill in and drop in SFTP misc/\n"
		"  files MERCHANT                    the SFTP ledger\n"
		"  rejects MERCHANT [FILE]           CSV rows that were refused, with line and reason\n"
		"  metrics [--openmetrics]           Prometheus text format (OpenMetrics when asked)\n"
		"  reload                            re-read the configuration\n"
		"  version                           kleepctl's and kleepd's versions\n"
		"\n"
		"The socket is --socket, else $KLEEP_SOCKET, else " DEFAULT_SOCKET ".\n"
		"Exit status: 0 ok, 1 kleepd reported an error, 2 usage, 3 kleepd cannot be reached.\n");
}

/* ---- tables for people --------------------------------------------------- */

struct table {
	int n_cols;
	const char *head[TABLE_COLS_MAX];
	char (*cells)[TABLE_COLS_MAX][CELL_MAX];
	size_t n_rows, cap;
};

static void table_row(struct table *t, ...)
{
	if (t->n_rows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = realloc(t->cells, t->cap * sizeof(*t->cells));
		if (!t->cells) {
			perror("kleepctl");
			exit(EXIT_DAEMON);
		}
	}
	va_list ap;
	va_start(ap, t);
	for (int i = 0; i < t->n_cols; i++) {
		const char *v = va_arg(ap, const char *);
		snprintf(t->cells[t->n_rows][i], CELL_MAX, "%s", v && *v ? v : "-");
	}
	va_end(ap);
	t->n_rows++;
}

/* Display width of UTF-8 text: count code points, not bytes. */
static int width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void table_print(struct table *t)
{
	int w[TABLE_COLS_MAX];
	for (int i = 0; i < t->n_cols; i++) {
		w[i] = width(t->head[i]);
		for (size_t r = 0; r < t->n_rows; r++)
			if (width(t->cells[r][i]) > w[i])
				w[i] = width(t->cells[r][i]);
	}
	for (int i = 0; i < t->n_cols; i++)
		printf("%s%-*s", i ? "  " : "", i == t->n_cols - 1 ? 0 : w[i], t->head[i]);
	putchar('\n');
	for (size_t r = 0; r < t->n_rows; r++) {
		for (int i = 0; i < t->n_cols; i++) {
			const char *c = t->cells[r][i];
			int pad = i == t->n_cols - 1 ? 0 : w[i] - width(c);
			printf("%s%s%*s", i ? "  " : "", c, pad, "");
		}
		putchar('\n');
	}
	free(t->cells);
}

/* "3m12s" style ages, short enough for a table. */
static void human_age(json_t *v, char *buf, size_t size)
{
	if (!json_is_integer(v)) {
		snprintf(buf, size, "-");
		return;
	}
	long long s = json_integer_value(v);
	if (s < 120)
		snprintf(buf, size, "%llds", s);
	else if (s < 7200)
		snprintf(buf, size, "%lldm", s / 60);
	else if (s < 172800)
		snprintf(buf, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, size, "%lldd", s / 86400);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void jint(json_t *o, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, size, "-");
}

static void print_status(json_t *data)
{
	struct table t = { .n_cols = 10, .head = { "MERCHANT", "ENV", "STREAM", "STATE", "LAST SUCCESS",
						    "AGE", "ROWS", "PROGRESS", "NEXT", "ERROR" } };
	size_t i, j;
	json_t *m, *s;
	printf("kleepd %s: %s\n\n", jstr(data, "version"), jstr(data, "summary"));
	if (json_array_size(json_object_get(data, "merchants")) == 0) {
		/* A fresh install idles with none: say what to do next. */
		printf("No merchants configured.  To add one, write a file in %s/merchants.d/\n"
		       "(kleepd.conf(5)), check it with `kleepd --check-config`, then run\n"
		       "`kleepctl reload` (or `systemctl reload kleepd`).\n", KLEEP_SYSCONFDIR);
		return;
	}
	json_array_foreach(json_object_get(data, "merchants"), i, m) {
		json_array_foreach(json_object_get(m, "streams"), j, s) {
			char age[32], rows[32], next[48], prog[64] = "", err[CELL_MAX] = "";
			human_age(json_object_get(s, "age_s"), age, sizeof(age));
			jint(s, "rows_total", rows, sizeof(rows));
			json_t *in = json_object_get(s, "next_in_s");
			if (json_is_integer(in)) {
				char a[32];
				human_age(in, a, sizeof(a));
				snprintf(next, sizeof(next), "in %s", a);
			} else {
				snprintf(next, sizeof(next), "-");
			}
			json_t *p = json_object_get(s, "progress");
			if (p)
				snprintf(prog, sizeof(prog), "%lld pages, %lld rows",
					 (long long)json_integer_value(json_object_get(p, "pages")),
					 (long long)json_integer_value(json_object_get(p, "rows")));
			if (jstr(s, "error_class"))
				snprintf(err, sizeof(err), "%s: %s", jstr(s, "error_class"),
					 jstr(s, "last_error") ? jstr(s, "last_error") : "");
			char state[40];
			snprintf(state, sizeof(state), "%s", jstr(s, "state"));
			table_row(&t, jstr(m, "merchant"), jstr(m, "environment"), jstr(s, "stream"), state,
				  jstr(s, "last_success"), age, rows, prog, next, err);
		}
	}
	table_print(&t);
}

/* Any array of flat objects as a table, columns in the first row's order. */
static void print_rows(json_t *rows)
{
	json_t *first = json_array_get(rows, 0);
	if (!first) {
		printf("(none)\n");
		return;
	}
	struct table t = { 0 };
	const char *key;
	json_t *v;
	json_object_foreach(first, key, v) {
		if (t.n_cols < TABLE_COLS_MAX)
			t.head[t.n_cols++] = key;
	}
	t.cap = json_array_size(rows);
	t.cells = calloc(t.cap ? t.cap : 1, sizeof(*t.cells));
	if (!t.cells)
		exit(EXIT_DAEMON);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		for (int c = 0; c < t.n_cols; c++) {
			json_t *cell = json_object_get(row, t.head[c]);
			char *txt = json_is_string(cell) ? strdup(json_string_value(cell))
				    : json_is_null(cell) || !cell ? strdup("-")
				    : json_dumps(cell, JSON_ENCODE_ANY);
			snprintf(t.cells[i][c], CELL_MAX, "%s", txt ? txt : "-");
			free(txt);
		}
		t.n_rows++;
	}
	for (int c = 0; c < t.n_cols; c++) {
		static char upper[TABLE_COLS_MAX][32];
		snprintf(upper[c], sizeof(upper[c]), "%s", t.head[c]);
		for (char *p = upper[c]; *p; p++)
			*p = (char)(*p == '_' ? ' ' : *p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		t.head[c] = upper[c];
	}
	table_print(&t);
}

/* The onboarding screen: what works, what does not, what to do.  EXIT_OK when it can go live. */
static int print_check(json_t *data)
{
	json_t *cred = json_object_get(data, "credentials"), *sftp = json_object_get(data, "sftp");
	size_t i;
	json_t *v;

	printf("Onboarding check of %s\n\n", jstr(data, "merchant"));
	printf("WSHOP credentials: %s", jstr(cred, "status"));
	if (jstr(cred, "message") && *jstr(cred, "message"))
		printf(" (%s)", jstr(cred, "message"));
	printf("\n\n");
	if (json_array_size(json_object_get(data, "endpoints"))) {
		struct table t = { .n_cols = 4, .head = { "ENDPOINT", "STREAM", "STATUS", "DETAIL" } };
		json_array_foreach(json_object_get(data, "endpoints"), i, v) {
			/* The message names the HTTP status and WSHOP's own words. */
			const char *detail = strcmp(jstr(v, "status"), "authorized") == 0 ? "" : jstr(v, "message");
			table_row(&t, jstr(v, "endpoint"), jstr(v, "stream"), jstr(v, "status"), detail);
		}
		table_print(&t);
		putchar('\n');
	}
	json_t *needs = json_object_get(data, "needs_sftp");
	if (json_array_size(needs)) {
		printf("Streams the API cannot give (they need SFTP):");
		json_array_foreach(needs, i, v)
			printf(" %s", json_string_value(v));
		printf("\n\n");
	}
	printf("SFTP: %s", jstr(sftp, "status"));
	if (jstr(sftp, "message") && *jstr(sftp, "message"))
		printf(" (%s)", jstr(sftp, "message"));
	putchar('\n');
	const char *key;
	json_object_foreach(json_object_get(sftp, "folders"), key, v)
		printf("  %s/%s: %s\n", jstr(sftp, "root"), key, json_is_true(v) ? "present" : "missing");
	putchar('\n');
	json_t *warn = json_object_get(data, "readiness");
	if (json_array_size(warn)) {
		printf("Data readiness (warnings):\n");
		json_array_foreach(warn, i, v) {
			printf("  - %s: %lld (", jstr(v, "message"),
			       (long long)json_integer_value(json_object_get(v, "count")));
			size_t j;
			json_t *e;
			json_array_foreach(json_object_get(v, "examples"), j, e)
				printf("%s%s", j ? ", " : "e.g. ", json_string_value(e));
			printf(")\n");
		}
		putchar('\n');
	}
	json_t *blocking = json_object_get(data, "blocking");
	if (!json_array_size(blocking)) {
		printf("Ready to go live.\n");
		return EXIT_OK;
	}
	printf("Not ready to go live:\n");
	json_array_foreach(blocking, i, v)
		printf("  - %s: %s\n", jstr(v, "item"), jstr(v, "what_to_do"));
	return EXIT_DAEMON;
}

/* export and dimensions-template: stream CSV from the mirror, read-only, in constant memory. */
static int export_local(const char *cmd, json_t *merchant, const char *kind, const char *since,
			const char *measurements, const char *unit)
{
	const char *path = jstr(merchant, "db");
	char err[1024] = "";
	sqlite3 *db = NULL;
	long rows;

	if (!path) {
		fprintf(stderr, "kleepctl: kleepd did not say where the mirror is\n");
		return EXIT_DAEMON;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "kleepctl: %s: %s\n", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return EXIT_DAEMON;
	}
	sqlite3_busy_timeout(db, 10000);
	/* One read transaction: a consistent snapshot while kleepd keeps writing. */
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (strcmp(cmd, "export") == 0)
		rows = export_csv(db, kind, since, stdout, err, sizeof(err));
	else
		rows = export_dimensions_template(db, measurements, unit, stdout, err, sizeof(err));
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (fflush(stdout) != 0 || rows < 0) {
		fprintf(stderr, "kleepctl: %s: %s\n", cmd, err[0] ? err : "cannot write the output");
		return rows == -EINVAL ? EXIT_USAGE : EXIT_DAEMON;
	}
	fprintf(stderr, "kleepctl: %ld rows\n", rows);
	return EXIT_OK;
}

/* -n N: a positive count, nothing else. */
static bool parse_count(const char *s, long *n)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 100000) {
		fprintf(stderr, "kleepctl: -n takes a count from 1 to 100000, not '%s'\n", s);
		return false;
	}
	*n = v;
	return true;
}

/* ---- main ---------------------------------------------------------------- */

/* The command line, parsed. */
struct args {
	const char *socket_path, *cmd, *stream, *since, *measurements, *unit;
	const char *arg[4];
	int n_args;
	bool full, wait, local, openmetrics;
	long n;
};

static const struct {
	const char *name;
	int min_args, max_args;
} known[] = {
	{ "status", 0, 1 }, { "runs", 1, 1 },    { "sync", 1, 2 },    { "pause", 1, 1 },
	{ "resume", 1, 1 }, { "files", 1, 1 },   { "rejects", 1, 2 }, { "metrics", 0, 0 },
	{ "reload", 0, 0 }, { "version", 0, 0 }, { "check", 1, 1 },
	{ "reproject", 1, 1 }, { "export", 2, 2 }, { "dimensions-template", 1, 1 },
	{ "golive", 1, 1 },    { "rebind", 1, 1 },
};

/* -1 to go on, else the exit status (--help, --version, a usage error). */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "full", no_argument, NULL, 'F' },          { "wait", no_argument, NULL, 'w' },
		{ "stream", required_argument, NULL, 'S' },  { "version", no_argument, NULL, 'V' },
		{ "since", required_argument, NULL, 'T' },   { "measurements", required_argument, NULL, 'M' },
		{ "unit", required_argument, NULL, 'U' },    { "openmetrics", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },          { 0 },
	};
	int c;
	a->socket_path = getenv("KLEEP_SOCKET") ? getenv("KLEEP_SOCKET") : DEFAULT_SOCKET;
	/* GNU getopt moves the options first, so they may follow the command too. */
	while ((c = getopt_long(argc, argv, "s:jn:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->socket_path = optarg; break;
		case 'j': opt_json = true; break;
		case 'F': a->full = true; break;
		case 'w': a->wait = true; break;
		case 'S': a->stream = optarg; break;
		case 'T': a->since = optarg; break;
		case 'M': a->measurements = optarg; break;
		case 'U': a->unit = optarg; break;
		case 'O': a->openmetrics = true; break;
		case 'n':
			if (!parse_count(optarg, &a->n))
				return EXIT_USAGE;
			break;
		case 'V': printf("kleepctl %s\n", KLEEP_VERSION); return EXIT_OK;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	a->cmd = argv[optind++];
	while (optind < argc) {
		if (a->n_args == 4) {
			usage(stderr);
			return EXIT_USAGE;
		}
		a->arg[a->n_args++] = argv[optind++];
	}
	int k = -1;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, a->cmd) == 0)
			k = (int)i;
	if (k < 0 || a->n_args < known[k].min_args || a->n_args > known[k].max_args) {
		fprintf(stderr, k < 0 ? "kleepctl: unknown command '%s'\n" : "kleepctl: wrong arguments for '%s'\n",
			a->cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	/* export and dimensions-template read the mirror here: the daemon only says where it is. */
	a->local = strcmp(a->cmd, "export") == 0 || strcmp(a->cmd, "dimensions-template") == 0;
	return -1;
}

static json_t *build_request(const struct args *a)
{
	json_t *rq = json_pack("{s:i,s:s}", "v", CTL_VERSION, "cmd", a->local ? "status" : a->cmd);
	if (a->n_args >= 1)
		json_object_set_new(rq, "merchant", json_string(a->arg[0]));
	if (a->n_args >= 2 && !a->local)
		json_object_set_new(rq, strcmp(a->cmd, "rejects") == 0 ? "file" : "stream",
				    json_string(a->arg[1]));
	if (a->stream)
		json_object_set_new(rq, "stream", json_string(a->stream));
	if (a->full)
		json_object_set_new(rq, "full", json_true());
	if (a->wait)
		json_object_set_new(rq, "wait", json_true());
	if (a->n > 0)
		json_object_set_new(rq, "n", json_integer(a->n));
	if (a->openmetrics)
		json_object_set_new(rq, "openmetrics", json_true());
	return rq;
}

/* One request, one reply; EXIT_OK, or EXIT_UNREACHABLE said on stderr. */
static int call_daemon(const struct args *a, json_t **reply)
{
	json_t *rq = build_request(a);
	int fd = ctl_connect(a->socket_path);
	if (fd < 0) {
		json_decref(rq);
		fprintf(stderr, "kleepctl: cannot reach kleepd at %s: %s\n"
				"kleepctl: is kleepd running (systemctl status kleepd)? Another socket: "
				"--socket PATH or KLEEP_SOCKET\n", a->socket_path, strerror(-fd));
		return EXIT_UNREACHABLE;
	}
	/* A check probes the shop and the SFTP server, a reproject rewrites the mirror,
	 * a golive copies it (after the merchant's running job): give them minutes, not seconds. */
	bool slow = strcmp(a->cmd, "check") == 0 || strcmp(a->cmd, "reproject") == 0 ||
		    strcmp(a->cmd, "golive") == 0 || strcmp(a->cmd, "rebind") == 0;
	int r = ctl_call(fd, rq, reply, a->wait ? -1 : slow ? 3600000 : 30000);
	close(fd);
	if (r < 0) {
		fprintf(stderr, "kleepctl: no answer from kleepd at %s: %s\n", a->socket_path, strerror(-r));
		return EXIT_UNREACHABLE;
	}
	return EXIT_OK;
}

static void print_error(json_t *reply)
{
	json_t *e = json_object_get(reply, "error");
	if (opt_json) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		putchar('\n');
		return;
	}
	fprintf(stderr, "kleepctl: %s: %s\n", jstr(e, "code") ? jstr(e, "code") : "error",
		jstr(e, "message") ? jstr(e, "message") : "");
}

static void print_run(json_t *run)
{
	if (strcmp(jstr(run, "outcome"), "success") != 0) {
		printf("%s/%s: %s%s%s%s: %s\n", jstr(run, "merchant"), jstr(run, "stream"),
		       jstr(run, "outcome"), jstr(run, "error_class") ? " (" : "",
		       jstr(run, "error_class") ? jstr(run, "error_class") : "",
		       jstr(run, "error_class") ? ")" : "", jstr(run, "message") ? jstr(run, "message") : "");
		return;
	}
	printf("%s/%s: %s, %lld pages, %lld rows, %lld changed\n", jstr(run, "merchant"),
	       jstr(run, "stream"), jstr(run, "outcome"),
	       (long long)json_integer_value(json_object_get(run, "pages")),
	       (long long)json_integer_value(json_object_get(run, "rows")),
	       (long long)json_integer_value(json_object_get(run, "changed")));
}

/* A successful reply, for people. */
static int print_data(const struct args *a, json_t *data)
{
	if (strcmp(a->cmd, "check") == 0)
		return print_check(data);
	if (strcmp(a->cmd, "status") == 0) {
		print_status(data);
	} else if (strcmp(a->cmd, "metrics") == 0) {
		fputs(jstr(data, "text"), stdout);
	} else if (strcmp(a->cmd, "version") == 0) {
		printf("kleepctl %s\nkleepd %s (protocol %lld, schema %lld)\n", KLEEP_VERSION,
		       jstr(data, "version"), (long long)json_integer_value(json_object_get(data, "protocol")),
		       (long long)json_integer_value(json_object_get(data, "schema")));
	} else if (json_is_array(data)) {
		print_rows(data);
	} else if (jstr(data, "command") && jstr(data, "message")) {
		printf("%s: %s\n", jstr(data, "merchant"), jstr(data, "message"));
	} else if (strcmp(a->cmd, "sync") == 0 && jstr(data, "outcome")) {
		print_run(data);
	} else if (strcmp(a->cmd, "sync") == 0 && json_is_array(json_object_get(data, "runs"))) {
		/* sync M --wait: one line per stream it queued; 1 when any failed. */
		size_t i;
		json_t *run;
		json_array_foreach(json_object_get(data, "runs"), i, run)
			print_run(run);
		return json_integer_value(json_object_get(data, "failed")) ? EXIT_DAEMON : EXIT_OK;
	} else {
		char *s = json_dumps(data, JSON_COMPACT);
		printf("ok %s\n", s ? s : "");
		free(s);
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	json_t *reply;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if ((rc = call_daemon(&a, &reply)) != EXIT_OK)
		return rc;
	json_t *data = json_object_get(reply, "data");
	if (!json_is_true(json_object_get(reply, "ok"))) {
		print_error(reply);
		rc = EXIT_DAEMON;
	} else if (a.local) {
		rc = export_local(a.cmd, json_array_get(json_object_get(data, "merchants"), 0), a.arg[1],
				  a.since, a.measurements, a.unit);
	} else if (opt_json) {
		json_dumpf(data, stdout, JSON_INDENT(2));
		putchar('\n');
		if ((strcmp(a.cmd, "check") == 0 && !json_is_true(json_object_get(data, "go_live"))) ||
		    json_integer_value(json_object_get(data, "failed")) > 0)
			rc = EXIT_DAEMON;
	} else {
		rc = print_data(&a, data);
	}
	json_decref(reply);
	return rc;
}
