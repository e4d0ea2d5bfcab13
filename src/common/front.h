/* SPDX-License-Identifier: MIT */
/*
 * front.h - what both front ends decide before the policy.
 *
 * portshim sees a program's socket calls in two ways: the preload
 * (src/shim) interposes the C library's functions, and the seccomp
 * supervisor (src/supervisor) is told of the system calls. Both are
 * adapters: each reads a call's arguments its own way, asks this module
 * whether the call is one for the policy and with which port, and
 * performs the call. What is decided here is decided the same for both:
 *
 *   - an address of a bind, connect or send is a candidate if its port is
 *     non-zero and tagged for either protocol (the cheap test, before the
 *     socket is asked for its protocol); the call is the policy's if the
 *     port is tagged for the socket's protocol, a destination is on this
 *     host (loopback, unspecified, or an address of one of its
 *     interfaces: another host's port 8080 is not ours to move), and a
 *     TCP send names it with MSG_FASTOPEN (otherwise the kernel ignores
 *     the address, and so do we);
 *   - an address that a call reports (getsockname, getpeername, accept,
 *     recvfrom) is turned back to its virtual port if its port is in the
 *     range and, for a peer, the peer is on this host;
 *   - the name of a group for a process that was given none;
 *   - the text that names a call in log lines ("tcp 127.0.0.1:8080");
 *   - the probe that keeps a new lease off a number that any socket
 *     holds, for TCP and UDP.
 *
 * Nothing here allocates, logs or changes errno on success.
 */
#ifndef PS_FRONT_H
#define PS_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

/* What a call does with the address it names. */
enum ps_front_op {
	PS_FRONT_BIND,
	PS_FRONT_CONNECT,
	PS_FRONT_SEND, /* sendto, sendmsg, sendmmsg */
};

/*
 * The cheap test: addr (len bytes) has a non-zero port that cfg tags for
 * TCP or UDP. True with *port.
 */
bool ps_front_candidate(const struct ps_config *cfg,
			const struct sockaddr *addr, socklen_t len,
			uint16_t *port);

/* The protocol of socket fd: PS_TCP (TCP and MPTCP), PS_UDP, or -1. */
int ps_front_socket_proto(int fd);

/*
 * Whether a candidate's call (op, on a socket of protocol proto, PS_TCP
 * or PS_UDP, or -1 for neither; flags: a send's flags) goes to the
 * policy.
 */
bool ps_front_ours(const struct ps_config *cfg, enum ps_front_op op, int proto,
		   const struct sockaddr *addr, uint16_t port, int flags);

/*
 * Whether a reported address (len bytes; peer: getpeername, accept,
 * recvfrom) names a port to turn back to its virtual port: non-zero, in
 * cfg's range and, for a peer, on this host. True with *port.
 */
bool ps_front_reported(const struct ps_config *cfg, const struct sockaddr *addr,
		       socklen_t len, bool peer, uint16_t *port);

/*
 * A fresh group name for process pid, which was given none:
 * "ps-<pid>-<8 hex digits>" (the pid keeps names apart between processes
 * alive at once, the random part across pid reuse), in out (at least
 * PS_GROUP_MAX + 1 bytes).
 */
void ps_front_fresh_group(pid_t pid, char *out, size_t len);

/* "tcp ADDR:PORT" (the address's text with port), for log lines. */
void ps_front_describe(int proto, const struct sockaddr *addr, uint16_t port,
		       char *buf, size_t len);

/* A bind that the probe may use: the real one, never an interposed one
 * (arg: the probe's). */
typedef int (*ps_front_bind_fn)(void *arg, int fd, const struct sockaddr *addr,
				socklen_t len);

/*
 * The default probe of a new lease's number (policy.h): real must be
 * free of every socket, for TCP and UDP, as portpicker has it. TCP
 * remnants in TIME_WAIT alone do not count (docs/time-wait.md). Returns
 * 0 or -EADDRINUSE; errno is preserved.
 */
int ps_front_probe(uint16_t real, ps_front_bind_fn bind_fn, void *arg);

#endif
