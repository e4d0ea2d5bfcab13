/* SPDX-License-Identifier: MIT */
/*
 * policy.h - which port a tagged bind gets, where a tagged connect goes,
 * and what a reported address should say: everything that does not depend
 * on how the call was intercepted. The preload library is one front end;
 * a seccomp supervisor can be another on the same code.
 *
 * Return convention of the decision functions:
 *   PS_PASS (1)  not ours: perform the call unchanged;
 *   0            done (bind) or rewritten (connect: use *real);
 *   -errno       fail the call with this errno (a log line was written).
 */
#ifndef PS_POLICY_H
#define PS_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"

#define PS_PASS 1

/*
 * Tells whether a real port is free for a NEW lease: returns 0, or
 * -EADDRINUSE if any socket holds the number (TCP or UDP, any address).
 * Supplied by the front end, which knows how to reach the kernel without
 * coming back into itself.
 */
typedef int (*ps_probe_fn)(void *arg, uint16_t real);

struct ps_policy {
	const struct ps_config *cfg;
	char group[PS_GROUP_MAX + 1]; /* resolved group name */
	char map_file[PATH_MAX];      /* "" = none */
	struct ps_ident holder;	      /* whose life keeps our leases */
	bool reg_ready;		      /* registry opened */
	int reg_errno;		      /* open failed with this; 0 = not tried */
	struct ps_registry reg;
	uint8_t reserved[65536 / 8]; /* ip_local_reserved_ports */
	/*
	 * NULL, or checked before a real port is tried for a new lease:
	 * the caller's own socket may have SO_REUSEADDR or SO_REUSEPORT,
	 * with which its bind succeeds on a port that a socket outside
	 * the registry holds (a same-user SO_REUSEPORT listener, a bound
	 * but not yet listening socket), or the other protocol's port may
	 * be taken: a new lease must start on a number nobody holds.
	 */
	ps_probe_fn probe;
	void *probe_arg; /* probe's first argument */
};

/*
 * Prepares pol for the group (already resolved by the front end, with
 * PORTSHIM_GROUP_FROM applied) and map_file (NULL = none; a derived group
 * gets the mapping file path from ps_policy_map_path). Does not open the
 * registry yet. Returns 0 or -EINVAL for an invalid group.
 */
int ps_policy_init(struct ps_policy *pol, const struct ps_config *cfg,
		   const char *group, const char *map_file);

/*
 * What every front end does to find its group: resolves
 * PORTSHIM_GROUP_FROM (values read through get) on top of base (the
 * configured group, or a fresh name the front end made), derives the
 * mapping file of a worker group with ps_policy_map_path, and calls
 * ps_policy_init. Logs, as one line each, a suffix too long (base is then
 * used) and an invalid group. Returns 0 or -EINVAL (portshim is inactive
 * for the caller).
 */
int ps_policy_setup(struct ps_policy *pol, const struct ps_config *cfg,
		    ps_getenv_fn get, const char *base);

/*
 * Opens the registry if not yet done (idempotent; remembers a failure and
 * logs it once). Not thread-safe: a multi-threaded front end calls it
 * once, under its own once-guard, before the decision functions (which
 * call it too, for single-threaded front ends). Returns 0 or -errno.
 */
int ps_policy_open(struct ps_policy *pol);

/*
 * A bind of a tagged port: reuses the group's lease of vport, or allocates
 * a new real port; in both cases try_bind(arg, real) binds the caller's
 * own socket while the registry lock is held (no window between choosing
 * and binding). Stores the real port in *real. Publishes the mapping file
 * when the group's mapping changed. sockdesc (e.g. "tcp 0.0.0.0:8080")
 * is only used for log lines.
 */
int ps_policy_bind(struct ps_policy *pol, enum ps_proto proto, uint16_t vport,
		   ps_try_bind_fn try_bind, void *arg, uint16_t *real,
		   const char *sockdesc);

/*
 * ps_policy_bind on behalf of another process: maker (pid and start
 * time) is recorded as the lease's maker, and stands for the caller in
 * the holder fallback and the "is the last binder alive" test. For a
 * front end that binds a socket of another process (the supervisor).
 */
int ps_policy_bind_as(struct ps_policy *pol, const struct ps_ident *maker,
		      enum ps_proto proto, uint16_t vport,
		      ps_try_bind_fn try_bind, void *arg, uint16_t *real,
		      const char *sockdesc);

/*
 * The log line of a bind that failed with EADDRINUSE, at the info level
 * (nothing below it): names who holds port (the real port bound) of
 * proto, as ps_netstat_holder finds it, and its lease if pol (may be
 * NULL) has its registry open and the port is leased:
 *   bind tcp 0.0.0.0:8080 failed: Address already in use; held by pid
 *   456 (nginx: master process) group=g2 lease 8080->24117
 * For tagged binds ps_policy_bind calls it; a front end calls it for the
 * binds it passes through. No allocation; errno preserved.
 */
void ps_policy_clash(struct ps_policy *pol, enum ps_proto proto, uint16_t port,
		     const char *sockdesc);

/*
 * A connect (or sendto) to a local address and a tagged vport: stores the
 * group's real port in *real, or applies PORTSHIM_UNMAPPED (-ECONNREFUSED
 * or PS_PASS).
 */
int ps_policy_connect(struct ps_policy *pol, enum ps_proto proto,
		      uint16_t vport, uint16_t *real, const char *sockdesc);

/*
 * A reported address (getsockname, getpeername, accept, recvfrom): if
 * real is one of the group's real ports, stores its virtual port in
 * *vport and returns 0; otherwise PS_PASS. Never fails.
 */
int ps_policy_reverse(struct ps_policy *pol, uint16_t real, uint16_t *vport);

/*
 * The mapping file of a derived group: for base "<dir>/<name>.map" and a
 * suffix ".gw0" gives "<dir>/<name>.gw0.map"; without ".map" appends the
 * suffix. Returns 0 or -ENAMETOOLONG.
 */
int ps_policy_map_path(const char *base_map, const char *suffix, char *out,
		       size_t len);

/*
 * Rewrites the group's mapping file from the registry (lock held).
 * Returns 0 or -errno.
 */
int ps_policy_publish(struct ps_policy *pol);

#endif
