/* SPDX-License-Identifier: MIT */
/*
 * supervise.c - the supervisor's life: the handshake with the child that
 * installs the filter, the notification loop, and the worker threads
 * (see supervise.h and sv.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "inspect.h"
#include "log.h"
#include "supcall.h"
#include "supervise.h"
#include "sv.h"

/*
 * Worker threads: one per call in progress, kept for the next ones. A
 * blocking connect holds its worker until it completes; beyond this many
 * at once, further calls wait in the queue.
 */
#define WORKERS_MAX 256

/* How long ps_supervise_stop waits for calls in progress. */
#define STOP_WAIT_MS 2000

static int read_full(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPIPE;
}

static int write_full(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void free_supervisor(struct ps_supervisor *sv)
{
	close_fd(&sv->up[0]);
	close_fd(&sv->up[1]);
	close_fd(&sv->down[0]);
	close_fd(&sv->down[1]);
	close_fd(&sv->stop[0]);
	close_fd(&sv->stop[1]);
	close_fd(&sv->listener);
	free(sv);
}

/* The cookie of an enclosing supervisor, or a fresh one. */
static int choose_cookie(uint64_t *cookie)
{
	if (ps_supcall_env_cookie(cookie))
		return 0;
	do {
		if (getrandom(cookie, sizeof(*cookie), 0) !=
		    (ssize_t)sizeof(*cookie))
			return -errno;
	} while (*cookie == 0);
	return 0;
}

/*
 * Each supervised thread costs two descriptors while we know it (its
 * /proc directory and a pidfd): raise the soft limit as far as allowed.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int ps_supervise_prepare(struct ps_supervisor **out,
			 const struct ps_config *cfg, char *why, size_t len)
{
	struct seccomp_notif_sizes sizes;
	char hex[PS_SUPCALL_COOKIE_LEN + 1];
	struct ps_supervisor *sv;
	int rc;

	*out = NULL;
	/*
	 * Under a portshim supervisor already: it sees CMD too, and decides
	 * from CMD's own environment, so CMD gets exactly the policy ours
	 * would give it. (The kernel allows one listener per chain of
	 * filters: installing ours would fail with EBUSY.)
	 */
	if (ps_supcall_supervised()) {
		ps_log_setup(cfg->log_level, cfg->log_file);
		PS_INFO("already under a portshim supervisor, which sees the "
			"command's calls too");
		return 0;
	}
	sv = calloc(1, sizeof(*sv));
	if (sv == NULL) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	sv->listener = -1;
	sv->up[0] = sv->up[1] = sv->down[0] = sv->down[1] = -1;
	sv->stop[0] = sv->stop[1] = -1;
	rc = ps_sv_kernel_check(why, len);
	if (rc)
		goto fail;
	rc = choose_cookie(&sv->cookie);
	if (rc) {
		snprintf(why, len, "cannot draw a random cookie: %s",
			 strerror(-rc));
		goto fail;
	}
	rc = ps_sv_filter_build(&sv->filter, sv->cookie);
	if (rc) {
		snprintf(why, len, "cannot build the seccomp filter");
		goto fail;
	}
	memset(&sizes, 0, sizeof(sizes));
	if (ps_supcall_direct(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0,
			      (long)&sizes, 0) != 0) {
		rc = -errno;
		snprintf(why, len,
			 "cannot ask the kernel for the seccomp "
			 "notification sizes: %s",
			 strerror(errno));
		goto fail;
	}
	sv->notif_size = sizes.seccomp_notif > sizeof(struct seccomp_notif) ?
				 sizes.seccomp_notif :
				 sizeof(struct seccomp_notif);
	sv->resp_size = sizes.seccomp_notif_resp;
	if (pipe2(sv->up, O_CLOEXEC) != 0 || pipe2(sv->down, O_CLOEXEC) != 0 ||
	    pipe2(sv->stop, O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(why, len, "cannot make a pipe: %s", strerror(errno));
		goto fail;
	}
	rc = ps_sv_targets_init(&sv->targets, sv->cookie);
	if (rc) {
		snprintf(why, len,
			 "cannot take the supervisor's own "
			 "credentials and configuration: %s",
			 strerror(-rc));
		goto fail;
	}
	pthread_mutex_init(&sv->mu, NULL);
	pthread_mutex_init(&sv->rec_mu, NULL);
	pthread_cond_init(&sv->work_cv, NULL);
	pthread_cond_init(&sv->idle_cv, NULL);
	ps_supcall_format(sv->cookie, hex);
	if (setenv(PS_SUPCALL_ENV, hex, 1) != 0) {
		rc = -errno;
		snprintf(why, len, "cannot set %s: %s", PS_SUPCALL_ENV,
			 strerror(errno));
		goto fail;
	}
	ps_log_setup(cfg->log_level, cfg->log_file);
	raise_nofile();
	*out = sv;
	return 0;
fail:
	ps_sv_targets_free(&sv->targets);
	free_supervisor(sv);
	return rc;
}

int ps_supervise_child(struct ps_supervisor *sv)
{
	int lfd, rc;
	char ack = 1;

	if (sv == NULL)
		return 0;
	/*
	 * A supervised program cannot outlive its supervisor usefully:
	 * every call the filter stops would fail with ENOSYS. So it dies
	 * with it (a test harness's SIGKILL to the supervisor, say) rather
	 * than linger, half-working, on the group's port. Set before the
	 * handshake: a parent already gone never acknowledges it.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return -errno;
	lfd = ps_sv_filter_install(&sv->filter);
	/* From here on our own bind, connect... would wait for the parent;
	 * read, write and close are not intercepted. */
	rc = write_full(sv->up[1], &lfd, sizeof(lfd));
	if (lfd < 0)
		return lfd;
	if (rc == 0)
		rc = read_full(sv->down[0], &ack, 1);
	close(lfd);
	if (rc == 0 && ack != 0)
		rc = -EPROTO;
	return rc;
}

/* ---------------------------------------------------------- workers */

static void *worker_main(void *arg)
{
	struct ps_supervisor *sv = arg;
	struct ps_sv_call *c;

	pthread_mutex_lock(&sv->mu);
	for (;;) {
		while (sv->head == NULL && !sv->stopping) {
			sv->nidle++;
			pthread_cond_wait(&sv->work_cv, &sv->mu);
			sv->nidle--;
		}
		if (sv->head == NULL)
			break;
		c = sv->head;
		sv->head = c->next;
		sv->nqueued--;
		if (sv->head == NULL)
			sv->tail = NULL;
		sv->nbusy++;
		pthread_mutex_unlock(&sv->mu);
		ps_sv_act(sv, c);
		ps_sv_call_free(c);
		pthread_mutex_lock(&sv->mu);
		sv->nbusy--;
		pthread_cond_broadcast(&sv->idle_cv);
	}
	sv->nthreads--;
	pthread_cond_broadcast(&sv->idle_cv);
	pthread_mutex_unlock(&sv->mu);
	return NULL;
}

/* Hands c to a worker, starting one if none is idle. */
static void submit(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	pthread_attr_t attr;
	pthread_t t;
	bool inline_act = false;

	c->next = NULL;
	pthread_mutex_lock(&sv->mu);
	if (sv->tail != NULL)
		sv->tail->next = c;
	else
		sv->head = c;
	sv->tail = c;
	sv->nqueued++;
	/*
	 * One worker per queued call: an idle worker that has been signalled
	 * but has not woken yet still counts as idle, so comparing with the
	 * queue (not just nidle == 0) keeps a call from waiting behind a
	 * connect that blocks for minutes.
	 */
	if (sv->nqueued > sv->nidle && sv->nthreads < WORKERS_MAX) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, worker_main, sv) == 0) {
			sv->nthreads++;
		} else if (sv->nthreads == 0) {
			/* No worker at all: do it here rather than never. */
			sv->head = sv->tail = NULL;
			sv->nqueued = 0;
			inline_act = true;
		}
		pthread_attr_destroy(&attr);
	}
	pthread_cond_signal(&sv->work_cv);
	pthread_mutex_unlock(&sv->mu);
	if (inline_act) {
		ps_sv_act(sv, c);
		ps_sv_call_free(c);
	}
}

