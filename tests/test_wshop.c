/* test_wshop.c - the WSHOP client: pure helpers, the rate cap, and live calls to the emulator. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <curl/curl.h>

#include "unit.h"

#include "buf.h"
#include "wshop.h"
#include "wshop_reply.h"

#define EMULATOR "tests/emulator/wshop_emulator.py"
#define PYTHON "/usr/bin/python3"
#define PASSWORD "demo-password"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- pure helpers ------------------------------------------------------- */

static void test_error_class(void **state)
{
	(void)state;
	assert_null(errclass_name(ERRC_NONE));
	assert_string_equal(errclass_name(ERRC_CONFIG), "config");
	assert_string_equal(errclass_name(ERRC_AUTH), "auth");
	assert_string_equal(errclass_name(ERRC_UNAUTHORIZED), "unauthorized");
	assert_string_equal(errclass_name(ERRC_TRANSIENT), "transient");
	assert_string_equal(errclass_name(ERRC_BAD_REPLY), "bad_reply");
	assert_string_equal(errclass_name(ERRC_STORAGE), "storage");
	assert_string_equal(errclass_name(ERRC_STOPPED), "stopped");
	assert_null(errclass_name((enum errclass)99));
}

static void test_retry_after_seconds(void **state)
{
	(void)state;
	time_t now = 1700000000;
	assert_int_equal(wshop_parse_retry_after("120", now), 120);
	assert_int_equal(wshop_parse_retry_after(" 5 \r\n", now), 5);
	assert_int_equal(wshop_parse_retry_after("0", now), 0);
	assert_int_equal(wshop_parse_retry_after("99999999999999999999999", now), LONG_MAX);
}

static void test_retry_after_http_date(void **state)
{
	(void)state;
	time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
	assert_int_equal(wshop_parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now), 30);
	assert_int_equal(wshop_parse_retry_after(" Tue, 14 Nov 2023 22:15:20 GMT\r\n", now), 120);
	/* The obsolete RFC 850 form that HTTP still asks clients to accept. */
	assert_int_equal(wshop_parse_retry_after("Tuesday, 14-Nov-23 22:13:30 GMT", now), 10);
	/* A date already past means "now". */
	assert_int_equal(wshop_parse_retry_after("Mon, 13 Nov 2023 22:13:20 GMT", now), 0);
}

static void test_retry_after_garbage(void **state)
{
	(void)state;
	time_t now = 1700000000;
	assert_int_equal(wshop_parse_retry_after(NULL, now), -1);
	assert_int_equal(wshop_parse_retry_after("", now), -1);
	assert_int_equal(wshop_parse_retry_after("   ", now), -1);
	assert_int_equal(wshop_parse_retry_after("soon", now), -1);
	assert_int_equal(wshop_parse_retry_after("-5", now), -1);
	assert_int_equal(wshop_parse_retry_after("12abc", now), -1);
	char huge[300];
	memset(huge, '7', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = 0;
	huge[0] = 'x';
	assert_int_equal(wshop_parse_retry_after(huge, now), -1);
}

/* base64url without padding, as JWTs carry their parts. */
static char *b64url(const char *in)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(in), o = 0;
	char *out = malloc(n * 4 / 3 + 4);
	assert_non_null(out);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tab[v & 63];
	}
	out[o] = 0;
	return out;
}

static char *make_jwt(const char *payload)
{
	char *h = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"), *p = b64url(payload), *jwt;
	assert_true(asprintf(&jwt, "%s.%s.c2lnbmF0dXJl", h, p) > 0);
	free(h);
	free(p);
	return jwt;
}

static void test_jwt_exp(void **state)
{
	(void)state;
	char *jwt = make_jwt("{\"sub\":\"demo@example.com\",\"iat\":1893452400,\"exp\":1893456000}");
	assert_int_equal(wshop_jwt_exp(jwt), 1893456000);
	free(jwt);
	/* Payload lengths that need one and two padding characters. */
	jwt = make_jwt("{\"exp\":1893456000,\"a\":\"x\"}");
	assert_int_equal(wshop_jwt_exp(jwt), 1893456000);
	free(jwt);
	jwt = make_jwt("{\"exp\":1893456000,\"a\":\"xy\"}");
	assert_int_equal(wshop_jwt_exp(jwt), 1893456000);
	free(jwt);
	/* Characters that base64url encodes as '-' and '_'. */
	jwt = make_jwt("{\"n\":\"??????~~~~~~\",\"exp\":1700000000}");
	assert_non_null(strchr(jwt, '-'));
	assert_non_null(strchr(jwt, '_'));
	assert_int_equal(wshop_jwt_exp(jwt), 1700000000);
	free(jwt);
}

