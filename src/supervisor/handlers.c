/* SPDX-License-Identifier: MIT */
/*
 * handlers.c - what the supervisor does with each intercepted call.
 *
 * The rules are the preload library's (DESIGN.md "What is rewritten"),
 * decided by the same policy code:
 *
 *   bind of a tagged port: the policy chooses the real port and the
 *   supervisor binds the target's own socket to it (on a copy of its
 *   descriptor: same open file description, so the target's socket is
 *   bound, with no window between choosing and binding);
 *
 *   connect, sendto, sendmsg, sendmmsg to a local address and a tagged
 *   port: the supervisor performs the call on the target's socket with
 *   the real port. A non-blocking socket stays non-blocking (the flag
 *   lives in the shared open file description, never touched here), so
 *   EINPROGRESS reaches the target as it would have. The data of a send
 *   is copied out of the target first;
 *
 *   getsockname, getpeername reporting one of the group's real ports:
 *   the supervisor writes the address with the virtual port into the
 *   target's buffer (no more than the buffer holds) and the kernel's
 *   length into its length;
 *
 *   everything else: the kernel runs the call as it is (CONTINUE).
 *
 * Interrupted calls: when a signal interrupts a thread waiting for our
 * answer (kernels before 5.19, or a signal before we read the
 * notification), the kernel drops the notification and restarts the
 * call, which then arrives as a new notification. A bind, connect or
 * send that we had already performed must not be performed twice: its
 * result is kept for a few seconds as a record, and an identical call
 * from the same thread gets that result instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "log.h"
#include "policy.h"
#include "supcall.h"
#include "sv.h"

/* Data copied out of a target for one send. */
#define STREAM_DATA_MAX (256u << 10) /* more is a short write */
#define DGRAM_DATA_MAX 65536u	     /* more is EMSGSIZE, as for UDP */
#define CONTROL_MAX 65536u	     /* ancillary data of one message */
#define MMSG_DATA_MAX (8u << 20)     /* all messages of one sendmmsg */
#define VLEN_MAX 1024u		     /* UIO_MAXIOV: the kernel's cap */

#define RECORD_NS 5000000000ull /* how long a record is kept */

/* ------------------------------------------------------------ answers */

int ps_sv_answer(struct ps_supervisor *sv, uint64_t id, bool cont, int64_t val,
		 int err)
{
	/* The kernel may know a larger structure than our headers. */
	union {
		struct seccomp_notif_resp resp;
		char bytes[256];
	} u;

	memset(&u, 0, sizeof(u));
	u.resp.id = id;
	if (cont) {
		u.resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else if (err != 0) {
		u.resp.error = -err;
	} else {
		u.resp.val = val;
	}
	if (ioctl(sv->listener, SECCOMP_IOCTL_NOTIF_SEND, &u.resp) == 0)
		return 0;
	return -errno;
}

int ps_sv_reply(struct ps_supervisor *sv, struct ps_sv_call *c, bool cont,
		int64_t val, int err)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	return ps_sv_answer(sv, c->id, cont, val, err);
}

void ps_sv_call_free(struct ps_sv_call *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	ps_sv_task_put(c->task);
	free(c);
}

/* ------------------------------------------------------------ records */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool record_match(const struct ps_sv_record *r,
			 const struct ps_sv_call *c)
{
	return r->used && r->tid == c->tid && r->nr == c->nr &&
	       r->start == c->task->ident.start &&
	       memcmp(r->args, c->args, sizeof(r->args)) == 0;
}

/* Keeps the result of a performed call whose answer was not delivered. */
static void record_put(struct ps_supervisor *sv, const struct ps_sv_call *c,
		       int64_t val, int err)
{
	uint64_t now = mono_ns();
	struct ps_sv_record *slot = &sv->recs[0];

	pthread_mutex_lock(&sv->rec_mu);
	for (int i = 0; i < PS_SV_RECORDS; i++) {
		struct ps_sv_record *r = &sv->recs[i];

		if (!r->used || r->expires_ns < now) {
			slot = r;
			break;
		}
		if (r->expires_ns < slot->expires_ns)
			slot = r;
	}
	slot->used = true;
	slot->tid = c->tid;
	slot->start = c->task->ident.start;
	slot->nr = c->nr;
	memcpy(slot->args, c->args, sizeof(slot->args));
	slot->val = val;
	slot->err = err;
	slot->expires_ns = now + RECORD_NS;
	pthread_mutex_unlock(&sv->rec_mu);
}

