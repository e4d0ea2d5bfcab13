/* SPDX-License-Identifier: MIT */
/*
 * keeper.c - the process that keeps a run's group alive: see keeper.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "keeper.h"
#include "supervise.h"

/*
 * What the keeper tells `run`, at most once: that CMD has ended and
 * processes of the group live on, with `run`'s exit status. When the
 * group ends with CMD, the keeper releases it and exits with that status
 * (0-255, as `run`'s own): `run` sees the pipe's end and waits for it.
 * No other hand-over between the two processes: each wakes a sleeping
 * process, which costs more than everything else `run` does.
 */
enum {
	KEEPER_LINGER = 1, /* value: `run`'s exit status */
};

struct keeper_msg {
	int32_t kind;
	int32_t value;
};

/* Sends one message to `run`; after a failure (run is gone), no more. */
static void tell(int *fd, int32_t kind, int32_t value)
{
	struct keeper_msg m = { kind, value };
	ssize_t n;

	if (*fd < 0)
		return;
	do
		n = write(*fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m)) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * The keeper's abstract datagram socket, bound to a fresh name that is
 * exported as PORTSHIM_KEEPER. Returns the socket, or -1 (the variable is
 * then unset: members that cannot publish say so themselves).
 */
static int keeper_socket(void)
{
	struct sockaddr_un sa;
	char name[48];
	uint32_t r = 0;
	size_t n;
	int fd;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() * 2654435761u;
	snprintf(name, sizeof(name), "portshim-keeper-%ld-%08x", (long)getpid(),
		 (unsigned)r);
	n = strlen(name);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 &&
	    bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) ==
		    0 &&
	    setenv("PORTSHIM_KEEPER", name, 1) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	unsetenv("PORTSHIM_KEEPER");
	return -1;
}

/*
 * Hands the registry down to CMD when we are root: only then can a member
 * of the group run as another user with the preload still in place (a
 * setuid program drops LD_PRELOAD). The descriptor stays open across exec
 * in CMD only; the keeper itself execs nothing.
 */
void ps_keeper_hand_down(struct ps_registry *reg)
{
	char text[96];

	if (reg == NULL || geteuid() != 0 ||
	    ps_handoff_format(reg->fd, text, sizeof(text)) < 0 ||
	    setenv(PS_HANDOFF_ENV, text, 1) < 0) {
		unsetenv(PS_HANDOFF_ENV);
		return;
	}
	fcntl(reg->fd, F_SETFD, 0);
}

/*
 * Lets go of the caller's files: standard streams to /dev/null, and every
 * other descriptor closed but the keeper's own (keep, nkeep; SIZE_MAX:
 * keep them all). The group
 * outlives the caller, whose pipes (a test driver's, a shell's command
 * substitution) must see their end when CMD's last copy closes them.
 */
static void let_go(const int *keep, size_t nkeep)
{
	struct dirent *de;
	DIR *d;
	int fd, dfd;
	size_t i;

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (nkeep == SIZE_MAX)
		return;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    fd <= STDERR_FILENO || fd == dfd)
			continue;
		for (i = 0; i < nkeep && keep[i] != fd; i++)
			;
		if (i == nkeep)
			close(fd);
	}
	closedir(d);
}

static void drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/*
 * Reads the keeper's signals. `run` passes on to the keeper what it is
 * sent (it does not know CMD's pid: that would be one more hand-over),
 * and the keeper passes it on to CMD while CMD runs, by the rules of a
 * wrapper (ps_cli_passes_on). A signal that somebody else sent to the
 * keeper (a kill of the whole process group, which reached CMD too) is
 * not passed on, nor anything once CMD has ended.
 */
static void take_signals(int sfd, pid_t cmd, pid_t run)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD || cmd <= 0)
			continue;
		if ((si.ssi_code == SI_KERNEL || (pid_t)si.ssi_pid == run) &&
		    ps_cli_passes_on(cmd, si.ssi_code))
			kill(cmd, (int)si.ssi_signo);
	}
}

/* The keeper: never returns. to_run is the pipe to `run`, whose pid is
 * run; the signals that `run` passes on are blocked. */
