/* SPDX-License-Identifier: MIT */
/*
 * filter.h - the seccomp filter of supervised processes, and the kernel
 * features the supervisor needs.
 *
 * The filter, for the native system call ABI only:
 *   bind, connect, getsockname, getpeername, sendmsg, sendmmsg
 *       -> notify the supervisor, unless the call carries the cookie
 *          (supcall.h);
 *   sendto with a destination -> notify (no register is free for a
 *       cookie; portshim's own sendto goes out as sendmsg);
 *   execve, execveat -> notify (the supervisor forgets what it knew of
 *       the process's environment, and lets the call run);
 *   io_uring_setup -> fails with ENOSYS, so no socket call escapes
 *       through an io_uring (programs fall back to plain system calls);
 *   everything else, and every call of another ABI (32-bit or x32
 *       programs on a 64-bit kernel, whose numbers mean other calls) ->
 *       allowed.
 */
#ifndef PS_SV_FILTER_H
#define PS_SV_FILTER_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the program; the builder checks it. */
#define PS_SV_FILTER_MAX 64

struct ps_sv_filter {
	struct sock_filter insns[PS_SV_FILTER_MAX];
	unsigned short len;
};

/*
 * True if the supervisor knows this machine's system call ABI (the
 * filter's architecture check needs its AUDIT_ARCH value).
 */
int ps_sv_filter_supported(void);

/* Builds the filter for cookie into f. Returns 0 or -ENOSYS. */
int ps_sv_filter_build(struct ps_sv_filter *f, uint64_t cookie);

/*
 * Checks that the running kernel has what --supervise needs: seccomp
 * filters, the user-notification action, pidfd_open and pidfd_getfd.
 * Returns 0, or -errno with a sentence naming what is missing in why.
 */
int ps_sv_kernel_check(char *why, size_t len);

/*
 * In the child, before exec: sets no_new_privs and installs the filter
 * with a new notification listener. Async-signal-safe. Returns the
 * listener descriptor or -errno.
 */
int ps_sv_filter_install(const struct ps_sv_filter *f);

#endif
