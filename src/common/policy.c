/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the decisions behind every rewritten call, independent of
 * how the call was intercepted.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "mapfile.h"
#include "memo.h"
#include "netstat.h"
#include "policy.h"
#include "report.h"

int ps_policy_init(struct ps_policy *pol, const struct ps_config *cfg,
		   const char *group, const char *map_file)
{
	memset(pol, 0, sizeof(*pol));
	pol->cfg = cfg;
	if (!ps_group_valid(group))
		return -EINVAL;
	snprintf(pol->group, sizeof(pol->group), "%s", group);
	if (map_file != NULL && strlen(map_file) < sizeof(pol->map_file))
		snprintf(pol->map_file, sizeof(pol->map_file), "%s", map_file);
	pol->reg.fd = -1;
	return 0;
}

int ps_policy_map_path(const char *base_map, const char *suffix, char *out,
		       size_t len)
{
	size_t n = strlen(base_map);
	int w;

	if (n >= 4 && strcmp(base_map + n - 4, ".map") == 0)
		w = snprintf(out, len, "%.*s%s.map", (int)(n - 4), base_map,
			     suffix);
	else
		w = snprintf(out, len, "%s%s", base_map, suffix);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

int ps_policy_setup(struct ps_policy *pol, const struct ps_config *cfg,
		    ps_getenv_fn get, const char *base)
{
	char group[PS_GROUP_MAX + 1];
	char map[PATH_MAX];
	const char *map_file = NULL;

	if (ps_config_group_resolve(cfg, get, base, group) != 0) {
		PS_ERROR("PORTSHIM_GROUP_FROM: group '%s' plus worker suffix"
			 " is longer than %d characters; using '%s'",
			 base, PS_GROUP_MAX, base);
		snprintf(group, sizeof(group), "%s", base);
	}
	if (cfg->map_file[0]) {
		if (strcmp(group, base) == 0)
			map_file = cfg->map_file;
		else if (ps_policy_map_path(cfg->map_file, group + strlen(base),
					    map, sizeof(map)) == 0)
			map_file = map;
	}
	if (ps_policy_init(pol, cfg, group, map_file) != 0) {
		PS_ERROR("group name '%s' is invalid; portshim is inactive",
			 group);
		return -EINVAL;
	}
	return 0;
}

/* Errors of the moment (resources), not of the registry. */
static bool transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM ||
	       rc == -EINTR || rc == -EAGAIN || rc == -ENOBUFS;
}

/*
 * Logs a registry error: a shrunk file once per process (every later
 * call meets it again, and a line each would flood the log), any other
 * error each time.
 */
static void registry_error(struct ps_policy *pol, const char *what, int rc,
			   const struct ps_reg_guard *g)
{
	static int shrunk_said;
	char why[320];

	if (rc == -EIO &&
	    __atomic_exchange_n(&shrunk_said, 1, __ATOMIC_RELAXED) != 0)
		return;
	PS_ERROR("cannot %s registry %s: %s%s", what, pol->reg.path,
		 ps_registry_strerror(&pol->reg, g, rc, why, sizeof(why)),
		 rc == -EIO ? " (said once)" : "");
}

static int ensure_registry(struct ps_policy *pol)
{
	struct ps_reg_error err = { "" };
	int rc;

	if (pol->reg_ready)
		return 0;
	if (pol->reg_errno)
		return -pol->reg_errno;
	rc = ps_registry_open(&pol->reg, pol->cfg->registry, &err);
	if (rc) {
		/*
		 * A refused file stays refused, but running out of
		 * descriptors or memory passes: the next call tries again.
		 */
		if (!transient(rc))
			pol->reg_errno = -rc;
		PS_ERROR("registry unusable: %s (PORTSHIM_ON_ERROR=%s)",
			 err.msg,
			 pol->cfg->on_error == PS_ON_ERROR_PASS ? "pass" :
								  "fail");
		return rc;
	}
	ps_reserved_ports_load(pol->reserved);
	pol->reg_ready = true;
	return 0;
}

