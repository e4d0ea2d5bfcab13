/* SPDX-License-Identifier: MIT */
/*
 * claims.h - real ports shared out between the registries of different
 * users (see docs/users.md).
 *
 * Each user's registry is private (0600, in a 0700 folder), so two users'
 * registries cannot see each other's leases: a port is protected from
 * the other user only while a socket is bound to it. When user A's
 * server restarts, B's next allocation would take A's real port, and A's
 * clients would reach B's server.
 *
 * So every registry also claims the real ports it leases, with one entry
 * per port in /dev/shm, which is sticky and root's: the first registry to
 * create /dev/shm/portshim-claim-PORT owns the port number until it frees
 * the lease, and the registries of other users skip that port. (The
 * entry is a symbolic link whose target, never followed, is the claim's
 * text: made at once with it, and no page of memory on tmpfs.)
 * A claim can only deny a port to others, never send a connect anywhere:
 * nothing reads a port number out of a claim. In a sticky folder only a
 * file's owner (or root) can remove or replace it, so no user can take
 * another's claim away. A user who claims ports needlessly denies them,
 * as binding them would.
 *
 * Claims are between users: a user's registries keep out of each
 * other's way by binding, as before (and as tests with registries of
 * their own expect). The claim file names its registry (the registry's
 * owner uid and creation time), so that a registry frees only its own
 * claims; and the holder of the
 * lease it was made for (pid and start time): a claim whose holder died
 * without freeing it (kill -9 of a whole group) stops denying the port,
 * and its owner's next allocation or `portshim gc` removes it. (A claim
 * that lies about its holder can deny a port, as binding it would.)
 *
 * Library code, called with the registry lock held: ps_claim_take and
 * ps_claim_drop allocate nothing and preserve errno (they run inside host
 * programs); ps_claims_each reads a directory (for the CLI).
 */
#ifndef PS_CLAIMS_H
#define PS_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "proc.h"
#include "registry.h"

/* The folder of the claims; it must be root's, sticky and open to all. */
#define PS_CLAIMS_DIR "/dev/shm"
#define PS_CLAIMS_PREFIX "portshim-claim-"

/*
 * Claims port for reg before it is leased to holder. Returns 0 when the
 * claim is reg's (made now, or made earlier by reg) or another registry
 * of this user's, or when it cannot be made (PS_CLAIMS_DIR missing or not
 * sticky and root's; another user's stale claim, whose lease's holder is
 * dead, is in the way): the port is then leased without one of its own.
 * Returns -EADDRINUSE when another user holds a claim whose holder lives.
 */
int ps_claim_take(const struct ps_registry *reg, uint16_t port,
		  const struct ps_ident *holder);

/* Removes reg's claim on port, if reg holds it. */
void ps_claim_drop(const struct ps_registry *reg, uint16_t port);

/*
 * Calls fn for every claim file of reg's (by port), so that `gc` can
 * remove those whose port reg no longer leases. Returns the number of
 * claims seen, or -errno.
 */
int ps_claims_each(const struct ps_registry *reg,
		   void (*fn)(void *arg, uint16_t port), void *arg);

/*
 * For `gc`, with reg's lock held: removes this user's claims that deny
 * for nothing: reg's own on ports that leased(arg, port) says reg no
 * longer leases, and those of any registry whose holder is dead (a
 * registry removed with its leases, say). fn (may be NULL) is called for
 * each first; with dry_run nothing is removed. Returns how many, or
 * -errno (claims not usable here).
 */
int ps_claims_sweep(const struct ps_registry *reg,
		    bool (*leased)(void *arg, uint16_t port), void *arg,
		    bool dry_run, void (*fn)(void *arg, uint16_t port),
		    void *fn_arg);

/* True if PS_CLAIMS_DIR can hold claims (root's, sticky, open to all). */
bool ps_claims_usable(void);

#endif
