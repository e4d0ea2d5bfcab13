/*
 * shim.h - what the interposition files of libportshim.so share: the
 * process's configuration and policy, the once-guarded initialisation and
 * the re-entrancy guard. Nothing here is exported from the library.
 */
#ifndef PS_SHIM_H
#define PS_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "policy.h"
#include "sockaddr.h"

#define PS_EXPORT __attribute__((visibility("default")))

/*
 * With _GNU_SOURCE, glibc declares the address arguments as transparent
 * unions (__SOCKADDR_ARG); our definitions must match its declarations.
 */
#if defined(__USE_GNU) && !defined(__cplusplus)
#define PS_SA(a) ((a).__sockaddr__)
#else
#define PS_SA(a) (a)
#endif

/* Immutable after the configuration stage. */
extern struct ps_config ps_shim_cfg;
/* The policy of this process's group (valid when ps_shim_active()). */
extern struct ps_policy ps_shim_pol;
/* Non-zero while this thread is inside the shim: calls go to libc. */
extern __thread int ps_shim_depth;

/*
 * Loads the configuration once (first intercepted call); true if the shim
 * has work to do in this process.
 */
bool ps_shim_active(void);

/* Opens the registry once (first call that needs it). */
void ps_shim_registry(void);

/* PS_TCP or PS_UDP for a socket, -1 for anything else. */
int ps_shim_socket_proto(int fd);

/*
 * Decides whether a call on fd to addr concerns a tagged port: returns
 * the protocol and stores the virtual port, or -1 (pass through).
 * Cheap for untagged ports: no system call before the bitmap test.
 */
int ps_shim_tagged(int fd, const struct sockaddr *addr, socklen_t len,
		   uint16_t *vport);

/*
 * Rewrites a destination: if addr is local and its port tagged for fd's
 * protocol, applies the policy. Returns PS_PASS (use addr as is), 0 (use
 * *out, which holds the rewritten copy) or -errno (fail the call).
 */
int ps_shim_destination(int fd, const struct sockaddr *addr, socklen_t len,
			union ps_sockaddr *out);

/*
 * Shows a real port of our group as its virtual port in an address that
 * the kernel reported into a caller's buffer of bufsize bytes (reported
 * is the length the kernel returned). Preserves errno.
 */
void ps_shim_reverse(struct sockaddr *addr, socklen_t bufsize,
		     socklen_t reported);

#endif