/* The recorded result of the same call by the same thread, if any. */
static bool record_take(struct ps_supervisor *sv, const struct ps_sv_call *c,
			int64_t *val, int *err)
{
	uint64_t now = mono_ns();
	bool found = false;

	pthread_mutex_lock(&sv->rec_mu);
	for (int i = 0; i < PS_SV_RECORDS && !found; i++) {
		struct ps_sv_record *r = &sv->recs[i];

		if (r->used && r->expires_ns < now)
			r->used = false;
		if (record_match(r, c)) {
			*val = r->val;
			*err = r->err;
			r->used = false;
			found = true;
		}
	}
	pthread_mutex_unlock(&sv->rec_mu);
	return found;
}

/*
 * Answers a call that had an effect (a bind, a connect, a send); keeps
 * the result if the thread has left the call meanwhile.
 */
static void answer_done(struct ps_supervisor *sv, struct ps_sv_call *c,
			int64_t val, int err)
{
	if (ps_sv_reply(sv, c, false, val, err) == -ENOENT)
		record_put(sv, c, val, err);
}

/* ---------------------------------------------------------- classify */

/* "tcp 127.0.0.1:8080", for log lines. */
static void describe(const struct ps_sv_call *c, char *buf, size_t len)
{
	ps_front_describe(c->proto, &c->addr.sa, c->port, buf, len);
}

/*
 * Reads a socket address of len bytes at addr in the target into c.
 * Returns true if it is an AF_INET/AF_INET6 address with a non-zero port
 * (the only ones portshim may rewrite). Anything the kernel would refuse
 * (a bad pointer, a length over sockaddr_storage) is left to the kernel.
 */
static bool read_addr(struct ps_sv_call *c, uint64_t addr, uint64_t len)
{
	if (addr == 0 || len < sizeof(sa_family_t) ||
	    len > sizeof(struct sockaddr_storage))
		return false;
	if (ps_sv_mem_read(c->tid, addr, &c->addr, (size_t)len) != 0)
		return false;
	c->addrlen = (socklen_t)len;
	return ps_sockaddr_port(&c->addr.sa, c->addrlen, &c->port) &&
	       c->port != 0;
}

/* The socket's type (SOCK_STREAM, SOCK_DGRAM), or 0. */
static int socket_type(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return 0;
	return type;
}

/* Log lines for threads that cannot be inspected: a few, then quiet. */
static void inspect_failed(pid_t tid, int rc)
{
	static unsigned count;

	if (count >= 5)
		return;
	count++;
	PS_ERROR("cannot inspect supervised thread %d: %s; its socket calls"
		 " run unchanged%s",
		 (int)tid, strerror(-rc),
		 count == 5 ? " (further such lines suppressed)" : "");
}

/*
 * Takes the thread's entry (and with it its environment's policy). False
 * with *verdict set when the call is to run as it is or was dropped.
 */
static bool get_task(struct ps_supervisor *sv, struct ps_sv_call *c,
		     enum ps_sv_verdict *verdict)
{
	int rc = ps_sv_task_get(&sv->targets, c->tid, sv->listener, c->id,
				&c->task);

	if (rc == 0)
		return true;
	if (rc == -ENOENT) {
		*verdict = PS_SV_DROP;
	} else {
		inspect_failed(c->tid, rc);
		*verdict = PS_SV_CONTINUE;
	}
	return false;
}

/* The flags of a sendto, sendmsg or sendmmsg (0 for other calls). */
static uint64_t send_flags(const struct ps_sv_call *c)
{
	switch (c->nr) {
	case SYS_sendto:
	case SYS_sendmmsg:
		return c->args[3];
	case SYS_sendmsg:
		return c->args[2];
	default:
		return 0;
	}
}

/* What the call does with its address, as front.h has it. */
static enum ps_front_op op_of(const struct ps_sv_call *c)
{
	switch (c->nr) {
	case SYS_bind:
		return PS_FRONT_BIND;
	case SYS_connect:
		return PS_FRONT_CONNECT;
	default:
		return PS_FRONT_SEND;
	}
}

