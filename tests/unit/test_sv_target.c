/* SPDX-License-Identifier: MIT */
/*
 * test_sv_target.c - what the supervisor learns of a thread stopped in
 * a real notification (src/supervisor/target.c): whose configuration
 * applies (a peer's own environment; the supervisor's own for a process
 * that switched user), the call's arguments read from its memory, its
 * socket taken with pidfd_getfd, and whether the notification is still
 * pending. The child installs the real filter (filter.c) and binds; the
 * test answers as the supervisor would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter.h"
#include "sv_notif.h"
#include "target.h"

#define COOKIE 0x7a29e7c0ffee1234ull
#define NOBODY 65534

/* The child: becomes uid (if not 0), installs the filter, reports its
 * listener and socket, and binds once the parent has taken them. */
static void child_main(const struct ps_sv_filter *f, int up, int down,
		       uid_t uid)
{
	struct sockaddr_in a;
	int fds[2], err;
	char ack;

	if (uid != 0 &&
	    (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	     setresuid(uid, uid, uid) < 0))
		_exit(4);
	fds[1] = socket(AF_INET, SOCK_STREAM, 0);
	fds[0] = ps_sv_filter_install(f);
	if (write(up, fds, sizeof(fds)) != sizeof(fds) || fds[0] < 0 ||
	    read(down, &ack, 1) != 1)
		_exit(2);
	/* The parent has its copy: with ours closed, a parent gone ends
	 * the wait below (the call fails) instead of blocking it. */
	close(fds[0]);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(8080);
	err = bind(fds[1], (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
	if (write(up, &err, sizeof(err)) != sizeof(err))
		_exit(3);
	_exit(0);
}

/*
 * The supervisor's tables, one per test. Like the supervisor's, they
 * live as long as the process: their environments and policies are never
 * freed (target.h), and LeakSanitizer sees them reachable from here.
 */
static struct ps_sv_targets tables[2];

/* Runs a child as uid and checks what the supervisor sees of its bind. */
static void stopped_bind(uid_t uid)
{
	struct ps_sv_targets *tp = &tables[uid != 0];
	struct ps_sv_task *task = NULL;
	struct ps_sv_filter f;
	struct seccomp_notif *req;
	struct seccomp_notif_resp resp;
	size_t req_size;
	struct sockaddr_in got;
	struct pollfd p;
	char why[512], regdir[] = "/tmp/ps-sv-target-XXXXXX", reg[64];
	unsigned char byte;
	int up[2], down[2], msg[2], lfd, sfd, type, err, st;
	socklen_t len = sizeof(type);
	pid_t pid;

	if (ps_sv_kernel_check(why, sizeof(why)) != 0)
		skip();
	if (uid != 0 && geteuid() != 0)
		skip(); /* switching user needs root */
	assert_non_null(mkdtemp(regdir));
	snprintf(reg, sizeof(reg), "%s/registry", regdir);
	/* The supervisor's own configuration: this process's variables. */
	setenv("PORTSHIM_PORTS", "8080", 1);
	setenv("PORTSHIM_GROUP", "sv-unit", 1);
	setenv("PORTSHIM_REGISTRY", reg, 1);
	assert_int_equal(ps_sv_targets_init(tp, COOKIE), 0);
	assert_int_equal(ps_sv_filter_build(&f, COOKIE), 0);
	req = sv_notif_alloc(&req_size);
	pid = sv_fork(up, down);
	if (pid == 0)
		child_main(&f, up[1], down[0], uid);
	assert_int_equal(read(up[0], msg, sizeof(msg)), sizeof(msg));
	lfd = sv_take_fd(pid, msg[0]);
	assert_int_equal(write(down[1], "", 1), 1);

	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 60000), 1);
	assert_int_equal(ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req), 0);
	assert_int_equal(req->data.nr, SYS_bind);
	assert_int_equal(req->pid, pid);

	assert_int_equal(ps_sv_task_get(tp, req->pid, lfd, req->id, &task), 0);
	assert_int_equal(task->tgid, pid);
	if (uid == 0) {
		/* A peer: its own environment (the one it was started with,
		 * without this test's variables) decides. */
		assert_true(task->peer);
		assert_string_not_equal(task->env->cfg.group, "sv-unit");
	} else {
		/* Another user: the supervisor's own configuration, whatever
		 * its environment and memory say. */
		assert_false(task->peer);
		assert_true(task->env->active);
		assert_string_equal(task->env->cfg.group, "sv-unit");
	}
	/* The call's address, read from its memory. */
	assert_int_equal(
		ps_sv_mem_read(req->pid, req->data.args[1], &got, sizeof(got)),
		0);
	assert_int_equal(got.sin_family, AF_INET);
	assert_int_equal(ntohs(got.sin_port), 8080);
	assert_int_equal(ps_sv_mem_read(req->pid, 0, &byte, 1), -EFAULT);
	/* Its socket, the same open file. */
	sfd = ps_sv_task_fd(task, (int)req->data.args[0]);
	assert_return_code(sfd, -sfd);
	assert_int_equal(getsockopt(sfd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	assert_int_equal(type, SOCK_STREAM);
	close(sfd);

	/* Pending until answered; the answer is the call's result. */
	assert_true(ps_sv_notif_valid(lfd, req->id));
	memset(&resp, 0, sizeof(resp));
	resp.id = req->id;
	resp.error = -EADDRNOTAVAIL;
	assert_int_equal(ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp), 0);
	assert_false(ps_sv_notif_valid(lfd, req->id));
	ps_sv_task_put(task);
	assert_int_equal(read(up[0], &err, sizeof(err)), sizeof(err));
	assert_int_equal(err, EADDRNOTAVAIL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	ps_sv_targets_clear(tp);
	ps_sv_targets_free(tp);
	close(lfd);
	close(up[0]);
	close(down[1]);
	free(req);
	unlink(reg);
	rmdir(regdir);
	unsetenv("PORTSHIM_PORTS");
	unsetenv("PORTSHIM_GROUP");
	unsetenv("PORTSHIM_REGISTRY");
}

static void test_sv_target_peer(void **state)
{
	(void)state;
	stopped_bind(0);
}

static void test_sv_target_other_user(void **state)
{
	(void)state;
	stopped_bind(NOBODY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sv_target_peer),
		cmocka_unit_test(test_sv_target_other_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
