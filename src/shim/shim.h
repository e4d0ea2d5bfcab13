/* SPDX-License-Identifier: MIT */
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
#include "front.h"
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
/*
 * Non-zero while this thread runs the shim's one-time initialisation:
 * calls made then (from a signal handler, say) go straight to libc.
 * initial-exec: a preloaded library's TLS is static, and reading it must
 * not allocate (the general-dynamic model may, in a signal handler).
 */
extern __thread int ps_shim_depth __attribute__((tls_model("initial-exec")));

/*
 * Loads the configuration once (first intercepted call); true if the shim
 * has work to do in this process.
 */
bool ps_shim_active(void);

/* Opens the registry once (first call that needs it). */
void ps_shim_registry(void);

/*
 * The first, system-call-free half of ps_shim_tagged: true if addr is
 * AF_INET/AF_INET6 with a port that PORTSHIM_PORTS may tag for some
 * protocol (stored in *vport) and the shim is active.
 */
bool ps_shim_maybe(const struct sockaddr *addr, socklen_t len, uint16_t *vport);

/*
 * Decides whether a call (op, with a send's flags) on fd to addr goes to
 * the policy, as front.h has it: returns the protocol and stores the
 * virtual port, or -1 (pass through). Cheap for untagged ports: no
 * system call before the bitmap test.
 */
int ps_shim_tagged(int fd, enum ps_front_op op, const struct sockaddr *addr,
		   socklen_t len, int flags, uint16_t *vport);

/*
 * bind() through the policy, with bind()'s own result convention (0, or
 * -1 and errno): what the exported bind does, for other entry points
 * (syscall(SYS_bind, ...)).
 */
int ps_shim_bind(int fd, const struct sockaddr *addr, socklen_t len);

/*
 * Rewrites the destination of a connect or send (op, flags): if the call
 * is the policy's (ps_shim_tagged), applies it. Returns PS_PASS (use addr
 * as is), 0 (use *out, which holds the rewritten copy) or -errno (fail
 * the call).
 */
int ps_shim_destination(int fd, enum ps_front_op op,
			const struct sockaddr *addr, socklen_t len, int flags,
			union ps_sockaddr *out);

/*
 * The second half of ps_shim_destination, for a caller that has asked
 * ps_front_ours itself: applies the policy. Same returns.
 */
int ps_shim_redirect(int proto, uint16_t vport, const struct sockaddr *addr,
		     socklen_t len, union ps_sockaddr *out);

/*
 * Shows a real port of our group as its virtual port in an address that
 * the kernel reported into a caller's buffer of bufsize bytes (reported
 * is the length the kernel returned). Preserves errno.
 */
void ps_shim_reverse(struct sockaddr *addr, socklen_t bufsize,
		     socklen_t reported);

/*
 * ps_shim_reverse for a peer's address (getpeername, accept, recvfrom,
 * recvmsg): only a peer on this host can be at one of our group's real
 * ports; a remote peer's port is never changed. Preserves errno.
 */
void ps_shim_reverse_peer(struct sockaddr *addr, socklen_t bufsize,
			  socklen_t reported);

/*
 * The program is setting up an io_uring (io_uring_setup through
 * syscall()): the binds and connects it submits there (IORING_OP_BIND,
 * IORING_OP_CONNECT) never reach the shim. Says so once per process, as
 * for a program the preload cannot see (PORTSHIM_BYPASS): warn (and
 * supervise, whose supervisor refuses io_uring itself) log one line;
 * ignore says nothing; fail also makes the call fail with ENOSYS, so
 * that the program falls back to plain system calls. Returns 0 (make the
 * call) or -ENOSYS. Preserves errno.
 */
int ps_shim_io_uring(void);

/*
 * What the library sets up at load, called by its one constructor
 * (init.c) in this order: the real libc symbols (real.c: ps_real_resolve),
 * libc's syscall() and the supervisor's cookie (syscall.c), then the
 * exec wrappers' state (exec.c: the start configuration, the environment
 * guard, --per-job). Each is also safe to reach before that (a call from
 * another library's constructor): it resolves what it needs itself.
 */
void ps_syscall_init(void);
void ps_exec_init(int argc, char **argv);

#endif