static void keeper_main(struct ps_keeper_job *job, int to_run, pid_t run,
			const sigset_t *cmd_mask)
{
	struct pollfd pfd[2];
	struct ps_ident self;
	sigset_t sigs;
	char owner[64], why[512];
	bool cmd_done = false, lingering = false;
	int keep[3];
	int sfd, st, err, status = PS_EXIT_RUN_FAILED;
	pid_t cmd, p;

	if (ps_proc_self(&self) < 0) {
		ps_cli_error("cannot read the keeper's identity");
		_exit(PS_EXIT_RUN_FAILED);
	}
	/* A joined group's leases stay its owner's. */
	if (job->owner != NULL)
		snprintf(owner, sizeof(owner), "%s", job->owner);
	else
		ps_ident_format(&self, owner, sizeof(owner));
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	ps_cli_forwarded(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || setenv("PORTSHIM_GROUP_OWNER", owner, 1) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		ps_cli_error("cannot start the group's keeper: %s",
			     strerror(errno));
		_exit(PS_EXIT_RUN_FAILED);
	}
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = keeper_socket(), .events = POLLIN };
	ps_keeper_hand_down(job->reg);

	cmd = ps_cli_spawn(job->cmd, job->sv, cmd_mask, &err, why, sizeof(why));
	if (job->reg != NULL)
		fcntl(job->reg->fd, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	if (cmd < 0) {
		status = ps_cli_spawn_failed(cmd, err, why, job->cmd,
					     "--supervise");
		cmd_done = true;
	}

	for (;;) {
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == cmd) {
				status = ps_cli_status(st);
				cmd_done = true;
			}
		}
		if (p < 0 && errno == ECHILD)
			break;
		if (cmd_done && !lingering) {
			tell(&to_run, KEEPER_LINGER, status);
			if (to_run >= 0)
				close(to_run);
			to_run = -1;
			keep[0] = sfd;
			keep[1] = pfd[1].fd;
			keep[2] = job->reg != NULL ? job->reg->fd : -1;
			/* The supervisor's threads have descriptors of their
			 * own: then only the standard streams are let go. */
			let_go(keep, job->sv == NULL ? 3 : SIZE_MAX);
			lingering = true;
		}
		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (pfd[0].revents)
			take_signals(sfd, cmd_done ? 0 : cmd, run);
		if (pfd[1].fd >= 0 && pfd[1].revents) {
			drain(pfd[1].fd);
			job->publish(job);
		}
	}
	job->release(job, &self);
	ps_supervise_stop(job->sv);
	_exit(lingering ? 0 : status);
}

int ps_keeper_run(struct ps_keeper_job *job)
{
	struct keeper_msg m;
	sigset_t old;
	int fds[2], st;
	ssize_t n;
	pid_t k, run = getpid();

	ps_cli_block_forwarded(&old);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		ps_cli_error("cannot start the group's keeper: %s",
			     strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return PS_EXIT_RUN_FAILED;
	}
	fflush(NULL);
	k = fork();
	if (k < 0) {
		ps_cli_error("cannot start the group's keeper: %s",
			     strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		close(fds[1]);
		return PS_EXIT_RUN_FAILED;
	}
	if (k == 0) {
		close(fds[0]);
		keeper_main(job, fds[1], run, &old);
	}
	close(fds[1]);
	/* What we are sent goes to the keeper, which passes it on to CMD. */
	ps_cli_forward(k);
	sigprocmask(SIG_SETMASK, &old, NULL);
	do
		n = read(fds[0], &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	ps_cli_block_forwarded(&old);
	ps_cli_forward(0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fds[0]);
	if (n == (ssize_t)sizeof(m) && m.kind == KEEPER_LINGER)
		return m.value;
	/* The pipe's end: the keeper has released the group, or was
	 * killed. */
	while (waitpid(k, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	/* Killed (a harness's SIGKILL of our process group, say): run ends
	 * as if CMD had, by that signal. */
	ps_cli_error("the group's keeper (pid %ld) ended before the command"
		     " did (signal %d)",
		     (long)k, WTERMSIG(st));
	return 128 + WTERMSIG(st);
}
