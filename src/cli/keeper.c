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
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "keeper.h"
#include "keeper_int.h"
#include "rawsys.h"
#include "supervise.h"

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

/* Where a keeper stands. */
struct keeper_state {
	int chan; /* to `run`, until told; then -1 */
	pid_t run;
	int sfd, sock; /* signalfd; PORTSHIM_KEEPER's socket or -1 */
	pid_t cmd;     /* CMD while it runs, else 0 */
	int status;    /* `run`'s exit status, once CMD ended */
	bool cmd_done;
};

/*
 * The keeper's life from CMD's start on: reaps, passes signals on,
 * publishes for members that ask, tells `run` when CMD ends, and when the
 * last process of the group ends, releases the group. Never returns.
 */
static void keeper_loop(struct ps_keeper_job *job, struct keeper_state *ks)
{
	struct pollfd pfd[2];
	struct ps_ident self;
	bool lingering = false;
	int keep[3], st;
	pid_t p;

	if (ps_proc_self(&self) < 0) {
		ps_cli_error("cannot read the keeper's identity");
		_exit(PS_EXIT_RUN_FAILED);
	}
	signal(SIGPIPE, SIG_IGN);
	pfd[0] = (struct pollfd){ .fd = ks->sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = ks->sock, .events = POLLIN };
	for (;;) {
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == ks->cmd) {
				ks->status = ps_cli_status(st);
				ks->cmd_done = true;
				ks->cmd = 0;
			}
		}
		if (p < 0 && errno == ECHILD)
			break;
		if (ks->cmd_done && !lingering) {
			ps_keeper_tell(ks->chan, KEEPER_LINGER, ks->status, 0);
			if (ks->chan >= 0)
				close(ks->chan);
			ks->chan = -1;
			keep[0] = ks->sfd;
			keep[1] = ks->sock;
			keep[2] = job->reg != NULL ? job->reg->fd : -1;
			/* The supervisor's threads have descriptors of their
			 * own: then only the standard streams are let go. */
			let_go(keep, job->sv == NULL ? 3 : SIZE_MAX);
			lingering = true;
		}
		if (poll(pfd, ks->sock >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (pfd[0].revents)
			ps_keeper_signals(ks->sfd, ks->cmd, ks->run);
		if (ks->sock >= 0 && pfd[1].revents) {
			drain(ks->sock);
			job->publish(job);
		}
	}
	job->release(job, &self);
	ps_supervise_stop(job->sv);
	_exit(lingering ? 0 : ks->status);
}

/* The signals a keeper reads from its signalfd: SIGCHLD and those that
 * `run` passes on. */
static void keeper_sigs(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGCHLD);
	ps_cli_forwarded(sigs);
}

/* The forked keeper (`run --supervise`, whose supervisor has threads):
 * never returns. to_run is the channel to `run`, whose pid is run; the
 * signals that `run` passes on are blocked. */
static void keeper_main(struct ps_keeper_job *job, int to_run, pid_t run,
			const sigset_t *cmd_mask)
{
	struct keeper_state ks = { to_run, run, -1, -1, 0, PS_EXIT_RUN_FAILED,
				   false };
	struct ps_ident self;
	sigset_t sigs;
	char owner[64], why[512];
	int err;

	if (ps_proc_self(&self) < 0) {
		ps_cli_error("cannot read the keeper's identity");
		_exit(PS_EXIT_RUN_FAILED);
	}
	/* A joined group's leases stay its owner's. */
	if (job->owner != NULL)
		snprintf(owner, sizeof(owner), "%s", job->owner);
	else
		ps_ident_format(&self, owner, sizeof(owner));
	keeper_sigs(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	ks.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ks.sfd < 0 || setenv("PORTSHIM_GROUP_OWNER", owner, 1) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		ps_cli_error("cannot start the group's keeper: %s",
			     strerror(errno));
		_exit(PS_EXIT_RUN_FAILED);
	}
	ks.sock = keeper_socket();
	ps_keeper_hand_down(job->reg);

	ks.cmd = ps_cli_spawn(job->cmd, job->sv, cmd_mask, &err, why,
			      sizeof(why));
	if (job->reg != NULL)
		fcntl(job->reg->fd, F_SETFD, FD_CLOEXEC);
	if (ks.cmd < 0) {
		ks.status = ps_cli_spawn_failed(ks.cmd, err, why, job->cmd,
						"--supervise");
		ks.cmd_done = true;
		ks.cmd = 0;
	}
	keeper_loop(job, &ks);
}