static void test_jwt_exp_missing_or_garbage(void **state)
{
	(void)state;
	char *jwt = make_jwt("{\"sub\":\"demo@example.com\"}");
	assert_int_equal(wshop_jwt_exp(jwt), 0);
	free(jwt);
	jwt = make_jwt("{\"exp\":\"tomorrow\"}");
	assert_int_equal(wshop_jwt_exp(jwt), 0);
	free(jwt);
	jwt = make_jwt("not json at all");
	assert_int_equal(wshop_jwt_exp(jwt), 0);
	free(jwt);
	jwt = make_jwt("[1893456000]");
	assert_int_equal(wshop_jwt_exp(jwt), 0);
	free(jwt);
	assert_int_equal(wshop_jwt_exp(NULL), 0);
	assert_int_equal(wshop_jwt_exp(""), 0);
	assert_int_equal(wshop_jwt_exp("opaque-session-token"), 0);
	assert_int_equal(wshop_jwt_exp("a.b"), 0);
	assert_int_equal(wshop_jwt_exp("a..c"), 0);
	assert_int_equal(wshop_jwt_exp("a.!!!!.c"), 0);
	/* A payload larger than any token we accept is refused, not overflowed. */
	size_t n = 40000;
	char *big = malloc(n + 5);
	assert_non_null(big);
	memcpy(big, "a.", 2);
	memset(big + 2, 'A', n);
	memcpy(big + 2 + n, ".c", 3);
	assert_int_equal(wshop_jwt_exp(big), 0);
	free(big);
}

static void check_join(const char *api, const char *base, const char *path, const char *want)
{
	char *got = wshop_join_url(api, base, path);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_join_url(void **state)
{
	(void)state;
	const char *want = "https://shop.example/api/v1/orders/get";
	/* Both forms DOMAIN.md §1 accepts: the shop root and the API root. */
	check_join("https://shop.example", "/api/v1", "/orders/get", want);
	check_join("https://shop.example/api/v1", "/api/v1", "/orders/get", want);
	/* Trailing slashes anywhere. */
	check_join("https://shop.example/", "/api/v1", "/orders/get", want);
	check_join("https://shop.example///", "/api/v1", "/orders/get", want);
	check_join("https://shop.example/api/v1/", "/api/v1", "/orders/get", want);
	check_join("https://shop.example/api/v1//", "/api/v1/", "/orders/get", want);
	check_join("https://shop.example", "/api/v1/", "orders/get", want);
	/* A shop under a folder, and a port. */
	check_join("http://127.0.0.1:8080/shop", "/api/v1", "/authenticate",
		   "http://127.0.0.1:8080/shop/api/v1/authenticate");
	check_join("http://127.0.0.1:8080/shop/api/v1", "/api/v1", "/authenticate",
		   "http://127.0.0.1:8080/shop/api/v1/authenticate");
	/* Only a whole trailing segment counts as the base path. */
	check_join("https://shop.example/myapi/v1", "/api/v1", "/x",
		   "https://shop.example/myapi/v1/api/v1/x");
	/* No base path, and the other profile's. */
	check_join("https://shop.example/", "", "/x", "https://shop.example/x");
	check_join("https://shop.example", NULL, "/x", "https://shop.example/x");
	check_join("https://shop.example/rest/v2", "/rest/v2", "/auth/login",
		   "https://shop.example/rest/v2/auth/login");
	check_join("https://shop.example", "/api/v1", "", "https://shop.example/api/v1");
}

/* ---- rate cap ----------------------------------------------------------- */

static void test_ratelimit_spacing(void **state)
{
	(void)state;
	struct wshop_ratelimit *rl = wshop_ratelimit_new(20.0);
	assert_non_null(rl);
	double t0 = now_s();
	for (int i = 0; i < 6; i++)
		assert_true(wshop_ratelimit_wait(rl, NULL));
	/* Six calls at 20/s: five gaps of 50 ms. */
	assert_true(now_s() - t0 >= 5 / 20.0 - 0.002);
	wshop_ratelimit_free(rl);
}

struct rl_thread {
	struct wshop_ratelimit *rl;
	int calls;
};

static void *rl_worker(void *arg)
{
	struct rl_thread *t = arg;
	for (int i = 0; i < t->calls; i++)
		if (!wshop_ratelimit_wait(t->rl, NULL))
			return (void *)1;
	return NULL;
}

static void test_ratelimit_shared_by_threads(void **state)
{
	(void)state;
	struct wshop_ratelimit *rl = wshop_ratelimit_new(25.0);
	struct rl_thread t = { rl, 4 };
	pthread_t th[3];
	double t0 = now_s();
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rl_worker, &t), 0);
	for (int i = 0; i < 3; i++) {
		void *rv;
		pthread_join(th[i], &rv);
		assert_null(rv);
	}
	/* Twelve calls from three threads at 25/s: eleven gaps of 40 ms. */
	assert_true(now_s() - t0 >= 11 / 25.0 - 0.002);
	wshop_ratelimit_free(rl);
}

