/* test_ctl.c - the control protocol: request parsing, reply lines, and the client call over a socket. */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "unit.h"

#include "ctl.h"

static int parse(const char *line, struct ctl_request *req, const char **code, char *err, size_t errlen)
{
	err[0] = 0;
	return ctl_request_parse(line, strlen(line), req, code, err, errlen);
}

static void test_parse_minimal_request(void **state)
{
	(void)state;
	struct ctl_request req;
	const char *code = NULL;
	char err[256];

	assert_int_equal(parse("{\"v\":1,\"cmd\":\"status\",\"merchant\":\"m\"}", &req, &code, err,
			       sizeof(err)), 0);
	assert_non_null(req.json);
	assert_string_equal(req.cmd, "status");
	assert_string_equal(req.merchant, "m");
	assert_null(req.stream);
	assert_null(req.file);
	assert_false(req.full);
	assert_false(req.wait);
	assert_int_equal(req.n, 0);
	ctl_request_free(&req);
	assert_null(req.json);
}

static void test_parse_every_field(void **state)
{
	(void)state;
	struct ctl_request req;
	const char *code = NULL;
	char err[256];

	assert_int_equal(parse("{\"v\":1,\"cmd\":\"sync\",\"merchant\":\"acme-fr\",\"stream\":\"orders\","
			       "\"full\":true,\"wait\":true,\"n\":100000,\"file\":\"/tmp/x.csv\"}",
			       &req, &code, err, sizeof(err)), 0);
	assert_string_equal(req.cmd, "sync");
	assert_string_equal(req.merchant, "acme-fr");
	assert_string_equal(req.stream, "orders");
	assert_string_equal(req.file, "/tmp/x.csv");
	assert_true(req.full);
	assert_true(req.wait);
	assert_int_equal(req.n, 100000);
	ctl_request_free(&req);

	/* Explicit false and null read as absent. */
	assert_int_equal(parse("{\"v\":1,\"cmd\":\"runs\",\"merchant\":null,\"full\":false,\"n\":0}",
			       &req, &code, err, sizeof(err)), 0);
	assert_null(req.merchant);
	assert_false(req.full);
	assert_int_equal(req.n, 0);
	ctl_request_free(&req);

	/* Only len bytes are the request: the newline and what follows are not read. */
	const char *line = "{\"v\":1,\"cmd\":\"status\"}\n{garbage";
	assert_int_equal(ctl_request_parse(line, strlen("{\"v\":1,\"cmd\":\"status\"}"), &req, &code, err,
					   sizeof(err)), 0);
	assert_string_equal(req.cmd, "status");
	ctl_request_free(&req);
}

static void expect_refused(const char *line, const char *want_code)
{
	struct ctl_request req;
	const char *code = NULL;
	char err[256];
	int r = parse(line, &req, &code, err, sizeof(err));
	if (r != -EINVAL)
		fail_msg("%s: got %d, want -EINVAL", line, r);
	if (!code || strcmp(code, want_code) != 0)
		fail_msg("%s: code %s, want %s", line, code ? code : "(null)", want_code);
	if (!err[0])
		fail_msg("%s: refused without a message", line);
	assert_null(req.json); /* nothing for the caller to free */
}

static void test_parse_refusals(void **state)
{
	(void)state;
	expect_refused("{\"v\":1,\"cmd\":", "bad_request");
	expect_refused("", "bad_request");
	expect_refused("[1,2]", "bad_request");
	expect_refused("\"status\"", "bad_request");
	expect_refused("{\"cmd\":\"status\"}", "bad_request");
	expect_refused("{\"v\":\"1\",\"cmd\":\"status\"}", "bad_request");
	expect_refused("{\"v\":2,\"cmd\":\"status\"}", "unsupported_version");
	expect_refused("{\"v\":0,\"cmd\":\"status\"}", "unsupported_version");
	expect_refused("{\"v\":1}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":null}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":7}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"status\",\"merchant\":3}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"status\",\"stream\":[\"orders\"]}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"status\",\"file\":{}}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"sync\",\"full\":\"yes\"}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"sync\",\"wait\":1}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"runs\",\"n\":\"5\"}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"runs\",\"n\":1.5}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"runs\",\"n\":-1}", "bad_request");
	expect_refused("{\"v\":1,\"cmd\":\"runs\",\"n\":100001}", "bad_request");
	/* A key twice is ambiguous. */
	expect_refused("{\"v\":1,\"cmd\":\"status\",\"cmd\":\"sync\"}", "bad_request");
	/* Trailing bytes after the object. */
	expect_refused("{\"v\":1,\"cmd\":\"status\"} x", "bad_request");
}

static void test_unsupported_version_message(void **state)
{
	(void)state;
	struct ctl_request req;
	const char *code = NULL;
	char err[256];
	assert_int_equal(parse("{\"v\":2,\"cmd\":\"status\"}", &req, &code, err, sizeof(err)), -EINVAL);
	assert_string_equal(code, "unsupported_version");
	assert_non_null(strstr(err, "2"));
}