int ps_keeper_resume(struct ps_keeper_job *job, int argc, char **argv)
{
	struct keeper_state ks;
	long v[5];
	sigset_t sigs;
	char *end;
	int i;

	for (i = 0; i < 5 && i + 1 < argc; i++) {
		errno = 0;
		v[i] = strtol(argv[i + 1], &end, 10);
		if (errno != 0 || end == argv[i + 1] || *end != '\0')
			break;
	}
	if (argc < 6 || i != 5) {
		ps_cli_error("%s is how a group's keeper goes on; it is "
			     "started by `portshim run`, not by hand",
			     PS_KEEPER_COMMAND);
		return PS_EXIT_USAGE;
	}
	ks.run = (pid_t)v[0];
	ks.chan = (int)v[1];
	ks.sock = (int)v[2];
	ks.cmd = (pid_t)v[3];
	ks.status = (int)v[4];
	ks.cmd_done = ks.cmd == 0;
	if (ks.chan >= 0)
		fcntl(ks.chan, F_SETFD, FD_CLOEXEC);
	if (ks.sock >= 0)
		fcntl(ks.sock, F_SETFD, FD_CLOEXEC);
	/* The signals stayed blocked across exec; a new signalfd reads
	 * them. */
	keeper_sigs(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	ks.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ks.sfd < 0) {
		ps_cli_error("the group's keeper cannot read its signals: %s",
			     strerror(errno));
		_exit(PS_EXIT_RUN_FAILED);
	}
	keeper_loop(job, &ks);
	return PS_EXIT_RUN_FAILED;
}

/* Reads the keeper's message; 0 at the channel's end. The thin keeper
 * shares our errno: the raw call leaves it alone. */
