/* SPDX-License-Identifier: MIT */
/*
 * test_netstat.c - socket tables and socket owners: parsing the kernel's
 * lines, finding real sockets of this process and of a child (listening,
 * UDP, TIME_WAIT), naming who holds a port, and the descriptor budget.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "netstat.h"
#include "policy.h"

/* Lines as Linux 6.1 writes them. */
static const char tcp_listen[] =
	"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
	"00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0";
static const char tcp_tw[] =
	"   7: 0100007F:1F90 0100007F:A1B2 06 00000000:00000000 03:00001770 "
	"00000000     0        0 0 3 0000000000000000";
static const char tcp6_listen[] =
	"   1: 00000000000000000000000001000000:1F91 "
	"00000000000000000000000000000000:0000 0A 00000000:00000000 "
	"00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
static const char udp_line[] =
	" 1234: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 "
	"00000000   104        0 99 2 0000000000000000 0";

static void test_netstat_parse_tcp(void **state)
{
	struct ps_sock s;
	char buf[64];

	(void)state;
	assert_int_equal(ps_netstat_parse(tcp_listen, PS_TCP, false, &s), 0);
	assert_int_equal(s.proto, PS_TCP);
	assert_int_equal(s.lport, 8080);
	assert_int_equal(s.rport, 0);
	assert_int_equal(s.state, PS_SOCK_LISTEN);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.inode, 4242);
	assert_string_equal(ps_sock_state_name(&s), "LISTEN");
	ps_sock_endpoint(&s, false, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:8080");
	ps_sock_endpoint(&s, true, buf, sizeof(buf));
	assert_string_equal(buf, "0.0.0.0:*");

	assert_int_equal(ps_netstat_parse(tcp_tw, PS_TCP, false, &s), 0);
	assert_int_equal(s.state, PS_SOCK_TIME_WAIT);
	assert_int_equal(s.inode, 0);
	assert_int_equal(s.rport, 0xa1b2);
	assert_string_equal(ps_sock_state_name(&s), "TIME_WAIT");
}

static void test_netstat_parse_tcp6_udp(void **state)
{
	struct ps_sock s;
	char buf[64];

	(void)state;
	assert_int_equal(ps_netstat_parse(tcp6_listen, PS_TCP, true, &s), 0);
	assert_true(s.v6);
	assert_int_equal(s.lport, 8081);
	assert_int_equal(s.inode, 77);
	ps_sock_endpoint(&s, false, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:8081");
	ps_sock_addr(&s, true, buf, sizeof(buf));
	assert_string_equal(buf, "::");

	assert_int_equal(ps_netstat_parse(udp_line, PS_UDP, false, &s), 0);
	assert_int_equal(s.proto, PS_UDP);
	assert_int_equal(s.lport, 5353);
	assert_int_equal(s.uid, 104);
	assert_string_equal(ps_sock_state_name(&s), "UNCONN");
}

static void test_netstat_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"  sl  local_address rem_address   st tx_queue rx_queue",
		"   0: 0100007F:1F90",
		"   0: 0100007X:1F90 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000  1000        0 4242",
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000  1000        0",
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000  uid        0 4242",
	};
	struct ps_sock s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ps_netstat_parse(bad[i], PS_TCP, false, &s),
				 -EINVAL);
	/* A v4 line read as a v6 one is refused too. */
	assert_int_equal(ps_netstat_parse(tcp_listen, PS_TCP, true, &s),
			 -EINVAL);
}

/* A socket of type type bound to 127.0.0.1, port chosen by the kernel. */
static int bound(int type, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	assert_return_code(fd, errno);
	assert_return_code(bind(fd, (struct sockaddr *)&a, sizeof(a)), errno);
	assert_return_code(getsockname(fd, (struct sockaddr *)&a, &len), errno);
	*port = ntohs(a.sin_port);
	return fd;
}

static uint64_t inode_of(int fd)
{
	struct stat st;

	assert_return_code(fstat(fd, &st), errno);
	return (uint64_t)st.st_ino;
}