/* A reply is one JSON object on one line; parse it and check that. */
static json_t *one_line(char *line)
{
	assert_non_null(line);
	size_t n = strlen(line);
	assert_true(n > 1);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	json_error_t jerr;
	json_t *o = json_loadb(line, n - 1, 0, &jerr);
	if (!o)
		fail_msg("reply is not JSON: %s (%s)", line, jerr.text);
	assert_true(json_is_object(o));
	free(line);
	return o;
}

static void test_reply_ok(void **state)
{
	(void)state;
	json_t *o = one_line(ctl_reply_ok(json_pack("{s:s,s:i}", "merchant", "acme", "rows", 12)));
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_t *data = json_object_get(o, "data");
	assert_string_equal(json_string_value(json_object_get(data, "merchant")), "acme");
	assert_int_equal(json_integer_value(json_object_get(data, "rows")), 12);
	assert_null(json_object_get(o, "error"));
	json_decref(o);

	o = one_line(ctl_reply_ok(NULL));
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_true(json_is_null(json_object_get(o, "data")));
	json_decref(o);

	/* Text with newlines inside stays on one line (escaped). */
	o = one_line(ctl_reply_ok(json_string("two\nlines")));
	assert_string_equal(json_string_value(json_object_get(o, "data")), "two\nlines");
	json_decref(o);
}

static void test_reply_error(void **state)
{
	(void)state;
	json_t *o = one_line(ctl_reply_error("no_such_merchant", "merchant '%s' is not configured\n(see %d)",
					     "acme", 42));
	assert_true(json_is_false(json_object_get(o, "ok")));
	json_t *e = json_object_get(o, "error");
	assert_true(json_is_object(e));
	assert_string_equal(json_string_value(json_object_get(e, "code")), "no_such_merchant");
	assert_string_equal(json_string_value(json_object_get(e, "message")),
			    "merchant 'acme' is not configured\n(see 42)");
	assert_null(json_object_get(o, "data"));
	json_decref(o);
}

/*
 * A long message is cut to fit, but the reply must still come: a cut inside a
 * multi-byte character must not turn the error into no reply at all (the
 * daemon would then answer "out of memory").  Two prefixes of different parity
 * make sure one of them puts a cut inside a character.
 */
static void test_reply_error_long_non_ascii_message(void **state)
{
	(void)state;
	char big[3001];
	for (int i = 0; i < 1500; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2); /* U+00E9, two bytes */
	big[3000] = 0;
	const char *prefixes[] = { "", "x" };
	for (size_t i = 0; i < 2; i++) {
		char *line = ctl_reply_error("no_such_merchant", "%s%s", prefixes[i], big);
		if (!line)
			fail_msg("no reply line for a long message (prefix '%s')", prefixes[i]);
		json_t *o = one_line(line);
		json_t *e = json_object_get(o, "error");
		assert_string_equal(json_string_value(json_object_get(e, "code")), "no_such_merchant");
		const char *msg = json_string_value(json_object_get(e, "message"));
		assert_non_null(msg);
		size_t pl = strlen(prefixes[i]);
		assert_true(strlen(msg) > pl);
		assert_memory_equal(msg, prefixes[i], pl);
		assert_memory_equal(msg + pl, big, strlen(msg) - pl); /* a prefix of the message */
		json_decref(o);
	}
}

/* The server half, played by a thread on the other end of a socketpair. */
enum server_mode { REPLY_SPLIT, REPLY_NOT_JSON, CLOSE_AT_ONCE, CLOSE_MID_REPLY, NEVER_REPLY, TWO_LINES };

struct server {
	int fd;
	enum server_mode mode;
	char request[1024];   /* the line received, newline included */
	int release[2];       /* NEVER_REPLY waits for a byte here */
};

static void send_all(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void *serve(void *arg)
{
	struct server *sv = arg;
	size_t used = 0;
	/* Read the request up to its newline. */
	while (used < sizeof(sv->request) - 1) {
		ssize_t n = recv(sv->fd, sv->request + used, 1, 0);
		if (n <= 0)
			break;
		used += (size_t)n;
		if (sv->request[used - 1] == '\n')
			break;
	}
	sv->request[used] = 0;

	struct timespec pause = { 0, 20 * 1000 * 1000 };
	switch (sv->mode) {
	case REPLY_SPLIT: {
		/* One reply in pieces, cut inside a string and inside a number. */
		static const char *const parts[] = { "{\"ok\":tr", "ue,\"data\":{\"mer", "chant\":\"acme\",\"n\":1",
						     "23}}", "\n" };
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			send_all(sv->fd, parts[i]);
			nanosleep(&pause, NULL);
		}
		break;
	}
	case REPLY_NOT_JSON:
		send_all(sv->fd, "this is not json\n");
		break;
	case CLOSE_AT_ONCE:
		break;
	case CLOSE_MID_REPLY:
		send_all(sv->fd, "{\"ok\":true,\"da");
		nanosleep(&pause, NULL);
		break;
	case NEVER_REPLY: {
		char c;
		if (read(sv->release[0], &c, 1) < 0) {
		}
		break;
	}
	case TWO_LINES:
		send_all(sv->fd, "{\"ok\":true,\"data\":1}\n{\"ok\":false}\n");
		break;
	}
	close(sv->fd);
	return NULL;
}