/* ------------------------------------------------ notification loop */

static void handle(struct ps_supervisor *sv, const struct seccomp_notif *req)
{
	enum ps_sv_verdict v;
	struct ps_sv_call *c = ps_sv_take(sv, req, &v);

	if (c == NULL)
		return;
	if (c->may_block) {
		submit(sv, c);
		return;
	}
	ps_sv_act(sv, c);
	ps_sv_call_free(c);
}

static void *loop_main(void *arg)
{
	struct ps_supervisor *sv = arg;
	struct seccomp_notif *req;
	struct pollfd p[2];

	req = calloc(1, sv->notif_size);
	if (req == NULL) {
		PS_ERROR("supervisor: out of memory; supervised socket calls"
			 " will fail with ENOSYS");
		return NULL;
	}
	for (;;) {
		p[0] = (struct pollfd){ .fd = sv->listener, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = sv->stop[0], .events = POLLIN };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			PS_ERROR("supervisor: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents != 0)
			break;
		if (!(p[0].revents & POLLIN)) {
			/* POLLHUP: no process uses the filter any more. */
			if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
				break;
			continue;
		}
		memset(req, 0, sv->notif_size);
		if (ioctl(sv->listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
			/* ENOENT: the caller went away before we read it. */
			if (errno == EINTR || errno == ENOENT)
				continue;
			PS_ERROR("supervisor: cannot receive a notification:"
				 " %s",
				 strerror(errno));
			break;
		}
		handle(sv, req);
	}
	free(req);
	return NULL;
}

int ps_supervise_start(struct ps_supervisor *sv, pid_t child, char *why,
		       size_t len)
{
	sigset_t all, old;
	char ack = 1;
	int msg, pidfd, rc;

	if (sv == NULL)
		return 0;
	/* Our copies of the child's ends: a child that dies unblocks us. */
	close_fd(&sv->up[1]);
	close_fd(&sv->down[0]);
	rc = read_full(sv->up[0], &msg, sizeof(msg));
	if (rc) {
		snprintf(why, len,
			 "the command ended before its seccomp "
			 "filter was installed");
		goto out;
	}
	if (msg < 0) {
		rc = msg;
		snprintf(
			why, len, "cannot install the seccomp filter: %s%s",
			strerror(-rc),
			rc == -EACCES || rc == -EPERM ?
				" (is portshim itself confined by a seccomp policy "
				"that forbids seccomp()?)" :
			rc == -EBUSY ?
				" (another seccomp supervisor, not portshim's, "
				"already watches this process)" :
				"");
		goto out;
	}
	pidfd = (int)ps_supcall_direct(SYS_pidfd_open, child, 0, 0, 0);
	if (pidfd < 0) {
		rc = -errno;
	} else {
		sv->listener = (int)ps_supcall_direct(SYS_pidfd_getfd, pidfd,
						      msg, 0, 0);
		rc = sv->listener < 0 ? -errno : 0;
		close(pidfd);
	}
	if (rc) {
		snprintf(
			why, len,
			"cannot take the seccomp listener from the "
			"command's process: %s%s",
			strerror(-rc),
			rc == -EPERM ?
				" (does kernel.yama.ptrace_scope or a "
				"security module forbid ptrace of one's children?)" :
				"");
		goto out;
	}
	fcntl(sv->listener, F_SETFD, FD_CLOEXEC);
	/*
	 * The supervisor's threads never take a signal: `portshim run`'s
	 * handlers (which forward signals to the command) stay on the main
	 * thread.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&sv->loop, NULL, loop_main, sv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(why, len, "cannot start the supervisor thread: %s",
			 strerror(-rc));
		goto out;
	}
	sv->loop_running = true;
	ack = 0;
out:
	if (write_full(sv->down[1], &ack, 1) != 0 && rc == 0) {
		/* The child is gone; the run reports how it ended. */
		rc = 0;
	}
	close_fd(&sv->down[1]);
	close_fd(&sv->up[0]);
	return rc;
}

void ps_supervise_stop(struct ps_supervisor *sv)
{
	struct timespec until;
	bool idle;

	if (sv == NULL)
		return;
	if (sv->loop_running) {
		write_full(sv->stop[1], "x", 1);
		pthread_join(sv->loop, NULL);
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_MS / 1000;
	until.tv_nsec += (long)(STOP_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sv->mu);
	sv->stopping = true;
	pthread_cond_broadcast(&sv->work_cv);
	while (sv->nthreads > 0 &&
	       pthread_cond_timedwait(&sv->idle_cv, &sv->mu, &until) == 0)
		;
	idle = sv->nthreads == 0;
	pthread_mutex_unlock(&sv->mu);
	/*
	 * A worker still in a call (a connect that blocks for a descendant
	 * that outlived the command) keeps the supervisor: it is left to
	 * the end of the process rather than freed under that worker.
	 */
	if (!idle)
		return;
	ps_sv_targets_clear(&sv->targets);
	ps_sv_targets_free(&sv->targets);
	free_supervisor(sv);
}

/* Inspects the program cmd names, found as execvp would. */
static int inspect_cmd(const char *cmd, struct ps_inspect *in)
{
	char path[PATH_MAX];
	int rc;

	rc = ps_inspect_which(cmd, getenv("PATH"), path, sizeof(path));
	if (rc == 0)
		rc = ps_inspect_path(AT_FDCWD, path, in);
	return rc;
}

bool ps_supervise_covers(const char *cmd)
{
	struct ps_inspect in;

	return inspect_cmd(cmd, &in) == 0 && in.verdict != PS_INSPECT_FOREIGN;
}

bool ps_supervise_wanted(const struct ps_config *cfg, const char *cmd)
{
	struct ps_inspect in;

	if (inspect_cmd(cmd, &in) != 0)
		return false;
	switch (in.verdict) {
	case PS_INSPECT_GO:
	case PS_INSPECT_STATIC:
	case PS_INSPECT_MUSL:
		ps_log_setup(cfg->log_level, cfg->log_file);
		PS_INFO("%s %s: running it under the seccomp supervisor "
			"(PORTSHIM_BYPASS=supervise)",
			cmd, in.reason);
		return true;
	default:
		return false;
	}
}