static void test_ratelimit_unlimited_and_stop(void **state)
{
	(void)state;
	struct wshop_ratelimit *rl = wshop_ratelimit_new(0);
	for (int i = 0; i < 1000; i++)
		assert_true(wshop_ratelimit_wait(rl, NULL));
	wshop_ratelimit_free(rl);
	rl = wshop_ratelimit_new(-1);
	assert_true(wshop_ratelimit_wait(rl, NULL));
	wshop_ratelimit_free(rl);
	assert_true(wshop_ratelimit_wait(NULL, NULL));
	wshop_ratelimit_free(NULL);

	/* A raised stop flag ends a wait for a far slot. */
	atomic_bool stop = true;
	rl = wshop_ratelimit_new(0.01);
	assert_true(wshop_ratelimit_wait(rl, NULL));
	double t0 = now_s();
	assert_false(wshop_ratelimit_wait(rl, &stop));
	assert_true(now_s() - t0 < 5);
	wshop_ratelimit_free(rl);
}

/* ---- the emulator ------------------------------------------------------- */

struct emu {
	pid_t pid;
	int port;
};

/* Start the emulator with extra arguments (NULL-terminated); port 0 when it cannot. */
static struct emu emu_start(const char *const *extra)
{
	struct emu e = { -1, 0 };
	const char *argv[24] = { PYTHON, EMULATOR, "--port", "0", "--products", "30", "--orders",
				 "60", "--returns", "20" };
	int argc = 10, fds[2];

	for (; extra && *extra && argc < 22; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	e.pid = fork();
	assert_true(e.pid >= 0);
	if (e.pid == 0) {
		dup2(fds[1], 1);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);

	char line[64];
	size_t len = 0;
	double deadline = now_s() + 30;
	while (len < sizeof(line) - 1 && !memchr(line, '\n', len) && now_s() < deadline) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		ssize_t n = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = 0;
	close(fds[0]);
	if (sscanf(line, "PORT %d", &e.port) != 1 || e.port <= 0) {
		kill(e.pid, SIGKILL);
		waitpid(e.pid, NULL, 0);
		fail_msg("the emulator did not print its port (got '%s')", line);
	}
	return e;
}

static void emu_stop(struct emu *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		waitpid(e->pid, NULL, 0);
		e->pid = -1;
	}
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	assert_int_equal(buf_add(ud, ptr, size * nmemb), 0);
	return size * nmemb;
}

/* POST body (JSON text) to the emulator's control path; the parsed reply (caller decrefs). */
static json_t *ctl(const struct emu *e, const char *path, const char *body)
{
	char url[256];
	struct buf out;
	long status = 0;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

	buf_init(&out, 1 << 20);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "{}");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (status != 200)
		fail_msg("control %s: HTTP %ld: %s", path, status, buf_str(&out));
	json_t *j = json_loads(buf_str(&out), 0, NULL);
	buf_free(&out);
	assert_non_null(j);
	return j;
}

static void ctl_do(const struct emu *e, const char *path, const char *body)
{
	json_decref(ctl(e, path, body));
}

/* How many requests the emulator saw on a default-profile action path. */
static long emu_requests(const struct emu *e, const char *action)
{
	json_t *s = ctl(e, "/_emulator/stats", NULL);
	long n = (long)json_integer_value(json_object_get(json_object_get(s, "requests"), action));
	json_decref(s);
	return n;
}