int ps_policy_open(struct ps_policy *pol)
{
	return ensure_registry(pol);
}

/* What a call gets when the registry cannot be used. */
static int registry_failure(struct ps_policy *pol, int rc)
{
	if (pol->cfg->on_error == PS_ON_ERROR_PASS)
		return PS_PASS;
	return rc;
}

static int lock(struct ps_policy *pol, struct ps_reg_guard *g)
{
	int rc = ensure_registry(pol);

	if (rc)
		return rc;
	rc = ps_registry_lock(&pol->reg, g);
	if (rc)
		registry_error(pol, "lock", rc, g);
	return rc;
}

/* The process whose life keeps this process's leases. */
static void holder_of(const struct ps_policy *pol, const struct ps_ident *self,
		      struct ps_ident *out)
{
	*out = pol->cfg->owner.pid != 0 ? pol->cfg->owner : *self;
}

/* ------------------------------------------------------ mapping file */

/*
 * The group's entries are collected into a static buffer: it is only
 * touched with the registry lock held, which also serialises the threads
 * of this process, and it must not be on the stack of a host thread that
 * may have a small one. Two entries per lease at most (tcp and udp).
 */
static struct ps_map_entry map_buf[2 * PS_REG_NPORTS];

struct collect {
	struct ps_registry *reg;
	size_t n;
};

static void collect_one(void *arg, struct ps_lease *l)
{
	struct collect *c = arg;

	if (l->kind != PS_KIND_GROUP)
		return;
	for (int p = 0; p < PS_NPROTO; p++) {
		if (!(l->protos & PS_PROTO_BIT(p)) ||
		    c->n >= sizeof(map_buf) / sizeof(map_buf[0]))
			continue;
		map_buf[c->n++] = (struct ps_map_entry){
			.proto = (enum ps_proto)p,
			.vport = l->vport,
			.real = ps_registry_port(c->reg, l),
			.pid = l->maker.pid,
		};
	}
}

static bool entry_less(const struct ps_map_entry *a,
		       const struct ps_map_entry *b)
{
	if (a->vport != b->vport)
		return a->vport < b->vport;
	return a->proto < b->proto;
}

/* Shell sort: in place, no allocation (qsort may call malloc). */
static void sort_entries(struct ps_map_entry *e, size_t n)
{
	static const size_t gaps[] = { 1750, 701, 301, 132, 57, 23, 10, 4, 1 };

	for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
		size_t gap = gaps[g];

		for (size_t i = gap; i < n; i++) {
			struct ps_map_entry t = e[i];
			size_t j = i;

			while (j >= gap && entry_less(&t, &e[j - gap])) {
				e[j] = e[j - gap];
				j -= gap;
			}
			e[j] = t;
		}
	}
}

/*
 * Asks the group's keeper (PORTSHIM_KEEPER) to write the mapping file,
 * for a member that runs as another user than the file's folder: an
 * empty datagram to the keeper's abstract socket. Returns 0 if sent.
 */
