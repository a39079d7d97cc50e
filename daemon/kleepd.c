/* kleepd.c - the kleepd daemon: command line, then config check, a one-off sync, or the service. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <curl/curl.h>
#include <libssh2.h>
#include <sqlite3.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "control.h"
#include "ctl.h"
#include "errclass.h"
#include "jarena.h"
#include "log.h"
#include "merchant.h"
#include "profile.h"
#include "runtime.h"
#include "store.h"
#include "sync.h"

/* Raised by SIGINT/SIGTERM during --once: jobs stop at the next page. */
static atomic_bool once_stop;

static void once_signal(int sig)
{
	(void)sig;
	atomic_store(&once_stop, true);
}

/*
 * A core of kleepd holds merchants' passwords and bearer tokens (libcurl's
 * freed buffers keep them), and a non-dumpable process also refuses
 * ptrace and /proc/PID/mem to its own user.  Off from the start; [daemon]
 * core_dumps = yes turns cores back on for debugging.
 */
static void core_dumps(bool allow)
{
	if (prctl(PR_SET_DUMPABLE, allow ? 1 : 0, 0, 0, 0) < 0)
		fprintf(stderr, "kleepd: prctl(PR_SET_DUMPABLE): %s\n", strerror(errno));
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kleepd [-f] [-c FILE]                 run the service\n"
		"       kleepd --check-config [-c FILE]       check the configuration and exit\n"
		"       kleepd --once [-c FILE] [--merchant M] [--stream S] [--full]\n"
		"                                              sync once in the foreground and exit\n"
		"       kleepd --version\n"
		"\n"
		"  -c, --config FILE   main configuration file (default " CONFIG_DEFAULT_PATH ")\n"
		"  -f, --foreground    log to stderr instead of journald\n");
}

/* --check-config: every error on stderr as FILE:LINE:, one summary line per merchant. */
static int check_config(const char *path)
{
	struct config *c;
	int bad = 0;
	if (config_load(path, &c, stderr) < 0)
		return 1;
	/* Each merchant's API profile, with its overrides, must load and validate too. */
	for (size_t i = 0; i < c->n_merchants; i++) {
		const struct merchant_conf *m = &c->merchants[i];
		struct profile *p;
		if (!m->has_wshop)
			continue;
		if (profile_load(c->daemon.profile_dir, m->wshop.profile, m->wshop.overrides,
				 m->wshop.n_overrides, &p, stderr) < 0)
			bad++;
		profile_free(p);
	}
	if (bad) {
		config_free(c);
		return 1;
	}
	for (size_t i = 0; i < c->n_merchants; i++)
		config_merchant_summary(&c->merchants[i], stdout);
	printf("%s: ok, %zu merchant%s\n", path, c->n_merchants, c->n_merchants == 1 ? "" : "s");
	config_free(c);
	return 0;
}

/* One result line per job, for people and for test drivers alike. */
static void print_result(const char *merchant, enum stream s, const struct merchant_result *res)
{
	if (strcmp(res->outcome, "success") == 0)
		printf("%s/%s: success, %" PRId64 " pages, %" PRId64 " records, %" PRId64
		       " changed, %" PRId64 " requests%s%s\n", merchant, stream_name(s), res->pages,
		       res->rows_in, res->rows_changed, res->requests, res->message[0] ? "; " : "",
		       res->message);
	else
		printf("%s/%s: %s%s%s%s: %s\n", merchant, stream_name(s), res->outcome,
		       res->error_class ? " (" : "", res->error_class ? res->error_class : "",
		       res->error_class ? ")" : "", res->message);
	fflush(stdout);
}

/*
 * --once: every selected stream of every selected merchant, in sync_order
 * (reference data first, so products find their sizes and departments),
 * then the SFTP scan.  0 when every job succeeded.
 */
static int run_once(const char *path, const char *only_merchant, const char *only_stream, bool full)
{
	struct config *c;
	int failed = 0, ran = 0, want = -1;

	if (only_stream && (want = stream_from_name(only_stream)) < 0) {
		fprintf(stderr, "kleepd: unknown stream '%s'\n", only_stream);
		return 2;
	}
	if (full && want == STREAM_SFTP) {
		fprintf(stderr, "kleepd: --full resets an API stream's cursor; it does not apply to sftp\n");
		return 2;
	}
	if (config_load(path, &c, stderr) < 0)
		return 1;
	log_set_level(c->daemon.log_level);
	core_dumps(c->daemon.core_dumps);
	if (only_merchant && !config_merchant(c, only_merchant)) {
		fprintf(stderr, "kleepd: no merchant '%s' in %s\n", only_merchant, path);
		config_free(c);
		return 1;
	}
	struct sigaction sa = { .sa_handler = once_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (size_t i = 0; i < c->n_merchants && !atomic_load(&once_stop); i++) {
		const struct merchant_conf *m = &c->merchants[i];
		struct merchant *mr;
		char err[1024];
		if (only_merchant && strcmp(m->id, only_merchant) != 0)
			continue;
		int r = merchant_open(c, m, NULL, &mr, err, sizeof(err));
		if (r < 0) {
			printf("%s: failed (%s): %s\n", m->id, errclass_name(merchant_open_class(r)), err);
			failed++;
			continue;
		}
		for (int k = 0; k <= STREAM_API_COUNT && !atomic_load(&once_stop); k++) {
			enum stream s = k < STREAM_API_COUNT ? sync_order[k] : STREAM_SFTP;
			if ((want >= 0 && (int)s != want) || (want < 0 && !merchant_has_stream(mr, s)))
				continue;
			struct merchant_result res;
			if (merchant_run(mr, s, full, &once_stop, NULL, &res) < 0)
				failed++;
			print_result(m->id, s, &res);
			ran++;
		}
		merchant_close(mr);
	}
	config_free(c);
	if (atomic_load(&once_stop))
		return 1;
	return failed ? 1 : ran ? 0 : 1;
}

struct service {
	struct runtime *rt;
	struct control *ctl;
};

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
	struct service *sv = userdata;
	(void)src;
	if (si->ssi_signo == SIGHUP) {
		char err[4096];
		runtime_reload(sv->rt, err, sizeof(err));
		control_reconfigured(sv->ctl);
	} else {
		runtime_stop(sv->rt);
	}
	return 0;
}

