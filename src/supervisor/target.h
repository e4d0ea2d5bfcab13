/* SPDX-License-Identifier: MIT */
/*
 * target.h - what the supervisor knows about the processes it watches:
 * one entry per thread that made an intercepted call (its process, a
 * handle on it, and the portshim configuration of its environment), and
 * access to their memory and descriptors.
 *
 * Whose configuration applies depends on the process's privileges:
 *
 *   - a process with exactly the supervisor's credentials (user and group
 *     ids, supplementary groups, and at least the supervisor's effective
 *     capabilities) is its peer: whatever its environment names, it could
 *     do itself. Its configuration comes from its own environment, read
 *     from /proc/PID/environ, so that PORTSHIM_GROUP_FROM and per-job
 *     groups work for the programs only the supervisor sees;
 *   - any other process (one that switched to another user or dropped a
 *     capability under a root supervisor) gets the supervisor's own
 *     configuration, the one it was started with: its environment and
 *     memory are its own to write, so nothing read from them may choose a
 *     path, a range or a group for the supervisor.
 *
 * Either way the configuration is turned into a policy by the same code
 * as the preload library's (ps_config_load, ps_policy_setup): a group,
 * PORTSHIM_GROUP_FROM, the mapping file, PORTSHIM_UNMAPPED and the rest
 * mean the same under both front ends. Processes with the same portshim
 * variables share one policy; all policies with the same registry file
 * share one mapping of it (a mapping is never unmapped, see registry.h).
 * And whichever configuration applies, the supervisor never binds a port
 * below ip_unprivileged_port_start for a process that lacks
 * CAP_NET_BIND_SERVICE (ps_sv_task_may_bind).
 *
 * Threads: the table of entries is used by the notification loop only.
 * An entry handed to a worker thread is kept alive by a reference; the
 * policies are never freed.
 */
#ifndef PS_SV_TARGET_H
#define PS_SV_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "policy.h"
#include "proc.h"

/* The portshim configuration of one environment. */
struct ps_sv_env {
	struct ps_sv_env *next;
	char *key; /* the variables that made it, NUL-separated */
	size_t keylen;
	bool active; /* PORTSHIM_PORTS set and the group valid */
	struct ps_config cfg;
	struct ps_policy pol; /* pol.cfg points at cfg */
};

/* A thread of a supervised process. */
struct ps_sv_task {
	struct ps_sv_task *next; /* hash chain */
	pid_t tid;
	pid_t tgid;
	int procfd;	       /* /proc/TID (O_PATH): fails once TID is gone */
	int pidfd;	       /* pidfd of TGID */
	struct ps_ident ident; /* TGID's pid and start time */
	struct ps_sv_env *env;
	bool peer; /* env is from its own environment */
	int refs;  /* atomic */
};

#define PS_SV_TASK_BUCKETS 512

struct ps_sv_targets {
	struct ps_sv_task *buckets[PS_SV_TASK_BUCKETS];
	size_t ntasks;
	size_t sweep_at; /* sweep dead entries beyond this many */
	struct ps_sv_env *envs;
	struct ps_config *scratch; /* parsing room, reused */

	/* The supervisor's own credentials and configuration. */
	char *own_creds;   /* its Uid, Gid and Groups lines */
	uint64_t own_caps; /* its effective capabilities */
	char *own_environ; /* its PORTSHIM_* variables, NUL-separated */
	size_t own_environ_len;
	struct ps_sv_env *own_env; /* made at first use */
	unsigned unpriv_port;	   /* ip_unprivileged_port_start */
	uint64_t cookie;	   /* of the supervisor's own socket calls */
};

/*
 * Prepares an empty table, and takes the supervisor's own credentials
 * and configuration (this process's environment, as CMD gets it: call it
 * once the run's variables are set). Returns 0, -ENOMEM, or -errno when
 * this process's credentials cannot be read.
 */
int ps_sv_targets_init(struct ps_sv_targets *t, uint64_t cookie);

/* Frees what ps_sv_targets_init allocated (the entries stay). */
void ps_sv_targets_free(struct ps_sv_targets *t);

/* Drops every thread entry (the environments stay). */
void ps_sv_targets_clear(struct ps_sv_targets *t);

/*
 * The entry of thread tid, which is blocked in notification id of
 * listener: a cached one if tid is still the same thread, else a new one
 * (its process, environment and policy are looked up). Stores a
 * referenced entry in *out. Returns 0, -ENOENT if the notification is no
 * longer valid (the thread went away or was interrupted), or -errno when
 * the thread cannot be inspected (another user's process, or one that
 * made itself undumpable).
 */
int ps_sv_task_get(struct ps_sv_targets *t, pid_t tid, int listener,
		   uint64_t id, struct ps_sv_task **out);

/*
 * True if the supervisor may bind port for task's process: a port below
 * ip_unprivileged_port_start only for a process with
 * CAP_NET_BIND_SERVICE (the supervisor never binds with privileges the
 * process lacks). The thread must be blocked in a notification.
 */
bool ps_sv_task_may_bind(const struct ps_sv_targets *t,
			 const struct ps_sv_task *task, unsigned port);

/* Takes another reference on task (for a worker thread). */
void ps_sv_task_hold(struct ps_sv_task *task);

/* Drops a reference; the last one closes the handles. Any thread. */
void ps_sv_task_put(struct ps_sv_task *task);

/*
 * Forgets every thread of tid's process (it is calling execve: its next
 * image may have another environment).
 */
void ps_sv_task_forget(struct ps_sv_targets *t, pid_t tid);

/*
 * A copy of the task's descriptor fd, open in the supervisor on the same
 * open file description (so the socket, its flags and its options are
 * the program's own). Returns the new descriptor or -errno.
 */
int ps_sv_task_fd(const struct ps_sv_task *task, int fd);

/*
 * True if thread tid holds the registry lock of env's policy: it is then
 * inside portshim's own code (a bind it makes while choosing a port), and
 * its call must run as it is. Lock-free: reads the owner's thread id from
 * the robust mutex's futex word.
 */
bool ps_sv_lock_held_by(const struct ps_sv_env *env, pid_t tid);

/*
 * Reads len bytes at addr in thread tid's memory. Returns 0, or -EFAULT
 * when some of it is not readable, or -errno.
 */
int ps_sv_mem_read(pid_t tid, uint64_t addr, void *buf, size_t len);

/* Writes len bytes to addr in thread tid's memory. Returns 0 or -errno. */
int ps_sv_mem_write(pid_t tid, uint64_t addr, const void *buf, size_t len);

/*
 * True while notification id of listener is pending (its thread still
 * waits in the call): what was read from the thread before is its own.
 */
bool ps_sv_notif_valid(int listener, uint64_t id);

#endif
