/* SPDX-License-Identifier: MIT */
/*
 * spawn.c - how `run` and `supervise` start CMD and wait for it: the
 * signals a wrapper passes on, the exec failure reported through a pipe,
 * the seccomp supervisor started between fork and exec, and CMD's end
 * turned into an exit status. `run` splits the work: its keeper starts
 * CMD, and `run` itself passes the signals on (keeper.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "rawsys.h"
#include "supervise.h"

/* The signals passed on to CMD. */
static const int spawn_signals[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
};
#define SPAWN_NSIGNALS (sizeof(spawn_signals) / sizeof(spawn_signals[0]))

static volatile sig_atomic_t spawn_child;

/*
 * Passes a signal on to CMD. CMD stays in our process group, so that it
 * keeps the terminal and job control works. The terminal's own signals
 * (^C, ^\ and hangup; si_code SI_KERNEL) go to the whole foreground
 * process group, CMD included: forwarding those would deliver them twice,
 * and many programs treat a second ^C as "quit without cleaning up". So a
 * kernel-sent signal is forwarded only if CMD has left our process group;
 * a signal that a process sent (kill(1), timeout(1), a CI runner) was
 * aimed at us alone and is always forwarded. A kill(2) of the whole
 * process group still reaches CMD twice, as with any wrapper.
 */
/* Not instrumented by AddressSanitizer: the thin keeper calls it on a
 * stack of its own (keeper_int.h). */
__attribute__((no_sanitize_address)) bool ps_cli_passes_on(pid_t child,
							   int si_code)
{
	if (child <= 0)
		return false;
	if (si_code != SI_KERNEL)
		return true;
#ifdef PS_HAVE_RAWSYS
	/* Raw: the thin keeper calls this too (keeper_int.h). */
	return ps_rawsys1(SYS_getpgid, child) != ps_rawsys1(SYS_getpgid, 0);
#else
	return getpgid(child) != getpgrp();
#endif
}

static void spawn_forward(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	pid_t child = (pid_t)spawn_child;

	(void)uctx;
	if (ps_cli_passes_on(child, si->si_code))
		kill(child, sig);
	errno = saved;
}

void ps_cli_block_forwarded(sigset_t *old)
{
	sigset_t block;
	size_t i;

	sigemptyset(&block);
	for (i = 0; i < SPAWN_NSIGNALS; i++)
		sigaddset(&block, spawn_signals[i]);
	sigprocmask(SIG_BLOCK, &block, old);
}

void ps_cli_forward(pid_t pid)
{
	struct sigaction sa, cur;
	size_t i;

	spawn_child = pid;
	if (pid <= 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = spawn_forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < SPAWN_NSIGNALS; i++) {
		/* A signal ignored when we started (nohup, a background job
		 * of a non-interactive shell) stays ignored, as CMD has it
		 * ignored too. */
		if (sigaction(spawn_signals[i], NULL, &cur) == 0 &&
		    cur.sa_handler == SIG_IGN)
			continue;
		sigaction(spawn_signals[i], &sa, NULL);
	}
}

void ps_cli_forwarded(sigset_t *set)
{
	struct sigaction cur;
	size_t i;

	for (i = 0; i < SPAWN_NSIGNALS; i++)
		if (sigaction(spawn_signals[i], NULL, &cur) == 0 &&
		    cur.sa_handler != SIG_IGN)
			sigaddset(set, spawn_signals[i]);
}

extern char **environ;

/*
 * CMD without a supervisor: posix_spawnp, whose child shares our memory
 * until it execs (no copy of the page tables, no second process image to
 * tear down) and reports an exec failure itself. Returns the pid, -1
 * (exec failed: errno in *exec_err), or -2 with ENOEXEC for a file that
 * execvp would run with /bin/sh (the caller does that, with fork).
 */
static pid_t spawn_plain(char **cmd, const sigset_t *mask, int *exec_err)
{
	posix_spawnattr_t attr;
	pid_t pid;
	int rc;

	rc = posix_spawnattr_init(&attr);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, mask);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	if (rc == 0) {
		fflush(NULL);
		rc = posix_spawnp(&pid, cmd[0], NULL, &attr, cmd, environ);
	}
	posix_spawnattr_destroy(&attr);
	if (rc == 0)
		return pid;
	*exec_err = rc;
	return rc == ENOEXEC ? -2 : -1;
}