struct find_sock {
	uint16_t port;
	int n;
	struct ps_sock s;
};

static int find_sock_fn(void *arg, const struct ps_sock *s)
{
	struct find_sock *f = arg;

	if (s->lport != f->port)
		return 0;
	f->n++;
	f->s = *s;
	return 0;
}

struct find_owner {
	uint64_t inode;
	pid_t pid;
};

static int find_owner_fn(void *arg, pid_t pid, uint64_t inode)
{
	struct find_owner *f = arg;

	if (inode != f->inode)
		return 0;
	f->pid = pid;
	return 7;
}

static void test_netstat_scan_listener(void **state)
{
	struct find_sock f = { 0 };
	struct find_owner o = { 0 };
	struct ps_netstat_stats st;
	int fd;

	(void)state;
	fd = bound(SOCK_STREAM, &f.port);
	assert_return_code(listen(fd, 1), errno);
	errno = 1234;
	assert_int_equal(ps_netstat_scan(1u << PS_TCP, find_sock_fn, &f), 0);
	assert_int_equal(errno, 1234);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.s.state, PS_SOCK_LISTEN);
	assert_int_equal(f.s.uid, getuid());
	assert_int_equal(f.s.inode, inode_of(fd));
	assert_int_equal(f.s.laddr[0], 127);

	/* Not in the UDP tables. */
	f.n = 0;
	assert_int_equal(ps_netstat_scan(1u << PS_UDP, find_sock_fn, &f), 0);
	assert_int_equal(f.n, 0);

	/* The owner walk finds us, and stops with fn's value. */
	o.inode = inode_of(fd);
	assert_int_equal(ps_netstat_owners(find_owner_fn, &o, 0, &st), 7);
	assert_int_equal(errno, 1234);
	assert_int_equal(o.pid, getpid());
	assert_true(st.procs >= 1);
	assert_false(st.truncated);
	close(fd);
}

