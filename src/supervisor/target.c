/* SPDX-License-Identifier: MIT */
/*
 * target.c - the supervised threads, their environments and policies,
 * and access to their memory and descriptors (see target.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "front.h"
#include "log.h"
#include "supcall.h"
#include "target.h"

/* /proc/PID/environ can be as large as the exec limit allows. */
#define ENVIRON_MAX (64u << 20)

/* linux/capability.h's CAP_NET_BIND_SERVICE, as a bit of CapEff. */
#define CAP_NET_BIND_SERVICE_BIT 10

/* Beyond this many cached threads, dead ones are swept out. */
#define TASKS_SWEEP 1024u

static int read_all(int dirfd, const char *name, char **out, size_t *len);
static int read_creds(int dirfd, pid_t *tgid, char **creds, uint64_t *caps);

/*
 * This process's PORTSHIM_* variables (and those PORTSHIM_GROUP_FROM
 * names: all variables are kept, as they are few), NUL-separated as in
 * /proc/PID/environ.
 */
static int copy_own_environ(struct ps_sv_targets *t)
{
	size_t n = 0;
	char *p;

	for (char **e = environ; *e != NULL; e++)
		n += strlen(*e) + 1;
	t->own_environ = malloc(n + 1);
	if (t->own_environ == NULL)
		return -ENOMEM;
	p = t->own_environ;
	for (char **e = environ; *e != NULL; e++) {
		size_t l = strlen(*e) + 1;

		memcpy(p, *e, l);
		p += l;
	}
	t->own_environ_len = n;
	return 0;
}

int ps_sv_targets_init(struct ps_sv_targets *t, uint64_t cookie)
{
	char *buf;
	size_t len;
	pid_t tgid;
	int dirfd, rc;

	memset(t, 0, sizeof(*t));
	t->sweep_at = TASKS_SWEEP;
	t->cookie = cookie;
	t->unpriv_port = 1024;
	if (read_all(AT_FDCWD, "/proc/sys/net/ipv4/ip_unprivileged_port_start",
		     &buf, &len) == 0) {
		t->unpriv_port = (unsigned)strtoul(buf, NULL, 10);
		free(buf);
	}
	t->scratch = malloc(sizeof(*t->scratch));
	if (t->scratch == NULL)
		return -ENOMEM;
	rc = copy_own_environ(t);
	if (rc)
		return rc;
	dirfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	rc = read_creds(dirfd, &tgid, &t->own_creds, &t->own_caps);
	close(dirfd);
	return rc;
}

void ps_sv_targets_free(struct ps_sv_targets *t)
{
	free(t->scratch);
	free(t->own_creds);
	free(t->own_environ);
	t->scratch = NULL;
	t->own_creds = NULL;
	t->own_environ = NULL;
}