/* Signals arrive on the loop; blocked before any thread starts, so workers inherit the mask. */
static int watch_signals(sd_event *e, struct service *sv)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sd_event_add_signal(e, NULL, sigs[i], on_signal, sv) < 0)
			return -1;
	return 0;
}

/*
 * The service.  Order matters: the listening socket systemd passed is taken
 * (sd_listen_fds unsets LISTEN_*) and signals are blocked before the runtime
 * starts its worker threads; nothing touches the environment after that.
 */
static int serve(const char *config_path, int listen_fd)
{
	struct config *c;
	char err[1024], sock[4096];
	sd_event *e = NULL;
	struct runtime *rt = NULL;
	struct control *ctl = NULL;
	int r = 1;

	if (config_load(config_path, &c, stderr) < 0)
		return 1;
	log_set_level(c->daemon.log_level);
	core_dumps(c->daemon.core_dumps);
	snprintf(sock, sizeof(sock), "%s/%s", c->daemon.runtime_dir, CTL_SOCKET_NAME);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sd_event_default(&e) < 0) {
		config_free(c);
		log_err(NULL, "cannot start the event loop");
		return 1;
	}
	size_t n_merchants = c->n_merchants;
	int workers = c->daemon.workers;
	if (!(rt = runtime_new(e, config_path, c, err, sizeof(err))) ||
	    !(ctl = control_new(e, rt, listen_fd, sock, err, sizeof(err)))) {
		log_err(NULL, "%s", err);
		goto out;
	}
	struct service sv = { rt, ctl };
	if (watch_signals(e, &sv) < 0) {
		log_err(NULL, "cannot watch signals");
		goto out;
	}
	sd_event_set_watchdog(e, true);
	sd_notify(0, "READY=1");
	log_notice(NULL, "kleepd %s started: %zu merchants, %d workers, control socket %s", KLEEP_VERSION,
		   n_merchants, workers, listen_fd >= 0 ? "from systemd" : sock);
	r = sd_event_loop(e) < 0 ? 1 : 0;
	log_notice(NULL, "stopped");
out:
	control_free(ctl);
	if (rt && !runtime_stopping(rt)) {
		runtime_stop(rt);
		/* Jobs already running (reading mirrors) end before the pool goes. */
		sd_event_loop(e);
	}
	runtime_free(rt);
	sd_event_unref(e);
	return r;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_ONCE, OPT_VERSION, OPT_MERCHANT, OPT_STREAM, OPT_FULL };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "merchant", required_argument, NULL, OPT_MERCHANT },
		{ "stream", required_argument, NULL, OPT_STREAM },
		{ "full", no_argument, NULL, OPT_FULL },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config_path = CONFIG_DEFAULT_PATH;
	const char *merchant = NULL, *stream = NULL;
	bool foreground = false, check = false, once = false, full = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case OPT_CHECK: check = true; break;
		case OPT_ONCE: once = true; break;
		case OPT_MERCHANT: merchant = optarg; break;
		case OPT_STREAM: stream = optarg; break;
		case OPT_FULL: full = true; break;
		case OPT_VERSION: printf("kleepd %s\n", KLEEP_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!once && (merchant || stream || full)) {
		usage(stderr);
		return 2;
	}
	core_dumps(false);
	log_init(foreground || once || check);
	/* Process-wide set-up, before any thread (DESIGN.md §2): the libraries,
	 * and the socket systemd passed (sd_listen_fds unsets LISTEN_*). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || libssh2_init(0) != 0) {
		fprintf(stderr, "kleepd: cannot initialize libcurl or libssh2\n");
		return 1;
	}
	/* SQLite's memory statistics take a global lock on every allocation
	 * of every connection, and nothing reads them. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* Reply pages parse into arenas (jarena.h); without one, into malloc. */
	jarena_install();
	int listen_fd = !check && !once && sd_listen_fds(1) > 0 ? SD_LISTEN_FDS_START : -1;
	int r = check ? check_config(config_path)
		: once ? run_once(config_path, merchant, stream, full)
		: serve(config_path, listen_fd);
	libssh2_exit();
	curl_global_cleanup();
	return r;
}
