/* SPDX-License-Identifier: MIT */
/*
 * test_proc.c - process identity: pid + start time, liveness, zombies,
 * command lines, and the "PID:START" text form.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static int g_argc;
static char **g_argv;

/*
 * An independent reading of field 22 of /proc/PID/stat, with stdio, for
 * comparison with the library's own parser.
 */
static uint64_t stat_start(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long start = 0;
	size_t n;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "re");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	assert_non_null(p);
	p += 2;
	/* p is at field 3; skip to field 22. */
	for (i = 3; i < 22; i++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(sscanf(p, "%llu", &start), 1);
	return start;
}

/* A child that waits until its end of the pipe is closed, then exits. */
static pid_t spawn_waiting_child(int *wfd, const char *comm)
{
	int p[2];
	pid_t pid;
	char c;

	assert_return_code(pipe2(p, O_CLOEXEC), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		close(p[1]);
		if (comm != NULL)
			prctl(PR_SET_NAME, comm, 0, 0, 0);
		while (read(p[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

/* Waits until the process's comm reads want (the child set it). */
static void wait_comm(pid_t pid, const char *want)
{
	char path[64], buf[64];
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (i = 0; i < 5000; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_return_code(fd, errno);
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		assert_return_code(n, errno);
		buf[n] = '\0';
		if (n > 0 && buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		if (strcmp(buf, want) == 0)
			return;
		usleep(1000);
	}
	fail_msg("comm of %d never became '%s'", (int)pid, want);
}

static void test_proc_self(void **state)
{
	struct ps_ident a, b;

	assert_int_equal(ps_proc_self(&a), 0);
	assert_int_equal(a.pid, (uint32_t)getpid());
	assert_true(a.start > 0);
	assert_int_equal(a.start, stat_start(getpid()));

	/* Cached and uncached agree. */
	assert_int_equal(ps_proc_self(&b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(ps_proc_ident(getpid(), &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(ps_proc_alive(&a), 1);
}

/*
 * Forks a child (with glibc's fork(), or with the raw system call, which
 * runs none of glibc's fork handlers) that reports ps_proc_self(); checks
 * that it got its own identity rather than the parent's cached one, and
 * that the parent's cache is untouched.
 */
static void check_child_identity(bool raw)
{
	struct ps_ident parent, child;
	int p[2], status;
	pid_t pid;

	assert_int_equal(ps_proc_self(&parent), 0);
	assert_return_code(pipe2(p, O_CLOEXEC), errno);
	pid = raw ? (pid_t)syscall(SYS_fork) : fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_ident id;
		int rc = ps_proc_self(&id);

		if (rc != 0 || write(p[1], &id, sizeof(id)) != sizeof(id))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &child, sizeof(child)), sizeof(child));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(child.pid, (uint32_t)pid);
	assert_int_not_equal(child.pid, parent.pid);
	assert_true(child.start >= parent.start);

	/* The parent's cache is untouched. */
	assert_int_equal(ps_proc_self(&child), 0);
	assert_memory_equal(&parent, &child, sizeof(parent));
}

static void test_proc_self_after_fork(void **state)
{
	(void)state;
	check_child_identity(false);
}

static void test_proc_self_after_raw_fork(void **state)
{
	(void)state;
	check_child_identity(true);
}

static void test_proc_child_alive_then_dead(void **state)
{
	struct ps_ident id;
	int wfd, status;
	pid_t pid;

	pid = spawn_waiting_child(&wfd, NULL);
	assert_int_equal(ps_proc_ident(pid, &id), 0);
	assert_int_equal(id.pid, (uint32_t)pid);
	assert_int_equal(id.start, stat_start(pid));
	assert_int_equal(ps_proc_alive(&id), 1);

	assert_return_code(kill(pid, SIGKILL), errno);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(wfd);
	assert_int_equal(ps_proc_ident(pid, &id), -ESRCH);
	assert_int_equal(ps_proc_alive(&id), 0);
}

static void test_proc_zombie_is_dead(void **state)
{
	struct ps_ident id, z;
	char cmd[64];
	siginfo_t si;
	int wfd;
	pid_t pid;

	pid = spawn_waiting_child(&wfd, "pszombie");
	wait_comm(pid, "pszombie");
	assert_int_equal(ps_proc_ident(pid, &id), 0);
	assert_int_equal(ps_proc_alive(&id), 1);

	assert_return_code(kill(pid, SIGKILL), errno);
	/* Wait for it to die but leave it unreaped: a zombie. */
	memset(&si, 0, sizeof(si));
	assert_return_code(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT),
			   errno);
	assert_int_equal(si.si_pid, pid);

	assert_int_equal(ps_proc_ident(pid, &z), -ESRCH);
	assert_int_equal(ps_proc_alive(&id), 0);
	/* A zombie has no command line: its comm stands in. */
	assert_int_equal(ps_proc_cmdline(pid, cmd, sizeof(cmd)), 0);
	assert_string_equal(cmd, "[pszombie]");

	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(wfd);
}

static void test_proc_start_mismatch_is_dead(void **state)
{
	struct ps_ident id, none = { 0 };

	assert_int_equal(ps_proc_self(&id), 0);
	id.start += 1;
	assert_int_equal(ps_proc_alive(&id), 0);
	id.start -= 2;
	assert_int_equal(ps_proc_alive(&id), 0);
	assert_int_equal(ps_proc_alive(&none), 0);
	none.start = id.start + 1;
	assert_int_equal(ps_proc_alive(&none), 0);
	assert_int_equal(ps_proc_alive(NULL), 0);
	assert_int_equal(ps_proc_ident(0, &id), -EINVAL);
	assert_int_equal(ps_proc_ident(-1, &id), -EINVAL);
}

/*
 * comm may hold spaces and parentheses; the fields after it must still
 * be found (from the last ')').
 */
static void test_proc_comm_with_parens(void **state)
{
	const char *comm = "a) b (c) d";
	struct ps_ident id;
	char cmd[64], mine[64];
	int wfd, status;
	pid_t pid;

	pid = spawn_waiting_child(&wfd, comm);
	wait_comm(pid, comm);
	assert_int_equal(ps_proc_ident(pid, &id), 0);
	assert_int_equal(id.pid, (uint32_t)pid);
	assert_int_equal(id.start, stat_start(pid));
	assert_int_equal(ps_proc_alive(&id), 1);
	/* It still has its command line (ours, inherited by fork). */
	assert_int_equal(ps_proc_cmdline(pid, cmd, sizeof(cmd)), 0);
	assert_int_equal(ps_proc_cmdline(getpid(), mine, sizeof(mine)), 0);
	assert_true(cmd[0] != '\0' && strcmp(cmd, "?") != 0);
	/*
	 * Under valgrind the two command lines can differ (valgrind's own
	 * arguments, seen differently before and after fork): compare them
	 * only natively.
	 */
	if (getenv("PS_UNDER_VALGRIND") == NULL)
		assert_string_equal(cmd, mine);
	close(wfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_proc_cmdline(void **state)
{
	char want[4096] = "", buf[4096], small[5];
	int i, status;
	pid_t dead;

	for (i = 0; i < g_argc; i++) {
		if (i > 0)
			strcat(want, " ");
		strcat(want, g_argv[i]);
	}
	assert_int_equal(ps_proc_cmdline(getpid(), buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);

	/* Truncated, always terminated. */
	assert_int_equal(ps_proc_cmdline(getpid(), small, sizeof(small)), 0);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, want, sizeof(small) - 1);

	/* A process that is gone: "?" and -ESRCH. */
	dead = fork();
	assert_return_code(dead, errno);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &status, 0), dead);
	assert_int_equal(ps_proc_cmdline(dead, buf, sizeof(buf)), -ESRCH);
	assert_string_equal(buf, "?");
}

/* Arguments with control characters are shown as '?'. */
static void test_proc_cmdline_control_chars(void **state)
{
	char buf[256];
	int p[2], status, i;
	pid_t pid;
	char c;

	assert_return_code(pipe(p), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		char *args[] = { "/bin/sh", "-c", "read x", "a\nb", NULL };

		close(p[1]);
		dup2(p[0], STDIN_FILENO);
		execv(args[0], args);
		_exit(127);
	}
	close(p[0]);
	/* Wait until the exec is visible. */
	for (i = 0; i < 5000; i++) {
		if (ps_proc_cmdline(pid, buf, sizeof(buf)) == 0 &&
		    strncmp(buf, "/bin/sh", 7) == 0)
			break;
		usleep(1000);
	}
	assert_string_equal(buf, "/bin/sh -c read x a?b");
	c = '\n';
	assert_int_equal(write(p[1], &c, 1), 1);
	close(p[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_ident_format_parse(void **state)
{
	struct ps_ident id = { .pid = 4242, .start = 123456789 }, out;
	struct ps_ident max = { .pid = INT32_MAX, .start = UINT64_MAX };
	char buf[64], small[6];
	static const char *const bad[] = {
		"",
		"1",
		"1:",
		":1",
		"a:1",
		"1:2x",
		"1 :2",
		"1: 2",
		"-1:2",
		"+1:2",
		"1:-2",
		"1:2:3",
		"1:18446744073709551616",
		"2147483648:1",
		"99999999999999999999:1",
		"0x10:1",
	};
	size_t i;

	ps_ident_format(&id, buf, sizeof(buf));
	assert_string_equal(buf, "4242:123456789");
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(ps_ident_parse(buf, &out), 0);
	assert_int_equal(out.pid, 4242);
	assert_int_equal(out.pad, 0);
	assert_int_equal(out.start, 123456789);

	ps_ident_format(&max, buf, sizeof(buf));
	assert_string_equal(buf, "2147483647:18446744073709551615");
	assert_int_equal(ps_ident_parse(buf, &out), 0);
	assert_memory_equal(&out, &max, sizeof(out));

	assert_int_equal(ps_ident_parse("0:0", &out), 0);
	assert_int_equal(out.pid, 0);

	ps_ident_format(&id, small, sizeof(small));
	assert_string_equal(small, "4242:");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ps_ident_parse(bad[i], &out) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_self),
		cmocka_unit_test(test_proc_self_after_fork),
		cmocka_unit_test(test_proc_self_after_raw_fork),
		cmocka_unit_test(test_proc_child_alive_then_dead),
		cmocka_unit_test(test_proc_zombie_is_dead),
		cmocka_unit_test(test_proc_start_mismatch_is_dead),
		cmocka_unit_test(test_proc_comm_with_parens),
		cmocka_unit_test(test_proc_cmdline),
		cmocka_unit_test(test_proc_cmdline_control_chars),
		cmocka_unit_test(test_ident_format_parse),
	};

	g_argc = argc;
	g_argv = argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