bool ps_sv_notif_valid(int listener, uint64_t id)
{
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int ps_sv_mem_read(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (len == 0)
		return 0;
	n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int ps_sv_mem_write(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (len == 0)
		return 0;
	n = process_vm_writev(tid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int ps_sv_task_fd(const struct ps_sv_task *task, int fd)
{
	long rc;

	if (task->pidfd < 0)
		return -ESRCH;
	rc = ps_supcall_direct(SYS_pidfd_getfd, task->pidfd, fd, 0, 0);
	return rc < 0 ? -errno : (int)rc;
}

bool ps_sv_lock_held_by(const struct ps_sv_env *env, pid_t tid)
{
	const int *word;

	if (!env->pol.reg_ready)
		return false;
	/*
	 * glibc keeps the futex word first in pthread_mutex_t, and for a
	 * robust mutex the kernel's protocol puts the owner's thread id in
	 * its low bits. The registry refuses processes of another PID
	 * namespace, so the id is comparable with the notification's.
	 */
	word = (const int *)(const void *)&env->pol.reg.hdr->lock.mutex;
	return ((unsigned)__atomic_load_n(word, __ATOMIC_RELAXED) &
		FUTEX_TID_MASK) == (unsigned)tid;
}

/* ------------------------------------------------------------ /proc */

/*
 * Reads the whole of a /proc file relative to dirfd into a new buffer
 * (NUL-terminated; *len excludes the NUL). Returns 0 or -errno.
 */
static int read_all(int dirfd, const char *name, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (buf == NULL || n + 1 >= cap) {
			if (buf != NULL)
				cap *= 2;
			if (cap > ENVIRON_MAX) {
				rc = -E2BIG;
				goto out;
			}
			nb = realloc(buf, cap);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Appends the line of status that starts with name to *out. */
static int add_line(const char *status, const char *name, char **out,
		    size_t *len)
{
	const char *p = strstr(status, name), *nl;
	char *n;

	if (p == NULL)
		return -EIO;
	nl = strchr(p, '\n');
	if (nl == NULL)
		nl = p + strlen(p);
	n = realloc(*out, *len + (size_t)(nl - p) + 2);
	if (n == NULL)
		return -ENOMEM;
	memcpy(n + *len, p, (size_t)(nl - p));
	*len += (size_t)(nl - p);
	n[(*len)++] = '\n';
	n[*len] = '\0';
	*out = n;
	return 0;
}

/*
 * From the status file of the thread whose /proc directory is dirfd: its
 * Tgid, and, if creds is not NULL, its Uid, Gid and Groups lines (in a
 * new string) and its effective capabilities.
 */
static int read_creds(int dirfd, pid_t *tgid, char **creds, uint64_t *caps)
{
	char *buf, *p;
	size_t len, clen = 0;
	long v;
	int rc;

	rc = read_all(dirfd, "status", &buf, &len);
	if (rc)
		return rc;
	p = strstr(buf, "\nTgid:");
	rc = -EIO;
	if (p != NULL) {
		v = strtol(p + 6, NULL, 10);
		if (v > 0) {
			*tgid = (pid_t)v;
			rc = 0;
		}
	}
	if (rc == 0 && creds != NULL) {
		*creds = NULL;
		rc = add_line(buf, "\nUid:", creds, &clen);
		if (rc == 0)
			rc = add_line(buf, "\nGid:", creds, &clen);
		if (rc == 0)
			rc = add_line(buf, "\nGroups:", creds, &clen);
		p = strstr(buf, "\nCapEff:");
		if (rc == 0 && p == NULL)
			rc = -EIO;
		if (rc == 0)
			*caps = strtoull(p + 8, NULL, 16);
		if (rc) {
			free(*creds);
			*creds = NULL;
		}
	}
	free(buf);
	return rc;
}

/*
 * True if the thread whose /proc directory is dirfd has the supervisor's
 * credentials: the same user and group ids (real, effective, saved,
 * file system), the same supplementary groups, and every capability the
 * supervisor has. Such a thread could do itself whatever the supervisor
 * would do on its word. False when it cannot be told.
 *
 * The thread is blocked in a notification while this is asked, and only
 * a thread changes its own credentials, so the answer holds until it
 * leaves the call. Its other threads share its memory (its environment
 * included): a process whose threads differ is only as trustworthy as
 * the least privileged of them, which the thread asking is not required
 * to be; such processes are made with raw system calls only, and are
 * as exposed to their own threads without portshim.
 */
static bool is_peer(const struct ps_sv_targets *t, int dirfd)
{
	char *creds = NULL;
	uint64_t caps = 0;
	pid_t tgid;
	bool peer;

	if (read_creds(dirfd, &tgid, &creds, &caps) != 0)
		return false;
	peer = strcmp(creds, t->own_creds) == 0 &&
	       (caps & t->own_caps) == t->own_caps;
	free(creds);
	return peer;
}

bool ps_sv_task_may_bind(const struct ps_sv_targets *t,
			 const struct ps_sv_task *task, unsigned port)
{
	char *creds = NULL;
	uint64_t caps = 0;
	pid_t tgid;

	if (port >= t->unpriv_port)
		return true;
	if (read_creds(task->procfd, &tgid, &creds, &caps) != 0)
		return false;
	free(creds);
	return (caps >> CAP_NET_BIND_SERVICE_BIT) & 1u;
}

/* ------------------------------------------------------ environments */

/*
 * The environment being looked at, for env_get: ps_config_load and
 * ps_policy_setup take a getter without a context argument. Only the
 * notification loop parses environments.
 */
static const char *cur_env;
static size_t cur_env_len;

static const char *env_get(const char *name)
{
	size_t n = strlen(name);
	const char *p = cur_env, *end = cur_env + cur_env_len;

	while (p < end) {
		size_t l = strlen(p);

		if (l > n && memcmp(p, name, n) == 0 && p[n] == '=')
			return p + n + 1;
		p += l + 1;
	}
	return NULL;
}

/* Appends s and its NUL to the key being built. Returns 0 or -ENOMEM. */
static int key_add(char **key, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s) + 1;
	char *nk;

	if (*len + n > *cap) {
		size_t nc = (*cap ? *cap * 2 : 1024) + n;

		nk = realloc(*key, nc);
		if (nk == NULL)
			return -ENOMEM;
		*key = nk;
		*cap = nc;
	}
	memcpy(*key + *len, s, n);
	*len += n;
	return 0;
}

/*
 * The key of the current environment: its PORTSHIM_* variables, the
 * variables PORTSHIM_GROUP_FROM names (cfg parsed from it), and, when no
 * group is set, the process (each such process gets a group of its own,
 * as under the preload).
 */
static int make_key(const struct ps_config *cfg, pid_t tgid, char **key,
		    size_t *len)
{
	const char *p = cur_env, *end = cur_env + cur_env_len;
	size_t cap = 0;
	char tmp[PS_ENV_NAME_MAX + 32];
	int rc = 0;

	*key = NULL;
	*len = 0;
	while (p < end && rc == 0) {
		if (strncmp(p, "PORTSHIM_", 9) == 0)
			rc = key_add(key, len, &cap, p);
		p += strlen(p) + 1;
	}
	for (unsigned i = 0; i < cfg->n_group_from && rc == 0; i++) {
		const char *v = env_get(cfg->group_from[i]);

		if (v == NULL)
			continue;
		rc = key_add(key, len, &cap, "\001");
		if (rc == 0)
			rc = key_add(key, len, &cap, cfg->group_from[i]);
		if (rc == 0)
			rc = key_add(key, len, &cap, v);
	}
	if (rc == 0 && cfg->enabled && cfg->group[0] == '\0') {
		snprintf(tmp, sizeof(tmp), "\002%d", (int)tgid);
		rc = key_add(key, len, &cap, tmp);
	}
	if (rc == 0 && *key == NULL)
		rc = key_add(key, len, &cap, "");
	if (rc) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

/* Logs the configuration errors of a new environment, one line each. */
static void log_config_error(void *arg, const char *line, int len)
{
	PS_ERROR("%.*s (supervised pid %d)", len, line, *(const int *)arg);
}

/*
 * Opens env's registry, or shares the mapping of another environment
 * with the same registry file (and its failure, so that it is reported
 * once).
 */
static void open_registry(struct ps_sv_targets *t, struct ps_sv_env *env)
{
	for (struct ps_sv_env *o = t->envs; o != NULL; o = o->next) {
		if (!o->active || strcmp(o->cfg.registry, env->cfg.registry))
			continue;
		if (!o->pol.reg_ready && o->pol.reg_errno == 0)
			continue;
		/*
		 * struct ps_policy's registry fields are public for this:
		 * the mapping is process-wide and never unmapped, so two
		 * policies may point at it.
		 */
		env->pol.reg = o->pol.reg;
		env->pol.reg_ready = o->pol.reg_ready;
		env->pol.reg_errno = o->pol.reg_errno;
		memcpy(env->pol.reserved, o->pol.reserved,
		       sizeof(env->pol.reserved));
		return;
	}
	ps_policy_open(&env->pol);
}

/* Makes the environment of a new key (cfg is t->scratch). */
/* The probe's bind: a raw one, with the cookie, as the supervisor's own
 * calls on a target's socket (supcall.h). */
static int probe_bind(void *arg, int fd, const struct sockaddr *addr,
		      socklen_t len)
{
	const struct ps_sv_targets *t = arg;

	return ps_supcall_bind(t->cookie, fd, addr, len);
}

/* A new lease's number is probed free for TCP and UDP, as the shim's. */
static int probe(void *arg, uint16_t real)
{
	return ps_front_probe(real, probe_bind, arg);
}

static struct ps_sv_env *new_env(struct ps_sv_targets *t, char *key,
				 size_t keylen, pid_t tgid, char *errs)
{
	struct ps_sv_env *env;
	char base[PS_GROUP_MAX + 1];

	env = calloc(1, sizeof(*env));
	if (env == NULL)
		return NULL;
	env->key = key;
	env->keylen = keylen;
	memcpy(&env->cfg, t->scratch, sizeof(env->cfg));
	{
		int pid = (int)tgid;

		ps_config_each_error(errs, log_config_error, &pid);
	}
	if (env->cfg.enabled) {
		if (env->cfg.group[0] != '\0') {
			snprintf(base, sizeof(base), "%s", env->cfg.group);
		} else {
			/* As the preload names a group it was not given. */
			ps_front_fresh_group(tgid, base, sizeof(base));
		}
		if (ps_policy_setup(&env->pol, &env->cfg, env_get, base) == 0)
			env->active = true;
		env->pol.probe = probe;
		env->pol.probe_arg = t;
	}
	if (env->active)
		open_registry(t, env);
	env->next = t->envs;
	t->envs = env;
	return env;
}

/* The environment of the process whose environ is in cur_env. */
static int find_env(struct ps_sv_targets *t, pid_t tgid, struct ps_sv_env **out)
{
	char errs[2048] = "";
	struct ps_sv_env *env;
	char *key;
	size_t keylen;
	int rc;

	ps_config_load(t->scratch, env_get, errs, sizeof(errs));
	rc = make_key(t->scratch, tgid, &key, &keylen);
	if (rc)
		return rc;
	for (env = t->envs; env != NULL; env = env->next) {
		if (env->keylen == keylen &&
		    memcmp(env->key, key, keylen) == 0) {
			free(key);
			*out = env;
			return 0;
		}
	}
	env = new_env(t, key, keylen, tgid, errs);
	if (env == NULL) {
		free(key);
		return -ENOMEM;
	}
	*out = env;
	return 0;
}

/*
 * The supervisor's own configuration (for processes that are not its
 * peers): made from its own environment at first use, and shared.
 */
static int own_env(struct ps_sv_targets *t, pid_t tgid, struct ps_sv_env **out)
{
	int rc = 0;

	if (t->own_env == NULL) {
		static bool said;

		cur_env = t->own_environ;
		cur_env_len = t->own_environ_len;
		/* Its processes without a group share one, as the
		 * supervisor's own (the first such process names it). */
		rc = find_env(t, tgid, &t->own_env);
		cur_env = NULL;
		cur_env_len = 0;
		if (rc == 0 && !said) {
			said = true;
			PS_INFO("supervised pid %d does not have the "
				"supervisor's privileges: it gets the "
				"supervisor's own configuration, whatever its "
				"environment says",
				(int)tgid);
		}
	}
	*out = t->own_env;
	return rc;
}

/* ------------------------------------------------------------ tasks */

static unsigned bucket(pid_t tid)
{
	return (unsigned)tid * 2654435761u % PS_SV_TASK_BUCKETS;
}

void ps_sv_task_hold(struct ps_sv_task *task)
{
	__atomic_add_fetch(&task->refs, 1, __ATOMIC_RELAXED);
}

void ps_sv_task_put(struct ps_sv_task *task)
{
	if (task == NULL ||
	    __atomic_sub_fetch(&task->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (task->procfd >= 0)
		close(task->procfd);
	if (task->pidfd >= 0)
		close(task->pidfd);
	free(task);
}

/* True while the thread the entry was made for lives (not a reuse). */
static bool task_alive(const struct ps_sv_task *task)
{
	/*
	 * A /proc/TID directory opened earlier stays bound to that thread:
	 * once it has exited, lookups in it fail, even if the number has
	 * been given to a new thread since.
	 */
	return faccessat(task->procfd, "stat", F_OK, 0) == 0;
}

static void unlink_task(struct ps_sv_targets *t, struct ps_sv_task **link)
{
	struct ps_sv_task *task = *link;

	*link = task->next;
	t->ntasks--;
	ps_sv_task_put(task);
}

static void sweep(struct ps_sv_targets *t)
{
	for (unsigned b = 0; b < PS_SV_TASK_BUCKETS; b++) {
		struct ps_sv_task **link = &t->buckets[b];

		while (*link != NULL) {
			if (task_alive(*link))
				link = &(*link)->next;
			else
				unlink_task(t, link);
		}
	}
}

void ps_sv_targets_clear(struct ps_sv_targets *t)
{
	for (unsigned b = 0; b < PS_SV_TASK_BUCKETS; b++)
		while (t->buckets[b] != NULL)
			unlink_task(t, &t->buckets[b]);
}

void ps_sv_task_forget(struct ps_sv_targets *t, pid_t tid)
{
	pid_t tgid = 0;

	for (struct ps_sv_task *k = t->buckets[bucket(tid)]; k; k = k->next)
		if (k->tid == tid)
			tgid = k->tgid;
	if (tgid == 0)
		return;
	for (unsigned b = 0; b < PS_SV_TASK_BUCKETS; b++) {
		struct ps_sv_task **link = &t->buckets[b];

		while (*link != NULL) {
			if ((*link)->tgid == tgid)
				unlink_task(t, link);
			else
				link = &(*link)->next;
		}
	}
}

static int new_task(struct ps_sv_targets *t, pid_t tid, int listener,
		    uint64_t id, struct ps_sv_task **out)
{
	struct ps_sv_task *task;
	char path[32];
	char *environ_buf = NULL;
	size_t environ_len = 0;
	int rc;

	task = calloc(1, sizeof(*task));
	if (task == NULL)
		return -ENOMEM;
	task->refs = 1;
	task->tid = tid;
	task->pidfd = -1;
	snprintf(path, sizeof(path), "/proc/%d", (int)tid);
	task->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (task->procfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = read_creds(task->procfd, &task->tgid, NULL, NULL);
	if (rc)
		goto fail;
	rc = ps_proc_ident(task->tgid, &task->ident);
	if (rc)
		goto fail;
	task->pidfd =
		(int)ps_supcall_direct(SYS_pidfd_open, task->tgid, 0, 0, 0);
	if (task->pidfd < 0) {
		rc = -errno;
		goto fail;
	}
	/* Only a peer's environment is read at all (see target.h). */
	task->peer = is_peer(t, task->procfd);
	if (task->peer) {
		rc = read_all(task->procfd, "environ", &environ_buf,
			      &environ_len);
		if (rc)
			goto fail;
	}
	/*
	 * Everything above was opened or read while the thread waited in
	 * this notification, so it is the thread's own, not a successor's
	 * with a reused number: if the notification is still pending now,
	 * the thread has not left the call in between.
	 */
	if (!ps_sv_notif_valid(listener, id)) {
		rc = -ENOENT;
		goto fail;
	}
	if (task->peer) {
		cur_env = environ_buf;
		cur_env_len = environ_len;
		rc = find_env(t, task->tgid, &task->env);
		cur_env = NULL;
		cur_env_len = 0;
	} else {
		rc = own_env(t, task->tgid, &task->env);
	}
	if (rc)
		goto fail;
	free(environ_buf);
	*out = task;
	return 0;
fail:
	free(environ_buf);
	ps_sv_task_put(task);
	return rc;
}

int ps_sv_task_get(struct ps_sv_targets *t, pid_t tid, int listener,
		   uint64_t id, struct ps_sv_task **out)
{
	struct ps_sv_task **link = &t->buckets[bucket(tid)];
	struct ps_sv_task *task = NULL;
	int rc;

	for (; *link != NULL; link = &(*link)->next) {
		if ((*link)->tid != tid)
			continue;
		if (task_alive(*link)) {
			/*
			 * A peer that dropped privileges since keeps the
			 * environment read while it had them: what a
			 * privileged process wrote, not what it writes now
			 * (environments are read once per thread and
			 * image). Binds check its privileges at each call
			 * (ps_sv_task_may_bind).
			 */
			ps_sv_task_hold(*link);
			*out = *link;
			return 0;
		}
		unlink_task(t, link);
		break;
	}
	if (t->ntasks >= t->sweep_at) {
		/* Amortised: a table of live threads is not swept again
		 * until it has doubled. */
		sweep(t);
		t->sweep_at = t->ntasks * 2 > TASKS_SWEEP ? t->ntasks * 2 :
							    TASKS_SWEEP;
	}
	rc = new_task(t, tid, listener, id, &task);
	if (rc)
		return rc;
	task->next = t->buckets[bucket(tid)];
	t->buckets[bucket(tid)] = task;
	t->ntasks++;
	ps_sv_task_hold(task);
	*out = task;
	return 0;
}