static int nudge_keeper(const struct ps_config *cfg)
{
	struct sockaddr_un sa;
	size_t n = strlen(cfg->keeper);
	ssize_t sent;
	int fd;

	if (n == 0 || n + 1 >= sizeof(sa.sun_path))
		return -ENOENT;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, cfg->keeper, n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(
		fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sa,
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
	close(fd);
	return sent < 0 ? -ENOENT : 0;
}

int ps_policy_publish(struct ps_policy *pol)
{
	struct collect c = { &pol->reg, 0 };
	int rc;

	if (pol->map_file[0] == '\0')
		return 0;
	ps_registry_each_group(&pol->reg, pol->group, collect_one, &c);
	sort_entries(map_buf, c.n);
	rc = ps_mapfile_write(pol->map_file, pol->group, map_buf, c.n);
	if ((rc == -EACCES || rc == -EPERM) && nudge_keeper(pol->cfg) == 0) {
		PS_INFO("mapping file %s: %s; the group's keeper writes it",
			pol->map_file, strerror(-rc));
		return 0;
	}
	if (rc)
		PS_ERROR("cannot write mapping file %s: %s", pol->map_file,
			 strerror(-rc));
	return rc;
}

/* ------------------------------------------------------------- bind */

/* Makes self the lease's maker, with proto among its protocols. */
static void claim(struct ps_policy *pol, struct ps_lease *l,
		  enum ps_proto proto, const struct ps_ident *self,
		  bool *changed)
{
	struct ps_lease nl;

	if (l->maker.pid == self->pid && l->maker.start == self->start &&
	    (l->protos & PS_PROTO_BIT(proto)))
		return;
	nl = *l;
	nl.maker = *self;
	nl.protos |= (uint8_t)PS_PROTO_BIT(proto);
	ps_registry_update(&pol->reg, l, &nl);
	*changed = true;
}

/*
 * Binds vport's existing lease l again. Returns 0 (bound; *changed set
 * when the mapping file needs rewriting), -EAGAIN when the port was lost
 * to someone outside the group and must be reallocated, or -errno.
 */
static int rebind(struct ps_policy *pol, struct ps_lease *l,
		  enum ps_proto proto, const struct ps_ident *self,
		  ps_try_bind_fn try_bind, void *arg, bool *changed)
{
	uint16_t real = ps_registry_port(&pol->reg, l);
	int rc = try_bind(arg, real);

	if (rc == -EADDRINUSE) {
		/*
		 * If the process that last bound it lives, the clash is
		 * inside the group (two servers on one port, as without
		 * portshim): the caller gets EADDRINUSE. If it is gone, a
		 * process outside the group (or a TIME_WAIT remnant) holds
		 * the number: the group moves to a new real port.
		 */
		if (ps_proc_alive(&l->maker))
			return rc;
		return -EAGAIN;
	}
	if (rc)
		return rc;
	claim(pol, l, proto, self, changed);
	return 0;
}

/* try_bind for a socket that already has its port (bind_settle). */
static int already_bound(void *arg, uint16_t real)
{
	(void)arg;
	(void)real;
	return 0;
}

/* try_bind for a new lease: the number must be free for everyone first. */
struct fresh_arg {
	ps_probe_fn probe;
	void *probe_arg;
	ps_try_bind_fn try_bind;
	void *arg;
};

static int try_fresh(void *arg, uint16_t real)
{
	struct fresh_arg *f = arg;
	int rc = f->probe(f->probe_arg, real);

	if (rc != 0)
		return rc;
	return f->try_bind(f->arg, real);
}

/*
 * The repeat bind of a lease by the process that made or last bound it,
 * for a protocol the lease already has (a server that closes and binds
 * again, a test fixture per test): nothing in the table changes, so the
 * lock, whose signal mask costs two system calls, is not taken. A
 * lock-free read finds the lease, the socket is bound to its real port,
 * and the sequence word, unchanged after the bind, proves the lease was
 * still there when the socket took its port. Returns 0 (bound, *real),
 * PS_PASS when the locked path must decide (*bound 0: nothing was done;
 * *bound P: the socket is bound to P but the table changed meanwhile, so
 * the lease must be checked under the lock).
 */
static bool ours_for(const struct ps_reg_glance *gl,
		     const struct ps_ident *self, enum ps_proto proto)
{
	return gl->maker.pid == self->pid && gl->maker.start == self->start &&
	       (gl->protos & PS_PROTO_BIT(proto));
}

/* Which table and group the memo's answers are about (memo.h). */
static struct ps_memo_scope scope_of(const struct ps_policy *pol)
{
	struct ps_memo_scope s = { pol->reg.serial, ps_group_hash(pol->group) };

	return s;
}

/*
 * The memo's answer of kind for port (connect, reverse: a port or none),
 * if the table has not changed since it was read: 0 with *out, -ENOENT
 * (none), or 1 (ask the table).
 */
static int memo_answer(const struct ps_policy *pol,
		       const struct ps_memo_scope *scope,
		       enum ps_memo_kind kind, uint16_t port, uint16_t *out)
{
	struct ps_reg_glance gl;
	uint64_t now;

	if (!ps_memo_get(scope, kind, port, &gl) ||
	    ps_registry_read_seq(&pol->reg, &now) != 0 || now != gl.seq)
		return 1;
	*out = gl.real;
	return gl.real != 0 ? 0 : -ENOENT;
}

/* Remembers what a peek answered: gl->real (rc 0) or none (-ENOENT). */
static void memo_keep(const struct ps_memo_scope *scope, enum ps_memo_kind kind,
		      uint16_t port, int rc, struct ps_reg_glance *gl)
{
	if (rc == -ENOENT)
		gl->real = 0;
	if (rc == 0 || rc == -ENOENT)
		ps_memo_put(scope, kind, port, gl);
}

/*
 * The memo's answer stands only while the table has not changed since
 * (memo.h); the answer is checked after the bind, like a peek's. With
 * the memo, the repeat bind costs one system call beside its own: the
 * read of the sequence word. The file checks of a peek (shrunk, removed)
 * are skipped then: the answer is this process's own lease, and the
 * sequence word is read without a fault in any case.
 */
static int bind_repeat(struct ps_policy *pol, const struct ps_ident *self,
		       enum ps_proto proto, uint16_t vport,
		       ps_try_bind_fn try_bind, void *arg, uint16_t *real,
		       uint16_t *bound)
{
	struct ps_reg_glance gl, again;
	struct ps_memo_scope scope;

	*bound = 0;
	if (ensure_registry(pol) != 0)
		return PS_PASS;
	scope = scope_of(pol);
	if (!(ps_memo_get(&scope, PS_MEMO_BIND, vport, &gl) &&
	      ours_for(&gl, self, proto)) &&
	    (ps_registry_peek_lease(&pol->reg, pol->group, vport, &gl) != 0 ||
	     !ours_for(&gl, self, proto)))
		return PS_PASS;
	/* A failed bind changes nothing: the locked path tries again and
	 * says why it fails. */
	if (try_bind(arg, gl.real) != 0)
		return PS_PASS;
	*bound = gl.real;
	if (!ps_registry_unchanged(&pol->reg, gl.seq)) {
		/* Other leases change all the time; is ours the same? */
		if (ps_registry_peek_lease(&pol->reg, pol->group, vport,
					   &again) != 0 ||
		    again.real != gl.real || !ours_for(&again, self, proto))
			return PS_PASS;
		gl.seq = again.seq;
	}
	ps_memo_put(&scope, PS_MEMO_BIND, vport, &gl);
	*real = gl.real;
	return 0;
}

/*
 * The locked half of a repeat bind whose lease changed while the socket
 * took port bound: keeps the socket's port as the group's if the table
 * lets it. Returns 0 (*changed set if the table was written) or
 * -EADDRINUSE (the port is another lease's now, or the group's virtual
 * port moved elsewhere).
 */
static int bind_settle(struct ps_policy *pol, const struct ps_ident *self,
		       enum ps_proto proto, uint16_t vport, uint16_t bound,
		       bool *changed)
{
	struct ps_lease *l = ps_registry_find(&pol->reg, pol->group, vport);
	struct ps_lease tmpl;
	uint16_t got;

	if (l != NULL && ps_registry_port(&pol->reg, l) == bound) {
		claim(pol, l, proto, self, changed);
		return 0;
	}
	if (l != NULL || ps_registry_at(&pol->reg, bound) != NULL)
		return -EADDRINUSE;
	/* The lease was reclaimed (its holder died): make it again, at the
	 * port the socket already has. */
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.kind = PS_KIND_GROUP;
	tmpl.vport = vport;
	snprintf(tmpl.group, sizeof(tmpl.group), "%s", pol->group);
	tmpl.maker = *self;
	holder_of(pol, self, &tmpl.holder);
	tmpl.protos = (uint8_t)PS_PROTO_BIT(proto);
	if (ps_registry_alloc(&pol->reg, &tmpl, bound, bound, NULL,
			      already_bound, NULL, &got) != 0 ||
	    got != bound)
		return -EADDRINUSE;
	*changed = true;
	return 0;
}

/*
 * The error line of a bind that failed because another live process of
 * the same group holds the group's real port of vport: as without
 * portshim, two servers of one group cannot share a port, and the usual
 * cause under portshim is a runner whose jobs or workers all landed in
 * one group. Shown at the default level, since the program's own message
 * ("Address already in use") does not say why. Names the process that
 * holds the socket (a /proc scan, on this failure path only), else the
 * lease's maker, which lives. No allocation; errno preserved.
 */
static void clash_in_group(struct ps_policy *pol, enum ps_proto proto,
			   uint16_t vport, uint16_t real,
			   const struct ps_ident *maker, const char *sockdesc)
{
	struct ps_netstat_holder h;
	char cmd[64];
	pid_t pid = maker->pid;
	int saved = errno;

	if (ps_netstat_holder(proto, real, &h) == 0 && h.found && h.pid > 0)
		pid = h.pid;
	ps_proc_cmdline(pid, cmd, sizeof(cmd));
	PS_ERROR("bind %s failed: port %u of group=%s (real %u) is held by "
		 "pid %d (%s) of the same group; to give parallel jobs or "
		 "workers a group each, use 'portshim run --per-job' (make "
		 "-j, ctest -j, xargs -P) or name the runner's worker "
		 "variable in PORTSHIM_GROUP_FROM",
		 sockdesc, (unsigned)vport, pol->group, (unsigned)real,
		 (int)pid, cmd);
	errno = saved;
}

int ps_policy_bind(struct ps_policy *pol, enum ps_proto proto, uint16_t vport,
		   ps_try_bind_fn try_bind, void *arg, uint16_t *real,
		   const char *sockdesc)
{
	struct ps_ident self;
	int rc;

	rc = ps_proc_self(&self);
	if (rc)
		return registry_failure(pol, rc);
	return ps_policy_bind_as(pol, &self, proto, vport, try_bind, arg, real,
				 sockdesc);
}

int ps_policy_bind_as(struct ps_policy *pol, const struct ps_ident *maker,
		      enum ps_proto proto, uint16_t vport,
		      ps_try_bind_fn try_bind, void *arg, uint16_t *real,
		      const char *sockdesc)
{
	const struct ps_config *cfg = pol->cfg;
	struct ps_reg_guard g;
	struct ps_ident self = *maker;
	struct ps_lease tmpl;
	struct ps_lease *l;
	bool changed = false;
	bool moved = false;
	struct ps_ident inside; /* live maker of a clash */
	uint16_t busy = 0, bound;
	int rc;

	memset(&inside, 0, sizeof(inside));
	ps_report_note(cfg, PS_REPORT_BIND, proto, vport);
	rc = bind_repeat(pol, &self, proto, vport, try_bind, arg, real, &bound);
	if (rc == 0) {
		PS_INFO("bind %s -> %u group=%s", sockdesc, (unsigned)*real,
			pol->group);
		return 0;
	}
	rc = lock(pol, &g);
	if (rc)
		return registry_failure(pol, rc);

	if (bound != 0) {
		rc = bind_settle(pol, &self, proto, vport, bound, &changed);
		busy = bound;
		if (rc == 0)
			*real = bound;
		else
			PS_ERROR(
				"bind %s: the group's lease of port %u changed "
				"while the socket was bound to real port %u, "
				"which is not the group's any more; close the "
				"socket and bind again",
				sockdesc, (unsigned)vport, (unsigned)bound);
		goto out;
	}
	l = ps_registry_find(&pol->reg, pol->group, vport);
	if (l != NULL) {
		rc = rebind(pol, l, proto, &self, try_bind, arg, &changed);
		if (rc == 0) {
			*real = ps_registry_port(&pol->reg, l);
			goto out;
		}
		busy = ps_registry_port(&pol->reg, l);
		if (rc == -EADDRINUSE)
			inside = l->maker;
		if (rc != -EAGAIN)
			goto out;
		tmpl = *l;
		ps_registry_free(&pol->reg, l);
		moved = true;
	} else {
		memset(&tmpl, 0, sizeof(tmpl));
		tmpl.kind = PS_KIND_GROUP;
		tmpl.vport = vport;
		snprintf(tmpl.group, sizeof(tmpl.group), "%s", pol->group);
	}
	tmpl.maker = self;
	holder_of(pol, &self, &tmpl.holder);
	tmpl.protos |= (uint8_t)PS_PROTO_BIT(proto);
	tmpl.created_ns = 0;
	if (pol->probe != NULL) {
		struct fresh_arg f = { pol->probe, pol->probe_arg, try_bind,
				       arg };

		rc = ps_registry_alloc(&pol->reg, &tmpl, cfg->range_lo,
				       cfg->range_hi, pol->reserved, try_fresh,
				       &f, real);
	} else {
		rc = ps_registry_alloc(&pol->reg, &tmpl, cfg->range_lo,
				       cfg->range_hi, pol->reserved, try_bind,
				       arg, real);
	}
	if (rc == 0)
		changed = true;
out:
	if (changed)
		ps_policy_publish(pol);
	ps_registry_unlock(&pol->reg, &g);

	if (rc == 0) {
		PS_INFO("bind %s -> %u group=%s%s", sockdesc, (unsigned)*real,
			pol->group, moved ? " (old real port was taken)" : "");
	} else if (rc == -EADDRNOTAVAIL) {
		PS_ERROR("bind %s failed: no free port left in"
			 " PORTSHIM_RANGE %u-%u for group=%s; widen the range"
			 " or run 'portshim gc'",
			 sockdesc, (unsigned)cfg->range_lo,
			 (unsigned)cfg->range_hi, pol->group);
	} else if (rc == -EADDRINUSE) {
		if (inside.pid != 0 && inside.pid != self.pid)
			clash_in_group(pol, proto, vport, busy, &inside,
				       sockdesc);
		/* With PORTSHIM_LOG=info, the socket and lease too. */
		ps_policy_clash(pol, proto, busy, sockdesc);
	} else {
		PS_ERROR("bind %s failed: %s", sockdesc, strerror(-rc));
	}
	return rc;
}

void ps_policy_clash(struct ps_policy *pol, enum ps_proto proto, uint16_t port,
		     const char *sockdesc)
{
	struct ps_netstat_holder h;
	struct ps_reg_guard g;
	struct ps_lease *l;
	char who[320], lease[PS_GROUP_MAX + 48] = "";
	int saved = errno;

	if (ps_log_level() < PS_LOG_INFO)
		return;
	if (port == 0) {
		PS_INFO("bind %s failed: Address already in use", sockdesc);
		return;
	}
	ps_netstat_holder(proto, port, &h);
	ps_netstat_describe(&h, who, sizeof(who));
	/*
	 * Only a registry that is already open is asked: opening one is
	 * not worth it for a log line, and ps_policy_open is not safe to
	 * call from here in a multi-threaded front end.
	 */
	if (pol != NULL && pol->reg_ready &&
	    ps_registry_lock(&pol->reg, &g) == 0) {
		l = ps_registry_at(&pol->reg, port);
		if (l != NULL && l->kind == PS_KIND_GROUP)
			snprintf(lease, sizeof(lease), " group=%s lease %u->%u",
				 l->group, (unsigned)l->vport, (unsigned)port);
		else if (l != NULL)
			snprintf(lease, sizeof(lease),
				 " pick lease %u of"
				 " pid %u",
				 (unsigned)port, (unsigned)l->holder.pid);
		ps_registry_unlock(&pol->reg, &g);
	}
	/* strerror could allocate (translations): the text is spelled out. */
	PS_INFO("bind %s failed: Address already in use; %s%s", sockdesc, who,
		lease);
	errno = saved;
}

/* ---------------------------------------------------------- connect */

/*
 * ps_registry_peek through the memo: an answer (a lease, or none) whose
 * sequence word is still the table's costs one read of that word.
 */
static int connect_peek(struct ps_policy *pol, uint16_t vport, uint16_t *real)
{
	struct ps_memo_scope scope = scope_of(pol);
	struct ps_reg_glance gl;
	int rc = memo_answer(pol, &scope, PS_MEMO_CONNECT, vport, real);

	if (rc != 1)
		return rc;
	rc = ps_registry_peek_lease(&pol->reg, pol->group, vport, &gl);
	memo_keep(&scope, PS_MEMO_CONNECT, vport, rc, &gl);
	if (rc == 0)
		*real = gl.real;
	return rc;
}

int ps_policy_connect(struct ps_policy *pol, enum ps_proto proto,
		      uint16_t vport, uint16_t *real, const char *sockdesc)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	int rc;

	ps_report_note(pol->cfg, PS_REPORT_CONNECT, proto, vport);
	/* One real port serves both protocols. */
	rc = ensure_registry(pol);
	if (rc)
		return registry_failure(pol, rc);
	/*
	 * A connect only reads the registry, so a sequence-checked read
	 * without the lock is enough: it spares every connect the lock's
	 * signal masking (two system calls). The lock is taken only when
	 * writers kept the table changing during the read.
	 */
	rc = connect_peek(pol, vport, real);
	if (rc == -EAGAIN) {
		rc = lock(pol, &g);
		if (rc)
			return registry_failure(pol, rc);
		l = ps_registry_find(&pol->reg, pol->group, vport);
		if (l != NULL)
			*real = ps_registry_port(&pol->reg, l);
		ps_registry_unlock(&pol->reg, &g);
		rc = l != NULL ? 0 : -ENOENT;
	} else if (rc != 0 && rc != -ENOENT) {
		registry_error(pol, "read", rc, NULL);
		return registry_failure(pol, rc);
	}

	if (rc == 0) {
		PS_INFO("connect %s -> %u group=%s", sockdesc, (unsigned)*real,
			pol->group);
		return 0;
	}
	if (pol->cfg->unmapped == PS_UNMAPPED_PASS) {
		PS_DEBUG("connect %s: not mapped in group=%s, passed through",
			 sockdesc, pol->group);
		return PS_PASS;
	}
	PS_INFO("connect %s refused: port %u is not mapped in group=%s"
		" (PORTSHIM_UNMAPPED=refuse)",
		sockdesc, (unsigned)vport, pol->group);
	return -ECONNREFUSED;
}