static void emu_fault(const struct emu *e, const char *endpoint, const char *kind, int count,
		      const char *extra)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"rules\":[{\"endpoint\":\"%s\",\"kind\":\"%s\",\"count\":%d%s%s}]}", endpoint, kind,
		 count, extra ? "," : "", extra ? extra : "");
	ctl_do(e, "/_emulator/faults", body);
}

/* ---- live tests --------------------------------------------------------- */

struct live {
	struct emu emu;
	char *dir;
	char *password_file;
	char *bad_password_file;
};

static struct live *L;

static int live_setup(void **state)
{
	(void)state;
	if (access(EMULATOR, R_OK) != 0 || access(PYTHON, X_OK) != 0)
		return 0; /* each live test skips */
	L = calloc(1, sizeof(*L));
	L->emu = emu_start(NULL);
	L->dir = unit_tmpdir();
	assert_true(asprintf(&L->password_file, "%s/password", L->dir) > 0);
	assert_true(asprintf(&L->bad_password_file, "%s/bad", L->dir) > 0);
	FILE *f = fopen(L->password_file, "w");
	fputs(PASSWORD "\n", f);
	fclose(f);
	f = fopen(L->bad_password_file, "w");
	fputs("not-the-" PASSWORD "\n", f);
	fclose(f);
	return 0;
}

static int live_teardown(void **state)
{
	(void)state;
	if (!L)
		return 0;
	emu_stop(&L->emu);
	unit_rmtree(L->dir);
	free(L->password_file);
	free(L->bad_password_file);
	free(L);
	L = NULL;
	return 0;
}

/* Each live test starts from a clean emulator: data, faults, stats, revokes. */
static int live_reset(void **state)
{
	(void)state;
	if (L)
		ctl_do(&L->emu, "/_emulator/reset", NULL);
	return 0;
}

/* The default profile with fast retries plus key=value overrides (NULL-terminated pairs). */
static struct profile *load_profile(const char *name, const char *const *kv)
{
	struct profile_override ov[16];
	size_t n = 0;
	const char *base[] = { "retry.base_ms", "10", "retry.cap_ms", "100", NULL };

	for (const char *const *p = base; *p; p += 2)
		ov[n++] = (struct profile_override){ (char *)p[0], (char *)p[1], "test", 0 };
	for (; kv && *kv && n < 16; kv += 2)
		ov[n++] = (struct profile_override){ (char *)kv[0], (char *)kv[1], "test", 0 };
	struct profile *pr = NULL;
	assert_int_equal(profile_load("lib/profiles", name, ov, n, &pr, stderr), 0);
	return pr;
}

struct client {
	struct profile *profile;
	struct wshop *w;
	char url[128];
	atomic_bool stop;
};

static struct client *client_new_at(const struct emu *e, const char *profile_name,
				    const char *url_suffix, const char *password_file,
				    const char *const *kv)
{
	struct client *c = calloc(1, sizeof(*c));
	c->profile = load_profile(profile_name, kv);
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d%s", e->port, url_suffix);
	atomic_init(&c->stop, false);
	struct wshop_opts o = {
		.api_url = c->url,
		.username = "demo@example.com",
		.password_file = password_file,
		.profile = c->profile,
		.stop = &c->stop,
		.log = { "test-merchant", "orders", 0 },
	};
	c->w = wshop_new(&o);
	assert_non_null(c->w);
	return c;
}

static struct client *client_new(const char *const *kv)
{
	return client_new_at(&L->emu, "default", "", L->password_file, kv);
}

static void client_free(struct client *c)
{
	wshop_free(c->w);
	profile_free(c->profile);
	free(c);
}

#define NEED_EMULATOR()                                                             \
	do {                                                                        \
		if (!L) {                                                           \
			fprintf(stderr, "no emulator at %s: skipped\n", EMULATOR); \
			skip();                                                     \
		}                                                                   \
	} while (0)

/* Fetch the first page of s and expect success with at least one record. */
static void fetch_ok(struct client *c, enum stream s)
{
	json_t *recs = NULL;
	enum errclass e = wshop_fetch_page(c->w, s, c->profile->first_page, NULL, &recs);
	if (e != ERRC_NONE)
		fail_msg("%s: %s: %s", stream_name(s), errclass_name(e), wshop_last_error(c->w));
	assert_true(json_is_array(recs));
	assert_true(json_array_size(recs) > 0);
	json_decref(recs);
}

