/* test_sftp.c - the SFTP client's failures that need no SSH server: refused, silent, misconfigured. */
#include "unit.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "sftp.h"
#include "tstamp.h"

/* A listening socket on 127.0.0.1 that never answers; *port gets its port. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void t_error_names(void **state)
{
	(void)state;
	assert_string_equal(sftp_error_name(SFTP_OK), "ok");
	assert_string_equal(sftp_error_name(SFTP_EHOSTKEY), "hostkey");
	assert_string_equal(sftp_error_name(SFTP_ESTOPPED), "stopped");
	assert_string_equal(sftp_error_name(-99), "unknown");
}

static void t_refused(void **state)
{
	(void)state;
	int port, fd = silent_listener(&port);
	close(fd); /* nobody listens there now */
	struct sftp *s = (struct sftp *)1;
	char err[512];
	struct sftp_opts o = { .host = "127.0.0.1", .port = port, .user = "u", .key_file = "/k",
			       .known_hosts = "/kh" };
	assert_int_equal(sftp_connect(&o, &s, err, sizeof(err)), SFTP_ECONNECT);
	assert_null(s);
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1 port %d", port);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "refused"));
}

static void t_silent_server_times_out(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), kh[512], err[512];
	int port, fd = silent_listener(&port);
	snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
	FILE *f = fopen(kh, "w");
	fprintf(f, "[127.0.0.1]:%d ssh-ed25519 "
		   "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", port);
	fclose(f);
	struct sftp *s;
	struct sftp_opts o = { .host = "127.0.0.1", .port = port, .user = "u", .key_file = "/k",
			       .known_hosts = kh, .io_timeout_ms = 300 };
	uint64_t t0 = tstamp_mono_usec();
	int r = sftp_connect(&o, &s, err, sizeof(err));
	uint64_t took = tstamp_mono_usec() - t0;
	assert_int_equal(r, SFTP_ECONNECT);
	assert_non_null(strstr(err, "handshake"));
	assert_true(took < 5 * 1000000u); /* the read timeout, not forever */
	close(fd);
	unit_rmtree(dir);
}

static void t_missing_known_hosts(void **state)
{
	(void)state;
	char err[512];
	int port, fd = silent_listener(&port);
	struct sftp *s;
	struct sftp_opts o = { .host = "127.0.0.1", .port = port, .user = "u", .key_file = "/k",
			       .known_hosts = "/nonexistent/known_hosts" };
	assert_int_equal(sftp_connect(&o, &s, err, sizeof(err)), SFTP_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/known_hosts"));
	o.known_hosts = NULL;
	assert_int_equal(sftp_connect(&o, &s, err, sizeof(err)), SFTP_ECONFIG);
	assert_non_null(strstr(err, "known_hosts is required"));
	close(fd);
}

static void t_no_host(void **state)
{
	(void)state;
	char err[512];
	struct sftp *s;
	struct sftp_opts o = { .host = "" };
	assert_int_equal(sftp_connect(&o, &s, err, sizeof(err)), SFTP_ECONFIG);
	sftp_close(NULL);
	sftp_entries_free(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_error_names),
		cmocka_unit_test(t_refused),
		cmocka_unit_test(t_silent_server_times_out),
		cmocka_unit_test(t_missing_known_hosts),
		cmocka_unit_test(t_no_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
