/* SPDX-License-Identifier: MIT */
/*
 * keeper_thin.c - the keeper while it shares `run`'s memory: see
 * keeper_int.h.
 *
 * Every function marked THIN runs in the thin keeper or in the child that
 * starts CMD, on a stack of their own, while `run` runs on in the same
 * memory. So they make raw system calls only (ps_rawsys writes no errno,
 * takes no lock, allocates nothing) and call no libc function but
 * clone(), whose wrapper writes errno only when the clone fails (`run`
 * does not read errno while the thin keeper lives: it uses raw calls
 * too). They are not instrumented by AddressSanitizer, whose per-thread
 * state is `run`'s.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "cli.h"
#include "inspect.h"
#include "keeper_int.h"
#include "rawsys.h"

#define THIN __attribute__((no_sanitize_address))

/* The thin keeper's memory: a guard page under each stack. */
#define THIN_PAGE 4096
#define THIN_SPAWN_STACK (32 * 1024)
#define THIN_STACK (64 * 1024)
#define THIN_SIZE \
	(THIN_PAGE + THIN_SPAWN_STACK + THIN_PAGE + THIN_STACK + THIN_PAGE)

bool ps_thin_possible(void)
{
#ifndef PS_HAVE_RAWSYS
	return false;
#else
#ifdef RUNNING_ON_VALGRIND
	if (RUNNING_ON_VALGRIND)
		return false;
#endif
	return true;
#endif
}

/*
 * Where execvp would look for file: file itself if it names a folder,
 * else each entry of PATH (ps_path_next). NULL-terminated; NULL with
 * errno on failure.
 */
static char **search_list(const char *file, int *no_cmd_err)
{
	const char *path = getenv("PATH"), *p;
	char one[PATH_MAX], **list;
	size_t n = 1, i = 0;
	int rc;

	*no_cmd_err = ENOENT;
	if (*file == '\0')
		return calloc(1, sizeof(*list));
	if (strchr(file, '/') != NULL) {
		list = calloc(2, sizeof(*list));
		if (list != NULL)
			list[0] = (char *)file;
		return list;
	}
	if (path == NULL)
		path = "/bin:/usr/bin";
	for (p = path; *p != '\0'; p++)
		n += *p == ':';
	list = calloc(n + 1, sizeof(*list));
	if (list == NULL)
		return NULL;
	p = path;
	while ((rc = ps_path_next(&p, file, one, sizeof(one))) != 0)
		if (rc == 1 && (list[i++] = strdup(one)) == NULL)
			return NULL;
	return list;
}

struct ps_thin *ps_thin_prepare(char **cmd, char **run_argv)
{
	struct ps_thin *t;
	char *mem;
	size_t argc, i, n;