static void test_netstat_holder_child(void **state)
{
	struct ps_netstat_holder h;
	uint16_t port;
	char c;
	int p[2], fd;
	pid_t pid;

	(void)state;
	assert_return_code(pipe(p), errno);
	fd = bound(SOCK_STREAM, &port);
	assert_return_code(listen(fd, 1), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		/* The child keeps the listener until the pipe closes. */
		close(p[1]);
		while (read(p[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	close(fd);

	assert_int_equal(ps_netstat_holder(PS_TCP, port, &h), 0);
	assert_true(h.found);
	assert_int_equal(h.pid, pid);
	assert_int_equal(h.sock.state, PS_SOCK_LISTEN);
	assert_int_equal(h.sock.lport, port);

	close(p[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	/* The port is free again (unless a stranger took the number). */
	assert_int_equal(ps_netstat_holder(PS_TCP, port, &h), 0);
	assert_true(!h.found || h.pid != pid);
}

static void test_netstat_holder_udp(void **state)
{
	struct ps_netstat_holder h;
	uint16_t port;
	int fd;

	(void)state;
	fd = bound(SOCK_DGRAM, &port);
	assert_int_equal(ps_netstat_holder(PS_UDP, port, &h), 0);
	assert_true(h.found);
	assert_int_equal(h.pid, getpid());
	assert_string_equal(ps_sock_state_name(&h.sock), "UNCONN");
	assert_int_equal(h.sock.inode, inode_of(fd));
	/* A UDP socket does not hold the TCP port (another process on the
	 * host may have a TCP socket at the same number, never ours). */
	assert_int_equal(ps_netstat_holder(PS_TCP, port, &h), 0);
	if (h.found) {
		assert_int_equal(h.sock.proto, PS_TCP);
		assert_int_not_equal(h.sock.inode, inode_of(fd));
	}
	close(fd);
}

/*
 * The side that closes first keeps TIME_WAIT: the server closes the
 * accepted connection first, so TIME_WAIT sits on the listening port,
 * with no process.
 */
static void test_netstat_holder_time_wait(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct ps_netstat_holder h;
	uint16_t port;
	char c;
	int lfd, cfd, afd;

	(void)state;
	lfd = bound(SOCK_STREAM, &port);
	assert_return_code(listen(lfd, 1), errno);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_return_code(cfd, errno);
	assert_return_code(connect(cfd, (struct sockaddr *)&a, sizeof(a)),
			   errno);
	afd = accept(lfd, NULL, NULL);
	assert_return_code(afd, errno);
	close(lfd);
	close(afd);
	/* The client sees the end, then closes its side. */
	assert_int_equal(read(cfd, &c, 1), 0);
	close(cfd);

	assert_int_equal(ps_netstat_holder(PS_TCP, port, &h), 0);
	assert_true(h.found);
	assert_int_equal(h.sock.state, PS_SOCK_TIME_WAIT);
	assert_int_equal(h.sock.inode, 0);
	assert_int_equal(h.pid, 0);
}

static int count_fn(void *arg, pid_t pid, uint64_t inode)
{
	(void)pid;
	(void)inode;
	(*(int *)arg)++;
	return 0;
}

static void test_netstat_owners_budget(void **state)
{
	struct ps_netstat_stats st;
	uint16_t port;
	int n = 0, fd;

	(void)state;
	fd = bound(SOCK_DGRAM, &port);
	assert_int_equal(ps_netstat_owners(count_fn, &n, 1, &st), 0);
	assert_true(st.truncated);
	assert_true(n <= 1);
	n = 0;
	assert_int_equal(ps_netstat_owners(count_fn, &n, 0, NULL), 0);
	assert_true(n >= 1);
	close(fd);
}

/* Reads the whole of a small file into buf (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_return_code(fd, errno);
	n = read(fd, buf, len - 1);
	assert_return_code(n, errno);
	buf[n] = '\0';
	close(fd);
}

/*
 * The clash line: one line at the info level naming the holder, nothing
 * below it, errno untouched either way.
 */
static void test_netstat_clash_line(void **state)
{
	char dir[] = "/tmp/test_netstat.XXXXXX";
	char log[64], desc[32], want[160], buf[2048];
	uint16_t port;
	char *nl;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/log", dir);
	fd = bound(SOCK_STREAM, &port);
	assert_return_code(listen(fd, 1), errno);
	snprintf(desc, sizeof(desc), "tcp 127.0.0.1:%u", port);
	snprintf(want, sizeof(want),
		 "]: bind %s failed: Address already in "
		 "use; held by pid %d (",
		 desc, (int)getpid());

	/* At the default level: nothing is written. */
	ps_log_setup(PS_LOG_ERROR, log);
	errno = EADDRINUSE;
	ps_policy_clash(NULL, PS_TCP, port, desc);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(access(log, F_OK), -1);

	/* At info: one line, naming this process. */
	ps_log_setup(PS_LOG_INFO, log);
	errno = EADDRINUSE;
	ps_policy_clash(NULL, PS_TCP, port, desc);
	assert_int_equal(errno, EADDRINUSE);
	ps_log_setup(PS_LOG_ERROR, NULL);
	slurp(log, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "portshim[", 9), 0);
	assert_non_null(strstr(buf, want));
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	assert_ptr_equal(nl, buf + strlen(buf) - 1);
	assert_int_equal(nl[-1], ')');
	close(fd);
	assert_return_code(unlink(log), errno);
	assert_return_code(rmdir(dir), errno);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netstat_parse_tcp),
		cmocka_unit_test(test_netstat_parse_tcp6_udp),
		cmocka_unit_test(test_netstat_parse_bad),
		cmocka_unit_test(test_netstat_scan_listener),
		cmocka_unit_test(test_netstat_holder_child),
		cmocka_unit_test(test_netstat_holder_udp),
		cmocka_unit_test(test_netstat_holder_time_wait),
		cmocka_unit_test(test_netstat_owners_budget),
		cmocka_unit_test(test_netstat_clash_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
