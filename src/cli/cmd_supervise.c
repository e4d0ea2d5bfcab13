/*
 * cmd_supervise.c - `portshim supervise [--] CMD...`: runs CMD under the
 * seccomp supervisor in the group of the environment it is given, without
 * making, owning or releasing a group.
 *
 * For a program the preload cannot see that is started inside a group
 * (a test script under `portshim run` that starts a Go server, say), and
 * for the preload's exec wrappers under PORTSHIM_BYPASS=supervise, which
 * can run a static or Go program as `portshim supervise -- PROGRAM...`
 * instead of warning. Every PORTSHIM_* variable is passed on as it is, so
 * the supervised program's policy is exactly what the preload's would be.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "supervise.h"

static const char supervise_help[] =
"Usage: portshim supervise [--] CMD [ARG]...\n"
"Run CMD under portshim's seccomp supervisor, in the group that the\n"
"environment names (PORTSHIM_PORTS, PORTSHIM_GROUP and the rest, as\n"
"`portshim run` sets them): the socket system calls of programs that the\n"
"preload cannot see (static and Go programs, raw system calls) get the\n"
"group's ports too. No group is made or released. CMD runs with\n"
"no_new_privs. Needs Linux 5.6 or later.\n"
"\n"
"  -h, --help        show this help\n"
"\n"
"Exit status: CMD's status; 128+N if CMD was killed by signal N; 2 bad\n"
"usage or no group in the environment; 125 the supervisor could not\n"
"start; 126 CMD cannot be executed; 127 CMD was not found.\n";

static const int sup_signals[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
};
#define SUP_NSIGNALS (sizeof(sup_signals) / sizeof(sup_signals[0]))

static volatile sig_atomic_t sup_child;

/*
 * Passes a signal on to CMD, as `portshim run` does: a terminal's own
 * signals (si_code SI_KERNEL) already reach CMD when it shares our
 * process group, so only those sent to us alone are forwarded then.
 */
static void sup_forward(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	pid_t child = (pid_t)sup_child;

	(void)uctx;
	if (child > 0 &&
	    (si->si_code != SI_KERNEL || getpgid(child) != getpgrp()))
		kill(child, sig);
	errno = saved;
}

/*
 * Starts cmd under sv, with the forwarded signals blocked from before
 * fork() until the handlers know the child. The child reports an exec
 * failure's errno through a close-on-exec pipe (*exec_fd, to be read once
 * the command runs). Returns the child's pid, or an exit status (< 0 as
 * its negation) after printing why.
 */
static pid_t sup_spawn(struct ps_supervisor *sv, char **cmd, int *exec_fd)
{
	struct sigaction sa, cur;
	sigset_t block, old;
	char why[512];
	int fds[2], err;
	pid_t pid;
	size_t i;

	sigemptyset(&block);
	for (i = 0; i < SUP_NSIGNALS; i++)
		sigaddset(&block, sup_signals[i]);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		ps_cli_error("supervise: cannot make a pipe: %s",
			     strerror(errno));
		return -PS_EXIT_RUN_FAILED;
	}
	fflush(NULL);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (ps_supervise_child(sv) < 0)
			_exit(PS_EXIT_RUN_FAILED);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(cmd[0], cmd);
		err = errno;
		if (write(fds[1], &err, sizeof(err)) < 0)
			_exit(PS_EXIT_NO_CMD);
		_exit(PS_EXIT_NO_CMD);
	}
	close(fds[1]);
	if (pid < 0) {
		ps_cli_error("supervise: cannot start %s: %s", cmd[0],
			     strerror(errno));
		pid = -PS_EXIT_RUN_FAILED;
		goto out;
	}
	if (ps_supervise_start(sv, pid, why, sizeof(why)) < 0) {
		ps_cli_error("supervise: %s", why);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		pid = -PS_EXIT_RUN_FAILED;
		goto out;
	}
	sup_child = pid;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sup_forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < SUP_NSIGNALS; i++)
		if (sigaction(sup_signals[i], NULL, &cur) == 0 &&
		    cur.sa_handler != SIG_IGN)
			sigaction(sup_signals[i], &sa, NULL);
	*exec_fd = fds[0];
	fds[0] = -1;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

int ps_cli_supervise(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ps_config cfg;
	static char errs[4096];
	struct ps_supervisor *sv = NULL;
	char why[512];
	int c, exec_fd = -1, err = 0, st, status;
	ssize_t n;
	pid_t pid;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return ps_cli_help(supervise_help);
		return ps_cli_bad_option(c, argv);
	}
	if (optind >= argc)
		return ps_cli_usage_error("supervise: missing CMD");
	/* The command's own variables are checked where they are used:
	 * by the preload and by the supervisor, each with its log line. */
	ps_config_load(&cfg, ps_cli_getenv, errs, sizeof(errs));
	if (!cfg.enabled) {
		ps_cli_error("supervise: PORTSHIM_PORTS is not set, so there is "
			     "no group to supervise %s in; use 'portshim run "
			     "--supervise'", argv[optind]);
		return PS_EXIT_USAGE;
	}
	if (ps_supervise_prepare(&sv, &cfg, why, sizeof(why)) < 0) {
		ps_cli_error("supervise: %s", why);
		return PS_EXIT_RUN_FAILED;
	}
	pid = sup_spawn(sv, argv + optind, &exec_fd);
	if (pid < 0) {
		status = -pid;
		goto out;
	}
	do
		n = read(exec_fd, &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(err)) {
		ps_cli_error("%s: %s", argv[optind], strerror(err));
		status = err == ENOENT ? PS_EXIT_NO_CMD : PS_EXIT_CANNOT_EXEC;
	} else if (WIFEXITED(st)) {
		status = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		status = 128 + WTERMSIG(st);
	} else {
		status = PS_EXIT_RUN_FAILED;
	}
out:
	if (exec_fd >= 0)
		close(exec_fd);
	ps_supervise_stop(sv);
	return status;
}