static enum errclass fetch(struct client *c, enum stream s)
{
	json_t *recs = NULL;
	enum errclass e = wshop_fetch_page(c->w, s, c->profile->first_page, NULL, &recs);
	assert_true(e == ERRC_NONE ? json_is_array(recs) : recs == NULL);
	json_decref(recs);
	return e;
}

static void test_live_every_stream(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	for (int s = 0; s < STREAM_API_COUNT; s++)
		fetch_ok(c, s);
	/* One token serves every call (and the same connection: keep-alive). */
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 1);
	assert_int_equal(wshop_stats(c->w)->requests, 1 + STREAM_API_COUNT);
	assert_int_equal(wshop_stats(c->w)->connects, 1);
	assert_true(wshop_stats(c->w)->bytes > 0);
	assert_int_equal(wshop_last_http_status(c->w), 200);
	assert_string_equal(wshop_last_error(c->w), "");
	client_free(c);
}

static void test_live_lazy_auth_and_api_root_url(void **state)
{
	(void)state;
	NEED_EMULATOR();
	/* The API root form, with a trailing slash; no explicit authenticate call. */
	struct client *c = client_new_at(&L->emu, "default", "/api/v1/", L->password_file, NULL);
	fetch_ok(c, STREAM_ORDERS);
	fetch_ok(c, STREAM_RETURNS);
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 1);
	client_free(c);
}

static void test_live_page_and_date_filter(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "paging.limit", "7", NULL };
	struct client *c = client_new(kv);
	json_t *p1 = NULL, *p2 = NULL, *since = NULL;
	assert_int_equal(wshop_fetch_page(c->w, STREAM_ORDERS, 1, NULL, &p1), ERRC_NONE);
	assert_int_equal(wshop_fetch_page(c->w, STREAM_ORDERS, 2, NULL, &p2), ERRC_NONE);
	assert_int_equal(json_array_size(p1), 7);
	assert_int_equal(json_array_size(p2), 7);
	/* Page 2 follows page 1 (records come by id). */
	assert_true(json_integer_value(json_object_get(json_array_get(p2, 0), "id")) >
		    json_integer_value(json_object_get(json_array_get(p1, 6), "id")));

	const char *from = "2026-10-01 00:00:00";
	assert_int_equal(wshop_fetch_page(c->w, STREAM_ORDERS, 1, from, &since), ERRC_NONE);
	size_t i;
	json_t *r;
	json_array_foreach(since, i, r)
		assert_true(strcmp(json_string_value(json_object_get(r, "date_upd")), from) >= 0);
	json_decref(p1);
	json_decref(p2);
	json_decref(since);
	client_free(c);
}

static void test_live_wrong_password(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new_at(&L->emu, "default", "", L->bad_password_file, NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_AUTH);
	const char *msg = wshop_last_error(c->w);
	assert_non_null(strstr(msg, "Invalid credentials"));
	assert_non_null(strstr(msg, "401"));
	assert_null(strstr(msg, PASSWORD));
	assert_string_equal(wshop_last_endpoint(c->w), "/authenticate");
	/* A data call needing a token fails the same way, without retrying in a loop. */
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_AUTH);
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 2);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 0);
	client_free(c);
}

static void test_live_missing_password_file(void **state)
{
	(void)state;
	NEED_EMULATOR();
	char *path;
	assert_true(asprintf(&path, "%s/nope", L->dir) > 0);
	struct client *c = client_new_at(&L->emu, "default", "", path, NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_CONFIG);
	assert_non_null(strstr(wshop_last_error(c->w), "password file"));
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 0);
	client_free(c);
	free(path);
}

static void test_live_revoked_endpoint(void **state)
{
	(void)state;
	NEED_EMULATOR();
	ctl_do(&L->emu, "/_emulator/revoke", "{\"endpoint\":\"/returns/get\"}");
	struct client *c = client_new(NULL);
	assert_int_equal(fetch(c, STREAM_RETURNS), ERRC_UNAUTHORIZED);
	const char *msg = wshop_last_error(c->w);
	assert_non_null(strstr(msg, "endpoint /returns/get is not authorized"));
	assert_non_null(strstr(msg, "403"));
	assert_string_equal(wshop_last_endpoint(c->w), "/returns/get");
	assert_int_equal(wshop_last_http_status(c->w), 403);
	/* Not retried in a loop, and every other stream still works. */
	assert_int_equal(emu_requests(&L->emu, "/returns/get"), 1);
	fetch_ok(c, STREAM_ORDERS);
	fetch_ok(c, STREAM_RETURN_REASONS);
	client_free(c);
}

