/* SPDX-License-Identifier: MIT */
/*
 * sv.h - what the files of the supervisor share: the supervisor itself,
 * one intercepted call, and the two halves of handling it.
 *
 * Each notification is handled in two steps:
 *
 *   classify (notification loop): reads what the call names from the
 *   target (the address, the message header), decides with cheap tests
 *   whether portshim has anything to do with it (a tagged port of an
 *   enabled environment, a local destination, a TCP or UDP socket), and
 *   answers "run it as it is" at once when not. It never blocks: no
 *   registry lock, no connect, no send.
 *
 *   act: applies the policy (which takes the registry lock), performs
 *   the rewritten call on a copy of the target's socket descriptor, and
 *   answers with its result. A call that could wait for long (a connect
 *   or a send on a blocking socket) is acted on by a worker thread, so
 *   that it never stalls the other notifications; the others (bind,
 *   getsockname, anything on a non-blocking socket) are acted on at once
 *   in the loop: handing them to a thread would cost more than the call.
 *
 * The registry lock is taken in the loop only after making sure the
 * calling thread does not hold it (ps_sv_lock_held_by), and every other
 * holder is in portshim's own code, whose calls carry the cookie and are
 * never stopped by the filter: so a holder never waits for the loop.
 */
#ifndef PS_SV_SV_H
#define PS_SV_SV_H

#include <linux/seccomp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "filter.h"
#include "portspec.h"
#include "sockaddr.h"
#include "target.h"

/* A call performed for a thread whose answer could not be delivered. */
struct ps_sv_record {
	bool used;
	pid_t tid;
	uint64_t start; /* the process's start time */
	int nr;
	uint64_t args[6];
	int64_t val;
	int err;
	uint64_t expires_ns; /* CLOCK_MONOTONIC */
};

#define PS_SV_RECORDS 32

struct ps_sv_call;

struct ps_supervisor {
	uint64_t cookie;
	struct ps_sv_filter filter;
	int listener;
	int up[2];	   /* child -> parent: listener number or -errno */
	int down[2];	   /* parent -> child: listener taken */
	int stop[2];	   /* wakes the notification loop to stop */
	size_t notif_size; /* what the kernel says the structures are */
	size_t resp_size;
	pthread_t loop;
	bool loop_running;
	struct ps_sv_targets targets; /* notification loop only */

	/* The worker threads and their queue. */
	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* a call was queued, or stop */
	pthread_cond_t idle_cv; /* a worker finished a call */
	struct ps_sv_call *head, *tail;
	unsigned nthreads, nidle, nbusy;
	unsigned nqueued; /* calls in the queue */
	bool stopping;

	/* Answers that could not be delivered (see handlers.c). */
	pthread_mutex_t rec_mu;
	struct ps_sv_record recs[PS_SV_RECORDS];
};

/* One intercepted call. */
struct ps_sv_call {
	struct ps_sv_call *next; /* in the work queue */
	uint64_t id;
	pid_t tid;
	int nr;
	uint64_t args[6];
	struct ps_sv_task *task; /* referenced */
	int fd;			 /* copy of the target's socket, or -1 */
	enum ps_proto proto;
	int socktype;
	bool may_block;		/* could wait long: needs a worker thread */
	union ps_sockaddr addr; /* the address the call names/reports */
	socklen_t addrlen;
	uint16_t port;	   /* its port */
	struct msghdr msg; /* sendmsg: the target's header */
};

/* What classify decided. */
enum ps_sv_verdict {
	PS_SV_CONTINUE, /* run the call as it is */
	PS_SV_ANSWER,	/* answer with val/err (filled in) */
	PS_SV_DROP,	/* the notification went away: no answer */
	PS_SV_WORK,	/* hand it to a worker */
};

/*
 * Classifies call c (id, tid, nr and args filled in; task NULL, fd -1).
 * On PS_SV_ANSWER stores the answer in *val / *err. Notification loop
 * only.
 */
enum ps_sv_verdict ps_sv_classify(struct ps_supervisor *sv,
				  struct ps_sv_call *c, int64_t *val, int *err);

/*
 * One notification, as the loop receives it: classifies it and answers
 * what classify settled (run it as it is, an answer, a call gone).
 * Returns the call when it is to be acted on (ps_sv_act, in the loop, or
 * by a worker when c->may_block; ps_sv_call_free after), else NULL.
 * *verdict is what classify decided. Notification loop only.
 */
struct ps_sv_call *ps_sv_take(struct ps_supervisor *sv,
			      const struct seccomp_notif *req,
			      enum ps_sv_verdict *verdict);

/*
 * Performs a call that classify handed over, and answers it: in the
 * notification loop, or in a worker thread when c->may_block.
 */
void ps_sv_act(struct ps_supervisor *sv, struct ps_sv_call *c);

/*
 * Answers notification id: with CONTINUE (the kernel runs the call as
 * it is), or with val (err 0) or -err. Returns 0, or -ENOENT when the
 * call is gone (its thread was interrupted or killed), or -errno.
 */
int ps_sv_answer(struct ps_supervisor *sv, uint64_t id, bool cont, int64_t val,
		 int err);

/*
 * ps_sv_answer for call c, after closing the supervisor's copy of the
 * thread's descriptor: once answered, the thread runs on and may close
 * its socket, which must then be closed (a reset sent, its port free)
 * as if no supervisor had seen it.
 */
int ps_sv_reply(struct ps_supervisor *sv, struct ps_sv_call *c, bool cont,
		int64_t val, int err);

/* Releases what c holds (task reference, descriptor) and frees it. */
void ps_sv_call_free(struct ps_sv_call *c);

#endif