/*
 * The checks every call with a destination or a bind address passes
 * before a worker gets it: the thread is not inside portshim's own code,
 * and the call is the policy's as front.h decides for the shim too (the
 * port tagged for the socket's protocol in the thread's environment, a
 * destination on this host, a TCP send only with MSG_FASTOPEN). Takes a
 * copy of the descriptor into c->fd.
 */
static enum ps_sv_verdict check_tagged(struct ps_supervisor *sv,
				       struct ps_sv_call *c)
{
	const struct ps_sv_env *env;
	enum ps_sv_verdict v = PS_SV_CONTINUE;
	int proto;

	if (c->task == NULL && !get_task(sv, c, &v))
		return v;
	env = c->task->env;
	if (!env->active ||
	    !ps_front_candidate(&env->cfg, &c->addr.sa, c->addrlen, &c->port))
		return PS_SV_CONTINUE;
	if (ps_sv_lock_held_by(env, c->tid))
		return PS_SV_CONTINUE;
	c->fd = ps_sv_task_fd(c->task, (int)c->args[0]);
	if (c->fd < 0)
		return PS_SV_CONTINUE; /* EBADF and such: the kernel says */
	proto = ps_front_socket_proto(c->fd);
	if (!ps_front_ours(&env->cfg, op_of(c), proto, &c->addr.sa, c->port,
			   (int)send_flags(c)))
		return PS_SV_CONTINUE;
	c->proto = (enum ps_proto)proto;
	c->socktype = socket_type(c->fd);
	/* A connect or send on a blocking socket may wait: not in the loop. */
	if (c->nr != SYS_bind)
		c->may_block =
			!(fcntl(c->fd, F_GETFL) & O_NONBLOCK) &&
			!(c->nr == SYS_connect && c->socktype == SOCK_DGRAM) &&
			!(c->nr == SYS_sendto && (c->args[3] & MSG_DONTWAIT)) &&
			!((c->nr == SYS_sendmsg || c->nr == SYS_sendmmsg) &&
			  (c->args[2 + (c->nr == SYS_sendmmsg)] &
			   MSG_DONTWAIT));
	/* What was read is the thread's, and the descriptor its own. */
	if (!ps_sv_notif_valid(sv->listener, c->id))
		return PS_SV_DROP;
	return PS_SV_WORK;
}

/* sendmmsg: does any message name a tagged local destination? */
static enum ps_sv_verdict classify_mmsg(struct ps_supervisor *sv,
					struct ps_sv_call *c)
{
	unsigned vlen =
		(unsigned)(c->args[2] < VLEN_MAX ? c->args[2] : VLEN_MAX);
	struct mmsghdr *vec;
	enum ps_sv_verdict v = PS_SV_CONTINUE;

	if (vlen == 0)
		return PS_SV_CONTINUE;
	vec = malloc(vlen * sizeof(*vec));
	if (vec == NULL)
		return PS_SV_CONTINUE;
	if (ps_sv_mem_read(c->tid, c->args[1], vec, vlen * sizeof(*vec)))
		goto out;
	for (unsigned i = 0; i < vlen; i++) {
		const struct msghdr *m = &vec[i].msg_hdr;

		if (!read_addr(c, (uint64_t)(uintptr_t)m->msg_name,
			       m->msg_namelen))
			continue;
		if (c->fd >= 0) {
			close(c->fd);
			c->fd = -1;
		}
		v = check_tagged(sv, c);
		if (v != PS_SV_CONTINUE)
			break;
	}
out:
	free(vec);
	return v;
}

enum ps_sv_verdict ps_sv_classify(struct ps_supervisor *sv,
				  struct ps_sv_call *c, int64_t *val, int *err)
{
	enum ps_sv_verdict v = PS_SV_CONTINUE;
	socklen_t len;

