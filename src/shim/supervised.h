/* SPDX-License-Identifier: MIT */
/*
 * supervised.h - the preload library under `portshim run --supervise`.
 *
 * A process that the seccomp supervisor watches and that also has the
 * preload library (every dynamically linked program under --supervise)
 * must not have its calls rewritten twice: the preload rewrites what it
 * sees, and its own system calls carry the supervisor's cookie
 * (supcall.h), which the filter lets through. The supervisor then only
 * sees what the preload cannot: raw system calls (Go, with or without
 * cgo), glibc's internal calls, and whole static programs.
 */
#ifndef PS_SHIM_SUPERVISED_H
#define PS_SHIM_SUPERVISED_H

#include <stdint.h>

#include "real.h"

/*
 * If PORTSHIM_SUPERVISED holds a cookie, points the entries of r that the
 * filter intercepts (bind, connect, getsockname, getpeername, sendto,
 * sendmsg, sendmmsg) at cookie-carrying system calls. Called once, by
 * real.c, before the table is published. Otherwise leaves r alone.
 */
void ps_real_supervised(struct ps_real *r);

/*
 * The supervisor's cookie from PORTSHIM_SUPERVISED, or 0: the library's
 * one reader of it, read once (every caller that races to read it first
 * stores the same value). The real-symbol table (above) and syscall()
 * (syscall.c) use it.
 */
uint64_t ps_shim_cookie(void);

#endif
