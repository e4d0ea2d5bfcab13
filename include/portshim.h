/* SPDX-License-Identifier: MIT */
/*
 * portshim.h - ports that stay yours, for programs that link libportshim.
 *
 *     #include <portshim.h>
 *     cc prog.c $(pkg-config --cflags --libs portshim)
 *
 * portshim_pick() returns a port number that is free now (bindable for
 * TCP and UDP, on IPv4 and IPv6) and leased to the calling process in
 * portshim's registry: no `portshim pick`, portserver, other caller of
 * this API or program wrapped by `portshim run` that shares the registry
 * gets it until the process exits (however it exits) or calls
 * portshim_release(). Nothing needs to run in the background.
 *
 * Both functions are thread-safe, return 0 or a negative errno value and
 * never change errno. The environment is read once, at the first call:
 * PORTSHIM_RANGE (ports to pick from, default 20000-32767),
 * PORTSHIM_REGISTRY, PORTSHIM_LOG and PORTSHIM_LOG_FILE. See
 * portshim_pick(3).
 */
#ifndef PORTSHIM_H
#define PORTSHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of portshim_pick: which protocols the port must be free for.
 * 0 (or both) means TCP and UDP. */
#define PORTSHIM_PICK_TCP 0x1
#define PORTSHIM_PICK_UDP 0x2

/*
 * Picks a free port, leases it to the calling process and stores it in
 * *port. Returns 0, or:
 *   -EINVAL         port is NULL or flags has unknown bits;
 *   -EADDRNOTAVAIL  no free port is left in PORTSHIM_RANGE;
 *   another negative errno when the registry cannot be used (the reason
 *   is logged once; `portshim doctor` explains it).
 */
int portshim_pick(int flags, uint16_t *port);

/*
 * Ends the lease of a port this process picked. Returns 0, or:
 *   -ENOENT  port has no lease;
 *   -EPERM   its lease is not this process's own;
 *   another negative errno when the registry cannot be used.
 */
int portshim_release(uint16_t port);

#ifdef __cplusplus
}
#endif

#endif