	switch (c->nr) {
	case SYS_execve:
#ifdef SYS_execveat
	case SYS_execveat:
#endif
		ps_sv_task_forget(&sv->targets, c->tid);
		return PS_SV_CONTINUE;
	case SYS_bind:
	case SYS_connect:
		if (!read_addr(c, c->args[1], c->args[2]))
			return PS_SV_CONTINUE;
		v = check_tagged(sv, c);
		break;
	case SYS_sendto:
		if (!read_addr(c, c->args[4], c->args[5]))
			return PS_SV_CONTINUE;
		v = check_tagged(sv, c);
		break;
	case SYS_sendmsg:
		if (ps_sv_mem_read(c->tid, c->args[1], &c->msg,
				   sizeof(c->msg)) != 0 ||
		    !read_addr(c, (uint64_t)(uintptr_t)c->msg.msg_name,
			       c->msg.msg_namelen))
			return PS_SV_CONTINUE;
		v = check_tagged(sv, c);
		break;
	case SYS_sendmmsg:
		v = classify_mmsg(sv, c);
		break;
	case SYS_getsockname:
	case SYS_getpeername:
		if (!get_task(sv, c, &v))
			return v;
		if (!c->task->env->active)
			return PS_SV_CONTINUE;
		c->fd = ps_sv_task_fd(c->task, (int)c->args[0]);
		if (c->fd < 0)
			return PS_SV_CONTINUE;
		len = sizeof(c->addr);
		if ((c->nr == SYS_getsockname ?
			     ps_supcall_getsockname(sv->cookie, c->fd,
						    &c->addr.sa, &len) :
			     ps_supcall_getpeername(sv->cookie, c->fd,
						    &c->addr.sa, &len)) != 0)
			return PS_SV_CONTINUE;
		c->addrlen = len;
		if (!ps_front_reported(&c->task->env->cfg, &c->addr.sa, len,
				       c->nr == SYS_getpeername, &c->port))
			return PS_SV_CONTINUE;
		return PS_SV_WORK;
	default:
		return PS_SV_CONTINUE;
	}
	/* A call whose earlier notification we answered too late. */
	if (v == PS_SV_WORK && record_take(sv, c, val, err))
		return PS_SV_ANSWER;
	return v;
}

struct ps_sv_call *ps_sv_take(struct ps_supervisor *sv,
			      const struct seccomp_notif *req,
			      enum ps_sv_verdict *verdict)
{
	struct ps_sv_call *c;
	int64_t val = 0;
	int err = 0;

	*verdict = PS_SV_CONTINUE;
	c = calloc(1, sizeof(*c));
	if (c == NULL || req->pid == 0) {
		/* Out of memory, or a thread we cannot name: let it be. */
		free(c);
		ps_sv_answer(sv, req->id, true, 0, 0);
		return NULL;
	}
	c->id = req->id;
	c->tid = (pid_t)req->pid;
	c->nr = req->data.nr;
	memcpy(c->args, req->data.args, sizeof(c->args));
	c->fd = -1;
	*verdict = ps_sv_classify(sv, c, &val, &err);
	switch (*verdict) {
	case PS_SV_CONTINUE:
		ps_sv_reply(sv, c, true, 0, 0);
		break;
	case PS_SV_ANSWER:
		ps_sv_reply(sv, c, false, val, err);
		break;
	case PS_SV_DROP:
		break;
	case PS_SV_WORK:
		return c;
	}
	ps_sv_call_free(c);
	return NULL;
}

/* --------------------------------------------------------------- act */

struct bind_arg {
	struct ps_supervisor *sv;
	struct ps_sv_call *c;
};

/* Binds the target's socket to real, as ps_try_bind_fn. */
static int try_bind(void *arg, uint16_t real)
{
	struct bind_arg *b = arg;
	union ps_sockaddr copy;

	/* Never with privileges the process lacks (see target.h). */
	if (!ps_sv_task_may_bind(&b->sv->targets, b->c->task, real))
		return -EACCES;
	ps_sockaddr_copy_port(&copy, &b->c->addr.sa, b->c->addrlen, real);
	if (ps_supcall_bind(b->sv->cookie, b->c->fd, &copy.sa, b->c->addrlen) ==
	    0)
		return 0;
	return -errno;
}

static void act_bind(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	struct bind_arg arg = { sv, c };
	char desc[96];
	uint16_t real;
	int rc;

	describe(c, desc, sizeof(desc));
	rc = ps_policy_bind_as(&c->task->env->pol, &c->task->ident, c->proto,
			       c->port, try_bind, &arg, &real, desc);
	if (rc == PS_PASS)
		ps_sv_reply(sv, c, true, 0, 0);
	else
		answer_done(sv, c, 0, rc < 0 ? -rc : 0);
}