static void test_live_429_retry_after(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	emu_fault(&L->emu, "/orders/get", "429", 1, "\"retry_after\":1");
	double t0 = now_s();
	fetch_ok(c, STREAM_ORDERS);
	/* Backoff alone would be ~10 ms; Retry-After asked for a second. */
	assert_true(now_s() - t0 >= 1.0);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 2);
	client_free(c);
}

static void test_live_503_retry_after_date(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	/* The emulator sends ceil(now) + 2 as an HTTP-date: at least one whole second away. */
	emu_fault(&L->emu, "/orders/get", "503", 1, "\"retry_after\":2,\"retry_after_date\":true");
	double t0 = now_s();
	fetch_ok(c, STREAM_ORDERS);
	assert_true(now_s() - t0 >= 1.0);
	client_free(c);
}

static void test_live_retry_after_too_long(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	emu_fault(&L->emu, "/orders/get", "429", 5, "\"retry_after\":600");
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_TRANSIENT);
	assert_non_null(strstr(wshop_last_error(c->w), "600"));
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 1);
	client_free(c);
}

static void test_live_500_twice(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "500", 2, NULL);
	fetch_ok(c, STREAM_ORDERS);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 3);
	/* Auth plus three tries. */
	assert_int_equal(wshop_stats(c->w)->requests, 4);
	client_free(c);
}

static void test_live_502_html(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/products/get", "502", 3, NULL);
	fetch_ok(c, STREAM_PRODUCTS);
	assert_int_equal(emu_requests(&L->emu, "/products/get"), 4);
	client_free(c);
}

static void test_live_500_gives_up(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "500", 20, NULL);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_TRANSIENT);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), c->profile->retry_attempts);
	const char *msg = wshop_last_error(c->w);
	assert_non_null(strstr(msg, "/orders/get"));
	assert_non_null(strstr(msg, "HTTP 500"));
	assert_non_null(strstr(msg, "Internal server error"));
	assert_int_equal(wshop_last_http_status(c->w), 500);
	client_free(c);
}

static void test_live_invalid_json_gives_up(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "invalid_json", 20, NULL);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_BAD_REPLY);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), c->profile->retry_attempts);
	/* The body (which may hold personal data) is never quoted. */
	assert_null(strstr(wshop_last_error(c->w), "Maintenance"));
	assert_non_null(strstr(wshop_last_error(c->w), "not a JSON object"));
	client_free(c);
}

static void test_live_success_false(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "success_false", 1, NULL);
	fetch_ok(c, STREAM_ORDERS);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 2);
	emu_fault(&L->emu, "/orders/get", "success_false", 20, NULL);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_BAD_REPLY);
	assert_non_null(strstr(wshop_last_error(c->w), "Internal error"));
	client_free(c);
}

static void test_live_truncated(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "truncated", 2, NULL);
	fetch_ok(c, STREAM_ORDERS);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 3);
	client_free(c);
}

static void test_live_reset(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "reset", 2, NULL);
	fetch_ok(c, STREAM_ORDERS);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 3);
	/* A reset connection is not reused. */
	assert_true(wshop_stats(c->w)->connects >= 3);
	client_free(c);
}

static void test_live_auth_transient(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/authenticate", "503", 2, NULL);
	fetch_ok(c, STREAM_SIZES);
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 3);
	client_free(c);
}

static void test_live_stall_timeout(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "request_timeout_s", "1", NULL };
	struct client *c = client_new(kv);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	emu_fault(&L->emu, "/orders/get", "stall", 1, "\"seconds\":3");
	double t0 = now_s();
	fetch_ok(c, STREAM_ORDERS);
	assert_true(now_s() - t0 >= 1.0);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 2);
	client_free(c);
}

static void test_live_expired_token(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	fetch_ok(c, STREAM_ORDERS);
	emu_fault(&L->emu, "/orders/get", "expire_token", 1, NULL);
	fetch_ok(c, STREAM_ORDERS);
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 2);
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 3);
	client_free(c);
}