	mem = mmap(NULL, THIN_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	if (mprotect(mem, THIN_PAGE, PROT_NONE) < 0 ||
	    mprotect(mem + THIN_PAGE + THIN_SPAWN_STACK, THIN_PAGE, PROT_NONE) <
		    0)
		return NULL;
	t = (struct ps_thin *)(mem + THIN_SIZE - THIN_PAGE);
	t->spawn_stack = mem + THIN_PAGE + THIN_SPAWN_STACK;
	t->stack = (char *)t;
	t->argv = cmd;
	t->paths = search_list(cmd[0], &t->no_cmd_err);
	for (argc = 0; cmd[argc] != NULL; argc++)
		;
	t->sh_argv = calloc(argc + 2, sizeof(*t->sh_argv));
	if (t->paths == NULL || t->sh_argv == NULL)
		return NULL;
	t->sh_argv[0] = (char *)"/bin/sh";
	for (i = 1; i < argc; i++)
		t->sh_argv[i + 1] = cmd[i];
	for (n = 0; run_argv[n] != NULL; n++)
		;
	t->resume_argv = calloc(2 + 5 + n + 1, sizeof(*t->resume_argv));
	if (t->resume_argv == NULL)
		return NULL;
	t->resume_argv[0] = (char *)"portshim";
	t->resume_argv[1] = (char *)PS_KEEPER_COMMAND;
	for (i = 0; i < 5; i++)
		t->resume_argv[2 + i] = t->numbers[i];
	for (i = 0; i < n; i++)
		t->resume_argv[7 + i] = run_argv[i];
	t->chan = t->run_chan = t->sfd = t->sock = t->reg_fd = -1;
	return t;
}

/* ------------------------------------------------ in the thin keeper */

THIN static void __attribute__((noreturn)) thin_exit(int status)
{
	for (;;)
		ps_rawsys1(SYS_exit_group, status);
}

/* The child that starts CMD: execvp's search, with the raw execve. */
THIN static int spawn_child(void *arg)
{
	struct ps_thin *t = arg;
	bool eacces = false;
	long rc = -t->no_cmd_err;
	size_t i;

	ps_rawsys4(SYS_rt_sigprocmask, SIG_SETMASK, &t->cmd_mask, 0,
		   sizeof(t->cmd_mask));
	for (i = 0; t->paths[i] != NULL; i++) {
		rc = ps_rawsys3(SYS_execve, t->paths[i], t->argv, t->envp);
		if (rc == -ENOEXEC) {
			/* No "#!": a shell script, as execvp runs it (and
			 * judges the shell's failure as the file's). */
			t->sh_argv[1] = t->paths[i];
			rc = ps_rawsys3(SYS_execve, "/bin/sh", t->sh_argv,
					t->envp);
		}
		if (rc == -EACCES)
			eacces = true;
		else if (rc != -ENOENT && rc != -ENOTDIR && rc != -ESTALE &&
			 rc != -ENODEV && rc != -ETIMEDOUT)
			break;
	}
	t->exec_err = eacces && t->paths[i] == NULL ? EACCES : (int)-rc;
	thin_exit(PS_EXIT_NO_CMD);
}

/*
 * Starts CMD in a child that shares our memory until it execs (as
 * posix_spawn does). Returns its pid, or ps_cli_spawn's -1 (exec failed,
 * the child reaped) or -2 (no child), the errno in *err.
 */
THIN static long thin_spawn(struct ps_thin *t, int *err)
{
	long pid;
	int st;

	t->exec_err = 0;
	pid = clone(spawn_child, t->spawn_stack,
		    CLONE_VM | CLONE_VFORK | SIGCHLD, t);
	if (pid < 0) {
		*err = EAGAIN;
		return -2;
	}
	if (t->exec_err != 0) {
		*err = t->exec_err;
		while (ps_rawsys4(SYS_wait4, pid, &st, 0, 0) == -EINTR)
			;
		return -1;
	}
	return pid;
}

THIN bool ps_keeper_tell(int fd, int kind, int value, int err)
{
	struct keeper_msg m = { kind, value, err };

	return fd >= 0 && ps_rawsys(SYS_sendto, fd, (long)&m, sizeof(m),
				    MSG_NOSIGNAL, 0, 0) == (long)sizeof(m);
}

THIN void ps_keeper_signals(int sfd, pid_t cmd, pid_t run)
{
	struct signalfd_siginfo si;

	while (ps_rawsys3(SYS_read, sfd, &si, sizeof(si)) == (long)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD || cmd <= 0)
			continue;
		if ((si.ssi_code == SI_KERNEL || (pid_t)si.ssi_pid == run) &&
		    ps_cli_passes_on(cmd, si.ssi_code))
			ps_rawsys2(SYS_kill, cmd, si.ssi_signo);
	}
}

/* Writes v in decimal (v >= -1) into buf, of at least 24 bytes. */
THIN static void thin_number(char *buf, long v)
{
	char tmp[24];
	size_t n = 0, i = 0;

	if (v < 0) {
		buf[i++] = '-';
		v = -v;
	}
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
}

/*
 * Goes on as a whole keeper: execs `portshim __keeper RUN CHAN SOCK CMD
 * STATUS run ARGS...`, CHAN the channel to `run` (-1 once `run` has been told), CMD
 * 0 once it has ended, STATUS -1 while it runs. Returns only if that
 * failed, having said so.
 */