/*
 * The destination's real port, in c->addr. Returns 0, PS_PASS (send it
 * as it is) or -errno (fail the call).
 */
static int rewrite_dest(struct ps_sv_call *c)
{
	union ps_sockaddr copy;
	char desc[96] = "";
	uint16_t real;
	int rc;

	if (ps_log_level() >= PS_LOG_INFO)
		describe(c, desc, sizeof(desc));
	rc = ps_policy_connect(&c->task->env->pol, c->proto, c->port, &real,
			       desc);
	if (rc != 0)
		return rc;
	ps_sockaddr_copy_port(&copy, &c->addr.sa, c->addrlen, real);
	c->addr = copy;
	return 0;
}

static void act_connect(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	int rc = rewrite_dest(c);

	if (rc == PS_PASS) {
		ps_sv_reply(sv, c, true, 0, 0);
		return;
	}
	if (rc == 0 &&
	    ps_supcall_connect(sv->cookie, c->fd, &c->addr.sa, c->addrlen) != 0)
		rc = -errno;
	answer_done(sv, c, 0, -rc);
}

/*
 * How many bytes of a send of len bytes to copy: a stream socket may
 * write less than asked, a datagram must go whole. Returns the count, or
 * -EMSGSIZE.
 */
static ssize_t send_size(const struct ps_sv_call *c, uint64_t len)
{
	if (c->socktype == SOCK_STREAM)
		return (ssize_t)(len < STREAM_DATA_MAX ? len : STREAM_DATA_MAX);
	if (len > DGRAM_DATA_MAX)
		return -EMSGSIZE;
	return (ssize_t)len;
}

/*
 * Ends a send performed for the target: the kernel would have raised
 * SIGPIPE in the target on EPIPE without MSG_NOSIGNAL (we always pass it,
 * so that the supervisor is not the one killed).
 */
static void send_done(struct ps_supervisor *sv, struct ps_sv_call *c, ssize_t n,
		      int flags)
{
	int err = n < 0 ? errno : 0;

	if (err == EPIPE && !(flags & MSG_NOSIGNAL))
		ps_supcall_direct(SYS_tgkill, c->task->tgid, c->tid, SIGPIPE,
				  0);
	answer_done(sv, c, n < 0 ? 0 : n, err);
}

