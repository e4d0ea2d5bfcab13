/* SPDX-License-Identifier: MIT */
/*
 * keeper.h - the process that keeps a run's group alive.
 *
 * `portshim run` returns when CMD returns, with CMD's status, as a shell
 * would. But a group lives while any of its processes lives: a server
 * that daemonized (nginx, pg_ctl start, redis --daemonize yes) outlives
 * CMD and must keep its leases and its mapping file. So `run` starts a
 * keeper, which:
 *
 *   - is the group's owner: its pid and start time are the holder of the
 *     group's leases (PORTSHIM_GROUP_OWNER), so no lease of a live group
 *     is ever reclaimed, whichever process made it;
 *   - becomes a child subreaper (PR_SET_CHILD_SUBREAPER) and starts CMD:
 *     every descendant of CMD whose parent dies (a double fork) becomes
 *     the keeper's child, so "the keeper has no child left" is exactly
 *     "no process of the group is left";
 *   - passes on to CMD the signals that `run` passes on to it;
 *   - tells `run`, in one message, CMD's status and whether the group
 *     ended with CMD (released before `run` returns) or lives on;
 *   - when its last child ends, releases the group (leases, mapping files)
 *     and exits.
 *
 * While the group lives on, the keeper holds no terminal, pipe or file of
 * the caller's: its standard streams go to /dev/null and the other
 * descriptors it inherited are closed, so `$(portshim run
 * -- pg_ctl start)` and test drivers that read CMD's output do not wait
 * for the daemon.
 *
 * How it starts: a fork costs about a millisecond here (copying the page
 * tables, then a fault for every page either process writes). So unless
 * a supervisor runs in it (`--supervise`, whose threads need a process
 * of their own), the keeper starts thin: made with clone(CLONE_VM), it
 * shares `run`'s memory and makes raw system calls only while it starts
 * CMD, waits and passes signals on (keeper_int.h, keeper_thin.c). When
 * the group ends with CMD, `run` releases it; anything more (a group
 * that outlives CMD, a member's nudge, `run` killed) and the keeper
 * execs `portshim __keeper` in the same process, its identity unchanged,
 * and goes on as a whole keeper (ps_keeper_resume).
 *
 * The keeper also publishes the mapping file for group members that
 * cannot write it themselves (they run as another user, see handoff.h):
 * such a member sends an empty datagram to the keeper's abstract socket
 * (PORTSHIM_KEEPER), and the keeper rewrites the group's mapping files
 * from the registry. The datagram carries nothing: whoever sends it can
 * only make the keeper publish what the registry holds.
 */
#ifndef PS_KEEPER_H
#define PS_KEEPER_H

#include <stdbool.h>

#include "config.h"
#include "proc.h"
#include "registry.h"

struct ps_supervisor;

struct ps_keeper_job {
	char **cmd;
	char **run_argv;	  /* `run`'s own arguments, from "run" on */
	struct ps_supervisor *sv; /* NULL: not supervised */
	struct ps_registry *reg;  /* NULL: running without a registry */
	const char *owner;	  /* a joined group's owner, or NULL */
	/* Called in the keeper: publish the group's mapping files again
	 * (after a member's nudge), and release the group at the end
	 * (self: the keeper, the holder of the leases it made). */
	void (*publish)(struct ps_keeper_job *job);
	void (*release)(struct ps_keeper_job *job, const struct ps_ident *self);
	void *arg;
};

/*
 * Runs job->cmd under a keeper as described above. Returns `run`'s exit
 * status: CMD's, or 125/126/127 when it could not be started.
 */
int ps_keeper_run(struct ps_keeper_job *job);

/*
 * `portshim __keeper RUN CHAN SOCK CMD STATUS run ARGS...`: a keeper that started
 * thin, sharing `run`'s memory (keeper_int.h), goes on as a whole one,
 * in the same process. job is rebuilt from the environment. Returns only
 * on bad arguments.
 */
int ps_keeper_resume(struct ps_keeper_job *job, int argc, char **argv);

/*
 * When we are root, hands reg (may be NULL) down to the programs we start
 * as an inherited descriptor (PORTSHIM_REGISTRY_FD, handoff.h), so that
 * members of the group that run as another user use it.
 */
void ps_keeper_hand_down(struct ps_registry *reg);

#endif
