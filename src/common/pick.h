/* SPDX-License-Identifier: MIT */
/*
 * pick.h - ports for programs that take a port argument.
 *
 * `portshim pick`, the C API (portshim_pick) and the portserver hand out
 * port numbers that are free now and stay their holder's: each number is
 * probed (TCP bind+listen and UDP bind on 0.0.0.0 and [::]) while the
 * registry lock is held, and leased as a PS_KIND_PICK lease at once, so
 * no other pick, API call, portserver request or shim bind that goes
 * through the same registry can get it until the lease ends. A lease ends
 * when its holder process dies (pid plus start time), when its time runs
 * out, or when it is released.
 *
 * Library code: no stdio, no threads, no signals; the caller logs.
 */
#ifndef PS_PICK_H
#define PS_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proc.h"
#include "registry.h"

/* Most ports one request may take. */
#define PS_PICK_MAX 1024

struct ps_pick_req {
	/* Protocols to probe, a PS_PROTO_BIT set; 0 means TCP and UDP. */
	unsigned protos;
	/* The process whose life keeps the leases. */
	struct ps_ident holder;
	/* CLOCK_REALTIME nanoseconds at which the leases end; 0 = never. */
	uint64_t expires_ns;
	/* A label shown by `portshim ls`; "" = none. */
	char group[PS_GROUP_MAX + 1];
	/* The range to pick from (PORTSHIM_RANGE). */
	uint16_t lo, hi;
	/* ip_local_reserved_ports as a 65536-bit map, or NULL. */
	const uint8_t *reserved;
};

/*
 * Checks that port can be bound now: for TCP, bind and listen on 0.0.0.0
 * and on [::] (IPV6_V6ONLY, where IPv6 exists); for UDP, bind on both.
 * No SO_REUSEADDR or SO_REUSEPORT, so a port in TIME_WAIT or held by a
 * reuse-port listener of the same user counts as taken. The binds bypass
 * the preload library and the seccomp supervisor (a probe must never be
 * rewritten, nor wait for a registry lock its caller holds). Every probe
 * socket is closed before returning. protos as in struct ps_pick_req.
 * Returns 0, -EADDRINUSE if taken, or another -errno (e.g. -EACCES for a
 * privileged port).
 */
int ps_pick_probe(uint16_t port, unsigned protos);

/*
 * Leases count ports (1..PS_PICK_MAX) from [req->lo, req->hi] to
 * req->holder, probing each with ps_pick_probe, and stores them in ports.
 * All or nothing: on failure no lease is left. Takes and releases the
 * registry lock itself. The lease's maker is the holder too: the lease is
 * made on the holder's behalf, and `portshim ls` shows the maker's pid and
 * command. Returns 0; -ESRCH if the holder is not alive; -EADDRNOTAVAIL
 * if the range has no free port left (dead leases were reclaimed first);
 * -EINVAL for a bad request; or another -errno (locking, probing).
 */
int ps_pick(struct ps_registry *reg, const struct ps_pick_req *req,
	    uint16_t *ports, unsigned count);

/*
 * Ends the pick lease of port. Without force, only when its holder is one
 * of the n owners (pid and start time). The lease as it was is copied to
 * *old when old is not NULL. Takes the registry lock itself. Returns 0;
 * -ENOENT if port has no lease; -EINVAL if it is not a pick lease (group
 * leases end with their group); -EPERM if its holder is not one of the
 * owners; or a -errno from locking.
 */
int ps_pick_release(struct ps_registry *reg, uint16_t port,
		    const struct ps_ident *owners, size_t n, bool force,
		    struct ps_lease *old);

#endif
