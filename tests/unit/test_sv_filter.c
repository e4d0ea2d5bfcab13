/* SPDX-License-Identifier: MIT */
/*
 * test_sv_filter.c - the supervisor's seccomp filter, installed for real
 * in a child whose listener the test takes with pidfd_getfd: which calls
 * reach the supervisor (plain bind, getsockname, sendto with an IP
 * destination, execve), which do not (the same calls with the cookie,
 * sendto on a connected socket or to a Unix socket, everything else),
 * and io_uring_setup
 * failing with ENOSYS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter.h"
#include "supcall.h"
#include "sv_notif.h"

#define COOKIE 0x5eedc0ffee15600dull
#define MAX_SEEN 32

/* What the child did, reported to the parent at the end. */
struct child_report {
	int bind_plain, bind_cookie;
	int getsockname_plain, getsockname_cookie;
	long sendto_connected, sendto_dest, sendto_unix;
	int uring_errno;
	int execve_errno;
};

static void child_main(const struct ps_sv_filter *f, int up, int down)
{
	struct child_report r;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	char params[120], ack;
	char *const argv[] = { "/nonexistent/portshim-test", NULL };
	int lfd, s1, s2, u, rcv;

	memset(&r, 0, sizeof(r));
	lfd = ps_sv_filter_install(f);
	if (write(up, &lfd, sizeof(lfd)) != sizeof(lfd) || lfd < 0 ||
	    read(down, &ack, 1) != 1)
		_exit(2);
	close(lfd);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s1 = socket(AF_INET, SOCK_STREAM, 0);
	s2 = socket(AF_INET, SOCK_STREAM, 0);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	rcv = socket(AF_INET, SOCK_DGRAM, 0);
	r.bind_plain = bind(s1, (struct sockaddr *)&a, sizeof(a));
	r.bind_cookie =
		ps_supcall_bind(COOKIE, s2, (struct sockaddr *)&a, sizeof(a));
	r.getsockname_plain = getsockname(s1, (struct sockaddr *)&a, &len);
	len = sizeof(a);
	r.getsockname_cookie =
		ps_supcall_getsockname(COOKIE, s1, (struct sockaddr *)&a, &len);
	/* A UDP peer that exists: no ICMP error to fail the second send. */
	len = sizeof(a);
	a.sin_port = 0;
	ps_supcall_bind(COOKIE, rcv, (struct sockaddr *)&a, sizeof(a));
	getsockname(rcv, (struct sockaddr *)&a, &len);
	ps_supcall_connect(COOKIE, u, (struct sockaddr *)&a, sizeof(a));
	r.sendto_connected = sendto(u, "x", 1, 0, NULL, 0);
	r.sendto_dest = sendto(u, "y", 1, 0, (struct sockaddr *)&a, sizeof(a));
	/* A datagram to a Unix socket: an address shorter than any
	 * sockaddr_in, let through in the kernel. */
	{
		struct sockaddr_un un;
		socklen_t ulen =
			(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 6);
		int ur = socket(AF_UNIX, SOCK_DGRAM, 0);
		int us = socket(AF_UNIX, SOCK_DGRAM, 0);

		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "ps%03d",
			 (int)(getpid() % 1000));
		ps_supcall_bind(COOKIE, ur, (struct sockaddr *)&un, ulen);
		r.sendto_unix =
			sendto(us, "z", 1, 0, (struct sockaddr *)&un, ulen);
	}
	memset(params, 0, sizeof(params));
	if (syscall(SYS_io_uring_setup, 1, params) < 0)
		r.uring_errno = errno;
	execve(argv[0], argv, argv + 1);
	r.execve_errno = errno;
	if (write(up, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	_exit(0);
}

static void test_sv_filter_routes_calls(void **state)
{
	struct ps_sv_filter f;
	struct child_report r;
	char why[512];
	int seen[MAX_SEEN], nseen = 0;
	int up[2], down[2], lfd, msg, st;
	struct seccomp_notif *req;
	struct seccomp_notif_resp resp;
	size_t req_size;
	pid_t pid;

	(void)state;
	if (ps_sv_kernel_check(why, sizeof(why)) != 0)
		skip();
	assert_int_equal(ps_sv_filter_build(&f, COOKIE), 0);
	req = sv_notif_alloc(&req_size);
	pid = sv_fork(up, down);
	if (pid == 0)
		child_main(&f, up[1], down[0]);

	assert_int_equal(read(up[0], &msg, sizeof(msg)), sizeof(msg));
	lfd = sv_take_fd(pid, msg);
	assert_int_equal(write(down[1], "", 1), 1);

	/* Answer every notification with CONTINUE until the child is done
	 * (no process uses the filter any more: POLLHUP). */
	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 10000), 1);
		if (!(p.revents & POLLIN))
			break;
		memset(req, 0, req_size);
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0)
			continue;
		if (nseen < MAX_SEEN)
			seen[nseen++] = req->data.nr;
		memset(&resp, 0, sizeof(resp));
		resp.id = req->id;
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	assert_int_equal(read(up[0], &r, sizeof(r)), sizeof(r));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Exactly these reached the supervisor, in this order. */
	assert_int_equal(nseen, 5);
	assert_int_equal(seen[0], SYS_bind);
	assert_int_equal(seen[1], SYS_getsockname);
	assert_int_equal(seen[2], SYS_getsockname);
	assert_int_equal(seen[3], SYS_sendto);
	assert_int_equal(seen[4], SYS_execve);
	/* And every call did what it does without a filter. */
	assert_int_equal(r.bind_plain, 0);
	assert_int_equal(r.bind_cookie, 0);
	assert_int_equal(r.getsockname_plain, 0);
	assert_int_equal(r.getsockname_cookie, 0);
	assert_int_equal(r.sendto_connected, 1);
	assert_int_equal(r.sendto_dest, 1);
	assert_int_equal(r.sendto_unix, 1);
	assert_int_equal(r.uring_errno, ENOSYS);
	assert_int_equal(r.execve_errno, ENOENT);
	close(lfd);
	close(up[0]);
	close(down[1]);
	free(req);
}

static void test_sv_filter_build(void **state)
{
	struct ps_sv_filter f;

	(void)state;
	if (!ps_sv_filter_supported()) {
		assert_int_equal(ps_sv_filter_build(&f, COOKIE), -ENOSYS);
		return;
	}
	assert_int_equal(ps_sv_filter_build(&f, COOKIE), 0);
	assert_true(f.len > 10 && f.len <= PS_SV_FILTER_MAX);
	/* The first instruction loads the architecture; the last three
	 * are the returns. */
	assert_int_equal(f.insns[0].k, offsetof(struct seccomp_data, arch));
	assert_int_equal(f.insns[f.len - 1].k, SECCOMP_RET_ERRNO | ENOSYS);
	assert_int_equal(f.insns[f.len - 2].k, SECCOMP_RET_ALLOW);
	assert_int_equal(f.insns[f.len - 3].k, SECCOMP_RET_USER_NOTIF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sv_filter_build),
		cmocka_unit_test(test_sv_filter_routes_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