static long keeper_read(int chan, struct keeper_msg *m)
{
	long n;

#ifdef PS_HAVE_RAWSYS
	do
		n = ps_rawsys3(SYS_read, chan, m, sizeof(*m));
	while (n == -EINTR);
#else
	do
		n = read(chan, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
#endif
	return n;
}

/*
 * `run`'s side: waits for the keeper k's message on chan and returns
 * `run`'s exit status. kid is the keeper's identity, for a group that a
 * thin keeper leaves to `run` to release.
 */
static int keeper_wait(struct ps_keeper_job *job, pid_t k, int chan,
		       const struct ps_ident *kid)
{
	struct keeper_msg m;
	sigset_t old;
	int st, status;
	long n;

	n = keeper_read(chan, &m);
	ps_cli_block_forwarded(&old);
	ps_cli_forward(0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(chan);
	if (n == (long)sizeof(m) && m.kind == KEEPER_LINGER)
		return m.value;
	while (waitpid(k, &st, 0) < 0) {
		if (errno != EINTR) {
			ps_cli_error("waiting for the group's keeper: %s",
				     strerror(errno));
			return PS_EXIT_RUN_FAILED;
		}
	}
	if (n == (long)sizeof(m) &&
	    (m.kind == KEEPER_ENDED || m.kind == KEEPER_FAILED)) {
		status = m.kind == KEEPER_ENDED ?
				 m.value :
				 ps_cli_spawn_failed(m.value, m.err, "",
						     job->cmd, "--supervise");
		job->release(job, kid);
		return status;
	}
	/* The channel's end: the keeper has released the group, or was
	 * killed. */
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	/* Killed (a harness's SIGKILL of our process group, say): run ends
	 * as if CMD had, by that signal. */
	ps_cli_error("the group's keeper (pid %ld) ended before the command"
		     " did (signal %d)",
		     (long)k, WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

/* The forked keeper (see keeper_main). */
static int keeper_run_fork(struct ps_keeper_job *job)
{
	sigset_t old;
	int fds[2];
	pid_t k, run = getpid();

	ps_cli_block_forwarded(&old);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
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
	return keeper_wait(job, k, fds[0], NULL);
}

extern char **environ;

/* The whole keeper's environment: CMD's, without LD_PRELOAD (portshim
 * itself runs without the shim). NULL on failure. */
static char **keeper_environ(void)
{
	size_t n = 0, i, j = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[j++] = environ[i];
	return env;
}

/*
 * The thin keeper (keeper_int.h): made with clone(CLONE_VM), it costs a
 * tenth of a fork. It starts only after `run` has named it CMD's owner
 * (its pid and start time are known once it exists) and made the lists
 * it needs.
 */
static int keeper_run_thin(struct ps_keeper_job *job)
{
	struct ps_thin *t;
	struct ps_ident kid;
	sigset_t old, sigs;
	char owner[64];
	int fds[2], err, rc;
	pid_t k;

	ps_cli_block_forwarded(&old);
	keeper_sigs(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	t = ps_thin_prepare(job->cmd, job->run_argv);
	if (t == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
		err = errno;
		goto fail;
	}
	t->sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (t->sfd < 0) {
		err = errno;
		close(fds[0]);
		close(fds[1]);
		goto fail;
	}
	t->sock = keeper_socket();
	ps_keeper_hand_down(job->reg);
	t->reg_fd = job->reg != NULL ? job->reg->fd : -1;
	memcpy(&t->cmd_mask, &old, sizeof(t->cmd_mask));
	t->chan = fds[1];
	t->run_chan = fds[0];
	t->run = getpid();
	k = ps_thin_start(t);
	err = errno;
	close(fds[1]);
	close(t->sfd);
	if (t->sock >= 0)
		close(t->sock);
	if (t->reg_fd >= 0)
		fcntl(t->reg_fd, F_SETFD, FD_CLOEXEC);
	if (k < 0) {
		close(fds[0]);
		goto fail;
	}
	/* Until the byte below, the keeper waits and we alone touch our
	 * memory. */
	rc = ps_proc_ident(k, &kid);
	if (rc == 0 && job->owner == NULL) {
		ps_ident_format(&kid, owner, sizeof(owner));
		if (setenv("PORTSHIM_GROUP_OWNER", owner, 1) < 0)
			rc = -errno;
	}
	t->envp = environ;
	if (rc == 0) {
		t->resume_envp = keeper_environ();
		if (t->resume_envp == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0 && write(fds[0], "g", 1) != 1)
		rc = -errno;
	if (rc < 0) {
		/* The keeper sees the channel's end and exits. */
		close(fds[0]);
		while (waitpid(k, NULL, 0) < 0 && errno == EINTR)
			;
		err = -rc;
		goto fail;
	}
	/* What we are sent goes to the keeper, which passes it on to CMD. */
	ps_cli_forward(k);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return keeper_wait(job, k, fds[0], &kid);

fail:
	ps_cli_error("cannot start the group's keeper: %s", strerror(err));
	sigprocmask(SIG_SETMASK, &old, NULL);
	return PS_EXIT_RUN_FAILED;
}

int ps_keeper_run(struct ps_keeper_job *job)
{
	/* An ignored SIGCHLD (inherited across exec) would have the kernel
	 * reap CMD unseen: the keeper could never learn how it ended. */
	signal(SIGCHLD, SIG_DFL);
	if (job->sv == NULL && ps_thin_possible())
		return keeper_run_thin(job);
	return keeper_run_fork(job);
}