struct call {
	int client;
	pthread_t thread;
	struct server sv;
};

static void call_start(struct call *c, enum server_mode mode)
{
	int sp[2];
	memset(c, 0, sizeof(*c));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	c->client = sp[0];
	c->sv.fd = sp[1];
	c->sv.mode = mode;
	c->sv.release[0] = c->sv.release[1] = -1;
	if (mode == NEVER_REPLY)
		assert_int_equal(pipe(c->sv.release), 0);
	assert_int_equal(pthread_create(&c->thread, NULL, serve, &c->sv), 0);
}

static void call_end(struct call *c)
{
	if (c->sv.release[1] >= 0) {
		assert_int_equal(write(c->sv.release[1], "x", 1), 1);
		close(c->sv.release[1]);
	}
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	if (c->sv.release[0] >= 0)
		close(c->sv.release[0]);
	close(c->client);
}

static json_t *status_request(void)
{
	return json_pack("{s:i,s:s,s:s}", "v", CTL_VERSION, "cmd", "status", "merchant", "acme");
}

static void test_call_reassembles_a_split_reply(void **state)
{
	(void)state;
	struct call c;
	json_t *reply = NULL;
	call_start(&c, REPLY_SPLIT);
	assert_int_equal(ctl_call(c.client, status_request(), &reply, -1), 0);
	call_end(&c);

	/* The server got exactly one newline-terminated request line, which parses back. */
	size_t n = strlen(c.sv.request);
	assert_true(n > 1);
	assert_int_equal(c.sv.request[n - 1], '\n');
	struct ctl_request req;
	const char *code;
	char err[256];
	assert_int_equal(ctl_request_parse(c.sv.request, n - 1, &req, &code, err, sizeof(err)), 0);
	assert_string_equal(req.cmd, "status");
	assert_string_equal(req.merchant, "acme");
	ctl_request_free(&req);

	assert_non_null(reply);
	assert_true(json_is_true(json_object_get(reply, "ok")));
	json_t *data = json_object_get(reply, "data");
	assert_string_equal(json_string_value(json_object_get(data, "merchant")), "acme");
	assert_int_equal(json_integer_value(json_object_get(data, "n")), 123);
	json_decref(reply);
}

static void test_call_takes_the_first_line_only(void **state)
{
	(void)state;
	struct call c;
	json_t *reply = NULL;
	call_start(&c, TWO_LINES);
	assert_int_equal(ctl_call(c.client, status_request(), &reply, -1), 0);
	call_end(&c);
	assert_true(json_is_true(json_object_get(reply, "ok")));
	assert_int_equal(json_integer_value(json_object_get(reply, "data")), 1);
	json_decref(reply);
}

static void test_call_reply_not_json(void **state)
{
	(void)state;
	struct call c;
	json_t *reply = (json_t *)&c; /* must be reset */
	call_start(&c, REPLY_NOT_JSON);
	assert_int_equal(ctl_call(c.client, status_request(), &reply, -1), -EPROTO);
	assert_null(reply);
	call_end(&c);
}

static void test_call_peer_closes(void **state)
{
	(void)state;
	struct call c;
	json_t *reply = NULL;

	call_start(&c, CLOSE_AT_ONCE);
	int r = ctl_call(c.client, status_request(), &reply, -1);
	assert_true(r < 0);
	assert_int_not_equal(r, -EPROTO);
	assert_null(reply);
	call_end(&c);

	/* Half a reply, then the end: an error, not a truncated object. */
	call_start(&c, CLOSE_MID_REPLY);
	r = ctl_call(c.client, status_request(), &reply, -1);
	assert_true(r < 0);
	assert_null(reply);
	call_end(&c);
}

static void test_call_times_out(void **state)
{
	(void)state;
	struct call c;
	json_t *reply = NULL;
	call_start(&c, NEVER_REPLY);
	assert_int_equal(ctl_call(c.client, status_request(), &reply, 50), -ETIMEDOUT);
	assert_null(reply);
	call_end(&c);
	/* The request had gone out whole before the wait. */
	assert_non_null(strstr(c.sv.request, "\"status\""));
}

/* A file name from a merchant's server that is not UTF-8 is shown mended, never dropped. */
static void test_json_text_mends(void **state)
{
	(void)state;
	json_t *ok = ctl_json_text("caf\xc3\xa9.csv"), *bad = ctl_json_text("caf\xe9.csv");
	assert_string_equal(json_string_value(ok), "caf\xc3\xa9.csv");
	assert_string_equal(json_string_value(bad), "caf?.csv");
	json_decref(ok);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_minimal_request),
		cmocka_unit_test(test_parse_every_field),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_unsupported_version_message),
		cmocka_unit_test(test_reply_ok),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_reply_error_long_non_ascii_message),
		cmocka_unit_test(test_call_reassembles_a_split_reply),
		cmocka_unit_test(test_call_takes_the_first_line_only),
		cmocka_unit_test(test_call_reply_not_json),
		cmocka_unit_test(test_call_peer_closes),
		cmocka_unit_test(test_call_times_out),
		cmocka_unit_test(test_json_text_mends),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
