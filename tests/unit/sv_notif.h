/* SPDX-License-Identifier: MIT */
/*
 * sv_notif.h - what the supervisor's unit tests share to play the
 * supervisor of a real child: its start with two pipes, a notification
 * buffer of the kernel's size and the child's listener, taken with
 * pidfd_getfd. Include after
 * <cmocka.h>.
 */
#ifndef PS_TEST_SV_NOTIF_H
#define PS_TEST_SV_NOTIF_H

#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* A zeroed buffer for one notification; its size in *size. */
static struct seccomp_notif *sv_notif_alloc(size_t *size)
{
	struct seccomp_notif_sizes sizes;
	struct seccomp_notif *req;

	assert_return_code(
		syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes),
		errno);
	*size = sizes.seccomp_notif > sizeof(*req) ? sizes.seccomp_notif :
						     sizeof(*req);
	req = calloc(1, *size);
	assert_non_null(req);
	return req;
}

/* Forks the child with a pipe up (child to test) and one down; the
 * test's side closes the child's ends. Returns fork's result. */
static pid_t sv_fork(int up[2], int down[2])
{
	pid_t pid;

	assert_return_code(pipe(up), errno);
	assert_return_code(pipe(down), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid > 0) {
		close(up[1]);
		close(down[0]);
	}
	return pid;
}

/* A copy of descriptor fd of process pid (its listener). */
static int sv_take_fd(pid_t pid, int fd)
{
	int pidfd, copy;

	assert_return_code(fd, -fd);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_return_code(pidfd, errno);
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	assert_return_code(copy, errno);
	close(pidfd);
	return copy;
}

#endif