/*
 * Starts CMD with the signal mask *mask. The child reports an exec
 * failure's errno through a close-on-exec pipe. Returns the child's pid
 * once CMD runs; -1 when exec failed (its errno in *exec_err, the child
 * reaped); -2 when a pipe or the fork failed (errno in *exec_err); -3
 * when the supervisor could not start (why says why, the child reaped).
 */
pid_t ps_cli_spawn(char **cmd, struct ps_supervisor *sv, const sigset_t *mask,
		   int *exec_err, char *why, size_t why_len)
{
	int fds[2], err = 0;
	ssize_t n;
	pid_t pid;

	*exec_err = 0;
	if (sv == NULL) {
		pid = spawn_plain(cmd, mask, exec_err);
		if (pid != -2 || *exec_err != ENOEXEC)
			return pid;
		/* No "#!": execvp runs it with /bin/sh, posix_spawnp no. */
		*exec_err = 0;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		*exec_err = errno;
		return -2;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		*exec_err = errno;
		close(fds[0]);
		close(fds[1]);
		return -2;
	}
	if (pid == 0) {
		close(fds[0]);
		if (sv != NULL && ps_supervise_child(sv) < 0)
			_exit(PS_EXIT_RUN_FAILED);
		sigprocmask(SIG_SETMASK, mask, NULL);
		execvp(cmd[0], cmd);
		err = errno;
		if (write(fds[1], &err, sizeof(err)) < 0)
			_exit(PS_EXIT_NO_CMD);
		_exit(PS_EXIT_NO_CMD);
	}
	close(fds[1]);
	if (sv != NULL && ps_supervise_start(sv, pid, why, why_len) < 0) {
		/* The child exits without running CMD. */
		close(fds[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -3;
	}
	do
		n = read(fds[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n == (ssize_t)sizeof(err)) {
		*exec_err = err;
		/* The child exits at once; collect it. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return pid;
}

int ps_cli_spawn_failed(pid_t pid, int err, const char *why, char **cmd,
			const char *sv_name)
{
	if (pid == -3) {
		ps_cli_error("%s: %s", sv_name, why);
		return PS_EXIT_RUN_FAILED;
	}
	if (pid == -2) {
		ps_cli_error("cannot start %s: %s", cmd[0], strerror(err));
		return PS_EXIT_RUN_FAILED;
	}
	ps_cli_error("%s: %s", cmd[0], strerror(err));
	return err == ENOENT ? PS_EXIT_NO_CMD : PS_EXIT_CANNOT_EXEC;
}

/* Not instrumented: the thin keeper calls it too (see ps_cli_passes_on). */
__attribute__((no_sanitize_address)) int ps_cli_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return PS_EXIT_RUN_FAILED;
}

/* Waits for CMD and turns its end into our exit status. */
static int spawn_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			ps_cli_error("waiting for the command: %s",
				     strerror(errno));
			return PS_EXIT_RUN_FAILED;
		}
	}
	/* The pid is free for reuse now: forward nothing more to it. */
	spawn_child = 0;
	return ps_cli_status(st);
}

/*
 * The forwarded signals are blocked from before fork() until the
 * handlers know the child's pid, so none is lost or sent to pid 0.
 */
int ps_cli_exec(char **cmd, struct ps_supervisor *sv, const char *sv_name)
{
	char why[512];
	sigset_t old;
	int err;
	pid_t pid;

	/* An ignored SIGCHLD (inherited across exec) would have the kernel
	 * reap CMD unseen: its status would be lost. */
	signal(SIGCHLD, SIG_DFL);
	ps_cli_block_forwarded(&old);
	pid = ps_cli_spawn(cmd, sv, &old, &err, why, sizeof(why));
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return ps_cli_spawn_failed(pid, err, why, cmd, sv_name);
	}
	ps_cli_forward(pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return spawn_wait(pid);
}