THIN static void thin_resume(struct ps_thin *t, int chan, long cmd, int status)
{
	static const char fail[] = "portshim: the group's keeper cannot go on"
				   " (exec of /proc/self/exe failed): the"
				   " group's mapping file is not updated and"
				   " its leases wait for `portshim gc`\n";

	thin_number(t->numbers[0], t->run);
	thin_number(t->numbers[1], chan);
	thin_number(t->numbers[2], t->sock);
	thin_number(t->numbers[3], cmd);
	thin_number(t->numbers[4], status);
	if (chan >= 0)
		ps_rawsys3(SYS_fcntl, chan, F_SETFD, 0);
	if (t->sock >= 0)
		ps_rawsys3(SYS_fcntl, t->sock, F_SETFD, 0);
	ps_rawsys3(SYS_execve, "/proc/self/exe", t->resume_argv,
		   t->resume_envp);
	ps_rawsys3(SYS_write, STDERR_FILENO, fail, sizeof(fail) - 1);
	if (chan >= 0)
		ps_rawsys3(SYS_fcntl, chan, F_SETFD, FD_CLOEXEC);
	if (t->sock >= 0)
		ps_rawsys3(SYS_fcntl, t->sock, F_SETFD, FD_CLOEXEC);
}

/* Empties the nudge socket (when no whole keeper can publish). */
THIN static void thin_drain(int fd)
{
	char buf[64];

	while (ps_rawsys3(SYS_read, fd, buf, sizeof(buf)) > 0)
		;
}

/*
 * The thin keeper: never returns. told: `run` knows CMD's status (the
 * channel is closed); stuck: a whole keeper could not be started, so
 * the group is kept until its end but not published nor released.
 */
THIN static int thin_main(void *arg)
{
	struct ps_thin *t = arg;
	struct pollfd pfd[2];
	bool cmd_done = false, told = false, stuck = false;
	int err = 0, st, status = PS_EXIT_RUN_FAILED;
	long n, p, cmd = -2;
	char go;

	/* `run`'s end of the channel, a copy in our descriptor table: with
	 * it closed, `run`'s end is seen (a read's end, EPIPE). */
	if (t->run_chan >= 0)
		ps_rawsys1(SYS_close, t->run_chan);
	/* `run` says go once CMD's environment names us as its owner. */
	do
		n = ps_rawsys3(SYS_read, t->chan, &go, 1);
	while (n == -EINTR);
	if (n != 1)
		thin_exit(PS_EXIT_RUN_FAILED);
	n = ps_rawsys2(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
	if (n < 0)
		err = (int)-n;
	else
		cmd = thin_spawn(t, &err);
	if (t->reg_fd >= 0)
		ps_rawsys3(SYS_fcntl, t->reg_fd, F_SETFD, FD_CLOEXEC);
	if (cmd < 0) {
		ps_keeper_tell(t->chan, KEEPER_FAILED, (int)cmd, err);
		thin_exit(0);
	}

	pfd[0] = (struct pollfd){ .fd = t->sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = t->sock, .events = POLLIN };
	for (;;) {
		while ((p = ps_rawsys4(SYS_wait4, -1, &st, WNOHANG, 0)) > 0) {
			if (p == cmd) {
				status = ps_cli_status(st);
				cmd_done = true;
			}
		}
		if (p == -ECHILD)
			break;
		if (cmd_done && !told) {
			/* The group outlives CMD. */
			ps_keeper_tell(t->chan, KEEPER_LINGER, status, 0);
			ps_rawsys1(SYS_close, t->chan);
			told = true;
			if (!stuck)
				thin_resume(t, -1, 0, status);
			stuck = true;
		}
		n = ps_rawsys(SYS_ppoll, (long)pfd, t->sock >= 0 ? 2 : 1, 0, 0,
			      0, 0);
		if (n < 0)
			continue;
		if (pfd[0].revents)
			ps_keeper_signals(t->sfd, cmd_done ? 0 : (pid_t)cmd,
					  t->run);
		if (t->sock >= 0 && pfd[1].revents) {
			/* A member asks for the mapping to be published. */
			if (!stuck)
				thin_resume(t, t->chan, cmd, -1);
			stuck = true;
			thin_drain(t->sock);
		}
	}
	/* The group's last process ended. */
	if (told)
		thin_exit(0);
	if (ps_keeper_tell(t->chan, KEEPER_ENDED, status, 0) || stuck)
		thin_exit(0);
	/* `run` is gone: a whole keeper releases the group. */
	thin_resume(t, -1, 0, status);
	thin_exit(status);
}

pid_t ps_thin_start(struct ps_thin *t)
{
	return clone(thin_main, t->stack, CLONE_VM | SIGCHLD, t);
}