static void test_live_401_twice(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	emu_fault(&L->emu, "/orders/get", "401", 5, NULL);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_UNAUTHORIZED);
	assert_non_null(strstr(wshop_last_error(c->w), "endpoint /orders/get is not authorized"));
	assert_non_null(strstr(wshop_last_error(c->w), "401"));
	/* One retry with a fresh token, then no loop. */
	assert_int_equal(emu_requests(&L->emu, "/orders/get"), 2);
	assert_int_equal(emu_requests(&L->emu, "/authenticate"), 2);
	client_free(c);
}

static void test_live_other_4xx_is_config(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "streams.orders.path", "/orders/list", NULL };
	struct client *c = client_new(kv);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_CONFIG);
	assert_non_null(strstr(wshop_last_error(c->w), "HTTP 404"));
	assert_non_null(strstr(wshop_last_error(c->w), "/orders/list"));
	assert_int_equal(emu_requests(&L->emu, "/api/v1/orders/list"), 1);
	client_free(c);
}

static void test_live_records_path_wrong(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "streams.orders.records", "data.items", NULL };
	struct client *c = client_new(kv);
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_BAD_REPLY);
	assert_non_null(strstr(wshop_last_error(c->w), "data.items"));
	client_free(c);
}

static void test_live_connection_refused(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "retry.attempts", "3", NULL };
	struct emu dead = { -1, 1 }; /* nothing listens on port 1 */
	struct client *c = client_new_at(&dead, "default", "", L->password_file, kv);
	assert_int_equal(wshop_authenticate(c->w), ERRC_TRANSIENT);
	assert_int_equal(wshop_stats(c->w)->requests, 3);
	client_free(c);
}

static void *raise_stop_later(void *arg)
{
	struct timespec ts = { 0, 300 * 1000000 };
	nanosleep(&ts, NULL);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

static void test_live_stop_during_backoff(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *kv[] = { "retry.base_ms", "20000", "retry.cap_ms", "20000", NULL };
	struct client *c = client_new(kv);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	emu_fault(&L->emu, "/orders/get", "500", 20, NULL);
	pthread_t th;
	pthread_create(&th, NULL, raise_stop_later, &c->stop);
	double t0 = now_s();
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_STOPPED);
	/* The backoff was 10 s or more; stop cut it short. */
	assert_true(now_s() - t0 < 5);
	pthread_join(th, NULL);
	client_free(c);
}

static void test_live_stop_during_transfer(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	emu_fault(&L->emu, "/orders/get", "stall", 1, "\"seconds\":20");
	pthread_t th;
	pthread_create(&th, NULL, raise_stop_later, &c->stop);
	double t0 = now_s();
	assert_int_equal(fetch(c, STREAM_ORDERS), ERRC_STOPPED);
	assert_true(now_s() - t0 < 5);
	pthread_join(th, NULL);
	/* Once raised, nothing more is sent. */
	long before = wshop_stats(c->w)->requests;
	assert_int_equal(fetch(c, STREAM_SIZES), ERRC_STOPPED);
	assert_int_equal(wshop_stats(c->w)->requests, before);
	client_free(c);
}

static void test_live_gzip(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct client *c = client_new(NULL);
	assert_int_equal(wshop_authenticate(c->w), ERRC_NONE);
	int64_t b0 = wshop_stats(c->w)->bytes, w0 = wshop_stats(c->w)->wire_bytes;
	fetch_ok(c, STREAM_PRODUCTS);
	int64_t body = wshop_stats(c->w)->bytes - b0, wire = wshop_stats(c->w)->wire_bytes - w0;
	/* JSON of thirty products compresses far better than 2:1. */
	assert_true(wire > 0);
	assert_true(wire * 2 < body);
	client_free(c);
}