/* ---------------------------------------------------------- reverse */

/* ps_registry_peek_at through the memo, as connect_peek. */
static int reverse_peek(struct ps_policy *pol, uint16_t real, uint16_t *vport)
{
	struct ps_memo_scope scope = scope_of(pol);
	struct ps_reg_glance gl;
	int rc = memo_answer(pol, &scope, PS_MEMO_REVERSE, real, vport);

	if (rc != 1)
		return rc;
	memset(&gl, 0, sizeof(gl));
	rc = ps_registry_peek_vport(&pol->reg, pol->group, real, &gl.real,
				    &gl.seq);
	memo_keep(&scope, PS_MEMO_REVERSE, real, rc, &gl);
	if (rc == 0)
		*vport = gl.real;
	return rc;
}

int ps_policy_reverse(struct ps_policy *pol, uint16_t real, uint16_t *vport)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	int rc = PS_PASS;

	if (ensure_registry(pol) != 0)
		return PS_PASS;
	/* Lock-free first, as for a connect: getsockname is called often
	 * (servers log their address, frameworks ask for it per request). */
	switch (reverse_peek(pol, real, vport)) {
	case 0:
		return 0;
	case -EAGAIN:
		break;
	default:
		return PS_PASS;
	}
	if (ps_registry_lock(&pol->reg, &g) != 0)
		return PS_PASS;
	l = ps_registry_at(&pol->reg, real);
	if (l != NULL && l->kind == PS_KIND_GROUP &&
	    strncmp(l->group, pol->group, sizeof(l->group)) == 0) {
		*vport = l->vport;
		rc = 0;
	}
	ps_registry_unlock(&pol->reg, &g);
	return rc;
}