static void act_sendto(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	int flags = (int)c->args[3];
	ssize_t size, n;
	char *data = NULL;
	int rc = rewrite_dest(c);

	if (rc == PS_PASS) {
		ps_sv_reply(sv, c, true, 0, 0);
		return;
	}
	if (rc < 0)
		goto fail;
	size = send_size(c, c->args[2]);
	if (size < 0) {
		rc = (int)size;
		goto fail;
	}
	data = malloc(size > 0 ? (size_t)size : 1);
	if (data == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = ps_sv_mem_read(c->tid, c->args[1], data, (size_t)size);
	if (rc < 0)
		goto fail;
	n = ps_supcall_sendto(sv->cookie, c->fd, data, (size_t)size,
			      flags | MSG_NOSIGNAL, &c->addr.sa, c->addrlen);
	send_done(sv, c, n, flags);
	free(data);
	return;
fail:
	free(data);
	answer_done(sv, c, 0, -rc);
}

/*
 * Copies a message of the target (header m, in the target's memory
 * layout, which is ours: the filter only notifies the native ABI) into
 * local buffers: its data gathered into one buffer (at most *budget
 * bytes are taken from the budget), its ancillary data. The name is set
 * by the caller. Returns 0 or -errno; on success *data and *control are
 * to be freed.
 */
static int copy_msg(const struct ps_sv_call *c, const struct msghdr *m,
		    size_t *budget, struct msghdr *out, struct iovec *iov,
		    char **data, char **control)
{
	struct iovec *tiov = NULL;
	uint64_t total = 0;
	size_t off = 0, want;
	ssize_t size;
	int rc;

	*data = NULL;
	*control = NULL;
	memset(out, 0, sizeof(*out));
	if (m->msg_iovlen > VLEN_MAX)
		return -EMSGSIZE;
	if (m->msg_iovlen > 0) {
		tiov = malloc(m->msg_iovlen * sizeof(*tiov));
		if (tiov == NULL)
			return -ENOMEM;
		rc = ps_sv_mem_read(c->tid, (uint64_t)(uintptr_t)m->msg_iov,
				    tiov, m->msg_iovlen * sizeof(*tiov));
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < m->msg_iovlen; i++)
		total += tiov[i].iov_len;
	size = send_size(c, total);
	if (size < 0) {
		rc = (int)size;
		goto out;
	}
	if ((size_t)size > *budget) {
		if (c->socktype != SOCK_STREAM) {
			rc = -ENOBUFS;
			goto out;
		}
		size = (ssize_t)*budget;
	}
	*data = malloc(size > 0 ? (size_t)size : 1);
	if (*data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->msg_iovlen && off < (size_t)size; i++) {
		want = tiov[i].iov_len;
		if (want > (size_t)size - off)
			want = (size_t)size - off;
		rc = ps_sv_mem_read(c->tid,
				    (uint64_t)(uintptr_t)tiov[i].iov_base,
				    *data + off, want);
		if (rc)
			goto out;
		off += want;
	}
	*budget -= (size_t)size;
	iov->iov_base = *data;
	iov->iov_len = (size_t)size;
	out->msg_iov = iov;
	out->msg_iovlen = 1;
	if (m->msg_controllen > 0 && m->msg_control != NULL) {
		if (m->msg_controllen > CONTROL_MAX) {
			rc = -ENOBUFS;
			goto out;
		}
		*control = malloc(m->msg_controllen);
		if (*control == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = ps_sv_mem_read(c->tid, (uint64_t)(uintptr_t)m->msg_control,
				    *control, m->msg_controllen);
		if (rc)
			goto out;
		out->msg_control = *control;
		out->msg_controllen = m->msg_controllen;
	}
	rc = 0;
out:
	free(tiov);
	if (rc) {
		free(*data);
		free(*control);
		*data = NULL;
		*control = NULL;
	}
	return rc;
}

static void act_sendmsg(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	int flags = (int)c->args[2];
	size_t budget = MMSG_DATA_MAX;
	char *data = NULL, *control = NULL;
	struct msghdr m;
	struct iovec iov;
	ssize_t n;
	int rc = rewrite_dest(c);

	if (rc == PS_PASS) {
		ps_sv_reply(sv, c, true, 0, 0);
		return;
	}
	if (rc == 0)
		rc = copy_msg(c, &c->msg, &budget, &m, &iov, &data, &control);
	if (rc < 0) {
		answer_done(sv, c, 0, -rc);
		return;
	}
	m.msg_name = &c->addr;
	m.msg_namelen = c->addrlen;
	n = ps_supcall_sendmsg(sv->cookie, c->fd, &m, flags | MSG_NOSIGNAL);
	send_done(sv, c, n, flags);
	free(data);
	free(control);
}

/* One message of a sendmmsg, as sent. */
struct out_msg {
	union ps_sockaddr name;
	struct iovec iov;
	char *data;
	char *control;
};

/*
 * Prepares message i of a sendmmsg: its destination rewritten if it is
 * a tagged local one. Returns 0, or -errno (the message cannot be sent).
 */
static int prepare_mmsg(struct ps_supervisor *sv, struct ps_sv_call *c,
			const struct msghdr *tm, size_t *budget,
			struct mmsghdr *lm, struct out_msg *om)
{
	const struct ps_sv_env *env = c->task->env;
	int rc;

	(void)sv;
	rc = copy_msg(c, tm, budget, &lm->msg_hdr, &om->iov, &om->data,
		      &om->control);
	if (rc)
		return rc;
	lm->msg_hdr.msg_iov = &om->iov;
	if (tm->msg_name == NULL || tm->msg_namelen == 0)
		return 0;
	if (tm->msg_namelen > sizeof(om->name))
		return -EINVAL;
	if (!read_addr(c, (uint64_t)(uintptr_t)tm->msg_name, tm->msg_namelen)) {
		/* Not a port of ours: the name goes out as it is. */
		rc = ps_sv_mem_read(c->tid, (uint64_t)(uintptr_t)tm->msg_name,
				    &om->name, tm->msg_namelen);
		if (rc)
			return rc;
	} else {
		if (ps_portspec_has(&env->cfg.ports, c->proto, c->port) &&
		    ps_sockaddr_is_host(&c->addr.sa)) {
			rc = rewrite_dest(c);
			if (rc < 0)
				return rc;
		}
		om->name = c->addr;
	}
	lm->msg_hdr.msg_name = &om->name;
	lm->msg_hdr.msg_namelen = tm->msg_namelen;
	return 0;
}

static void act_sendmmsg(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	unsigned vlen =
		(unsigned)(c->args[2] < VLEN_MAX ? c->args[2] : VLEN_MAX);
	int flags = (int)c->args[3];
	size_t budget = MMSG_DATA_MAX;
	struct mmsghdr *tvec = NULL, *lvec = NULL;
	struct out_msg *om = NULL;
	unsigned n = 0;
	int sent = 0, rc = 0;

	tvec = calloc(vlen, sizeof(*tvec));
	lvec = calloc(vlen, sizeof(*lvec));
	om = calloc(vlen, sizeof(*om));
	if (tvec == NULL || lvec == NULL || om == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ps_sv_mem_read(c->tid, c->args[1], tvec, vlen * sizeof(*tvec));
	if (rc)
		goto out;
	/*
	 * A message that cannot be sent (refused destination, no room)
	 * ends the batch there, as the kernel does: the messages before it
	 * are sent, and its error is the call's only if it is the first.
	 */
	for (n = 0; n < vlen; n++) {
		rc = prepare_mmsg(sv, c, &tvec[n].msg_hdr, &budget, &lvec[n],
				  &om[n]);
		if (rc)
			break;
	}
	if (n == 0)
		goto out;
	rc = 0;
	sent = ps_supcall_sendmmsg(sv->cookie, c->fd, lvec, n,
				   flags | MSG_NOSIGNAL);
	if (sent < 0) {
		rc = -errno;
		if (rc == -EPIPE && !(flags & MSG_NOSIGNAL))
			ps_supcall_direct(SYS_tgkill, c->task->tgid, c->tid,
					  SIGPIPE, 0);
		goto out;
	}
	for (int i = 0; i < sent; i++) {
		uint64_t at = c->args[1] + (uint64_t)i * sizeof(*tvec) +
			      offsetof(struct mmsghdr, msg_len);

		ps_sv_mem_write(c->tid, at, &lvec[i].msg_len,
				sizeof(lvec[i].msg_len));
	}
out:
	for (unsigned i = 0; om != NULL && i < vlen; i++) {
		free(om[i].data);
		free(om[i].control);
	}
	free(tvec);
	free(lvec);
	free(om);
	answer_done(sv, c, sent, rc < 0 ? -rc : 0);
}

static void act_getname(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	socklen_t bufsize;
	uint16_t vport;
	size_t n;
	int rc;

	if (ps_policy_reverse(&c->task->env->pol, c->port, &vport) != 0) {
		ps_sv_reply(sv, c, true, 0, 0);
		return;
	}
	rc = ps_sv_mem_read(c->tid, c->args[2], &bufsize, sizeof(bufsize));
	if (rc == 0 && (int)bufsize < 0)
		rc = -EINVAL;
	if (rc == 0) {
		ps_sockaddr_patch_port(&c->addr.sa, sizeof(c->addr), vport);
		n = bufsize < c->addrlen ? bufsize : c->addrlen;
		rc = ps_sv_mem_write(c->tid, c->args[1], &c->addr, n);
	}
	if (rc == 0)
		rc = ps_sv_mem_write(c->tid, c->args[2], &c->addrlen,
				     sizeof(c->addrlen));
	ps_sv_reply(sv, c, false, 0, rc < 0 ? -rc : 0);
}

void ps_sv_act(struct ps_supervisor *sv, struct ps_sv_call *c)
{
	switch (c->nr) {
	case SYS_bind:
		act_bind(sv, c);
		break;
	case SYS_connect:
		act_connect(sv, c);
		break;
	case SYS_sendto:
		act_sendto(sv, c);
		break;
	case SYS_sendmsg:
		act_sendmsg(sv, c);
		break;
	case SYS_sendmmsg:
		act_sendmmsg(sv, c);
		break;
	case SYS_getsockname:
	case SYS_getpeername:
		act_getname(sv, c);
		break;
	default:
		ps_sv_reply(sv, c, true, 0, 0);
		break;
	}
}
