/* SPDX-License-Identifier: MIT */
/*
 * test_supcall.c - the supervisor's cookie: its text form, and the
 * cookie-carrying socket calls, which must behave exactly like the plain
 * ones on real sockets when no filter is in force.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "supcall.h"

#define COOKIE 0x0123456789abcdefull

static void test_supcall_parse_format(void **state)
{
	char text[PS_SUPCALL_COOKIE_LEN + 1];
	uint64_t c = 0;

	(void)state;
	ps_supcall_format(COOKIE, text);
	assert_string_equal(text, "0123456789abcdef");
	assert_true(ps_supcall_parse(text, &c));
	assert_true(c == COOKIE);
	assert_true(ps_supcall_parse("FFFFFFFFFFFFFFFF", &c));
	assert_true(c == UINT64_MAX);
	ps_supcall_format(1, text);
	assert_string_equal(text, "0000000000000001");
}

static void test_supcall_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"0123456789abcde",
		"0123456789abcdef0",
		"0123456789abcdeg",
		" 123456789abcdef",
		"0000000000000000",
		"-123456789abcdef",
		"0x23456789abcdef",
	};
	uint64_t c = 7;

	(void)state;
	assert_false(ps_supcall_parse(NULL, &c));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(ps_supcall_parse(bad[i], &c));
		assert_true(c == 7);
	}
}

/* A TCP listener on 127.0.0.1 and a port the kernel chose. */
static int listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rc;

	assert_return_code(fd, errno);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = ps_supcall_bind(COOKIE, fd, (struct sockaddr *)addr,
			     sizeof(*addr));
	assert_return_code(rc, errno);
	assert_return_code(listen(fd, 8), errno);
	rc = ps_supcall_getsockname(COOKIE, fd, (struct sockaddr *)addr, &len);
	assert_return_code(rc, errno);
	assert_int_equal(len, sizeof(*addr));
	assert_int_not_equal(ntohs(addr->sin_port), 0);
	return fd;
}

static void test_supcall_tcp(void **state)
{
	struct sockaddr_in addr, peer;
	socklen_t len = sizeof(peer);
	int l, c, a, rc;

	(void)state;
	l = listener(&addr);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_return_code(c, errno);
	rc = ps_supcall_connect(COOKIE, c, (struct sockaddr *)&addr,
				sizeof(addr));
	assert_return_code(rc, errno);
	rc = ps_supcall_getpeername(COOKIE, c, (struct sockaddr *)&peer, &len);
	assert_return_code(rc, errno);
	assert_int_equal(peer.sin_port, addr.sin_port);
	a = accept(l, NULL, NULL);
	assert_return_code(a, errno);
	/* Errors come back as -1 and errno, as from libc. */
	rc = ps_supcall_bind(COOKIE, c, (struct sockaddr *)&addr, sizeof(addr));
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EINVAL);
	rc = ps_supcall_connect(COOKIE, -1, (struct sockaddr *)&addr,
				sizeof(addr));
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EBADF);
	close(a);
	close(c);
	close(l);
}

static void test_supcall_udp_sends(void **state)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	struct iovec iov = { (void *)"two", 3 };
	struct msghdr m;
	struct mmsghdr mm;
	char buf[16];
	int s, c;
	ssize_t n;

	(void)state;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	c = socket(AF_INET, SOCK_DGRAM, 0);
	assert_return_code(s, errno);
	assert_return_code(c, errno);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_return_code(ps_supcall_bind(COOKIE, s, (struct sockaddr *)&addr,
					   sizeof(addr)),
			   errno);
	assert_return_code(getsockname(s, (struct sockaddr *)&addr, &len),
			   errno);

	n = ps_supcall_sendto(COOKIE, c, "one", 3, 0, (struct sockaddr *)&addr,
			      sizeof(addr));
	assert_int_equal(n, 3);
	memset(&m, 0, sizeof(m));
	m.msg_name = &addr;
	m.msg_namelen = sizeof(addr);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	assert_int_equal(ps_supcall_sendmsg(COOKIE, c, &m, 0), 3);
	memset(&mm, 0, sizeof(mm));
	mm.msg_hdr = m;
	iov.iov_base = (void *)"three";
	iov.iov_len = 5;
	assert_int_equal(ps_supcall_sendmmsg(COOKIE, c, &mm, 1, 0), 1);
	assert_int_equal(mm.msg_len, 5);
	/* Without a destination on an unconnected socket: as sendto. */
	n = ps_supcall_sendto(COOKIE, c, "x", 1, 0, NULL, 0);
	assert_int_equal(n, -1);
	assert_int_equal(errno, EDESTADDRREQ);

	n = recv(s, buf, sizeof(buf), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "one", 3);
	n = recv(s, buf, sizeof(buf), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "two", 3);
	n = recv(s, buf, sizeof(buf), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "three", 5);
	close(c);
	close(s);
}

static void test_supcall_not_supervised(void **state)
{
	(void)state;
	unsetenv(PS_SUPCALL_ENV);
	assert_false(ps_supcall_supervised());
	/* A cookie without a filter in force is not supervision (a test
	 * run inside a container may have a filter of its own). */
	setenv(PS_SUPCALL_ENV, "0123456789abcdef", 1);
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0)
		assert_false(ps_supcall_supervised());
	unsetenv(PS_SUPCALL_ENV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_supcall_parse_format),
		cmocka_unit_test(test_supcall_parse_rejects),
		cmocka_unit_test(test_supcall_tcp),
		cmocka_unit_test(test_supcall_udp_sends),
		cmocka_unit_test(test_supcall_not_supervised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