static void test_live_rate_cap(void **state)
{
	(void)state;
	NEED_EMULATOR();
	struct profile *pr = load_profile("default", NULL);
	struct wshop_ratelimit *rl = wshop_ratelimit_new(10.0);
	struct wshop_opts o = {
		.api_url = NULL, .username = "demo@example.com", .password_file = L->password_file,
		.profile = pr, .ratelimit = rl,
	};
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", L->emu.port);
	o.api_url = url;
	struct wshop *w = wshop_new(&o);
	double t0 = now_s();
	/* Authentication counts too: five requests at 10/s take at least 0.4 s. */
	for (int i = 0; i < 4; i++) {
		json_t *recs = NULL;
		assert_int_equal(wshop_fetch_page(w, STREAM_SIZES, 1, NULL, &recs), ERRC_NONE);
		json_decref(recs);
	}
	assert_true(now_s() - t0 >= 0.4 - 0.002);
	assert_int_equal(wshop_stats(w)->requests, 5);
	wshop_free(w);
	wshop_ratelimit_free(rl);
	profile_free(pr);
}

static void test_live_token_renewed_before_exp(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *args[] = { "--token-lifetime", "4", NULL };
	struct emu e = emu_start(args);
	struct client *c = client_new_at(&e, "default", "", L->password_file, NULL);
	fetch_ok(c, STREAM_SIZES);
	/* A 4 s token is renewed at half its life, before the emulator would refuse it. */
	struct timespec ts = { 2, 300 * 1000000 };
	nanosleep(&ts, NULL);
	fetch_ok(c, STREAM_SIZES);
	assert_int_equal(emu_requests(&e, "/authenticate"), 2);
	assert_int_equal(emu_requests(&e, "/sizes/get"), 2);
	client_free(c);
	emu_stop(&e);
}

static void test_live_alt_profile(void **state)
{
	(void)state;
	NEED_EMULATOR();
	const char *args[] = { "--profile", "alt", NULL };
	struct emu e = emu_start(args);
	struct client *c = client_new_at(&e, "alt", "", L->password_file, NULL);
	for (int s = 0; s < STREAM_API_COUNT; s++)
		fetch_ok(c, s);
	json_t *recs = NULL;
	assert_int_equal(wshop_fetch_page(c->w, STREAM_ORDERS, 0, "2026-10-01T00:00:00", &recs),
			 ERRC_NONE);
	assert_non_null(json_object_get(json_array_get(recs, 0), "uid"));
	json_decref(recs);
	assert_int_equal(emu_requests(&e, "/authenticate"), 1);
	client_free(c);
	emu_stop(&e);
}

#define LIVE(t) cmocka_unit_test_setup(t, live_reset)

int main(void)
{
	log_init(true);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* A dying emulator must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* One group, so the test runner's count (it reads the last summary) covers all. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_class),
		cmocka_unit_test(test_retry_after_seconds),
		cmocka_unit_test(test_retry_after_http_date),
		cmocka_unit_test(test_retry_after_garbage),
		cmocka_unit_test(test_jwt_exp),
		cmocka_unit_test(test_jwt_exp_missing_or_garbage),
		cmocka_unit_test(test_join_url),
		cmocka_unit_test(test_ratelimit_spacing),
		cmocka_unit_test(test_ratelimit_shared_by_threads),
		cmocka_unit_test(test_ratelimit_unlimited_and_stop),
		LIVE(test_live_every_stream),
		LIVE(test_live_lazy_auth_and_api_root_url),
		LIVE(test_live_page_and_date_filter),
		LIVE(test_live_wrong_password),
		LIVE(test_live_missing_password_file),
		LIVE(test_live_revoked_endpoint),
		LIVE(test_live_429_retry_after),
		LIVE(test_live_503_retry_after_date),
		LIVE(test_live_retry_after_too_long),
		LIVE(test_live_500_twice),
		LIVE(test_live_502_html),
		LIVE(test_live_500_gives_up),
		LIVE(test_live_invalid_json_gives_up),
		LIVE(test_live_success_false),
		LIVE(test_live_truncated),
		LIVE(test_live_reset),
		LIVE(test_live_auth_transient),
		LIVE(test_live_stall_timeout),
		LIVE(test_live_expired_token),
		LIVE(test_live_401_twice),
		LIVE(test_live_other_4xx_is_config),
		LIVE(test_live_records_path_wrong),
		LIVE(test_live_connection_refused),
		LIVE(test_live_stop_during_backoff),
		LIVE(test_live_stop_during_transfer),
		LIVE(test_live_gzip),
		LIVE(test_live_rate_cap),
		LIVE(test_live_token_renewed_before_exp),
		LIVE(test_live_alt_profile),
	};
	int failed = cmocka_run_group_tests_name("wshop", tests, live_setup, live_teardown);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
