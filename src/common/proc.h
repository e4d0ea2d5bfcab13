/* SPDX-License-Identifier: MIT */
/*
 * proc.h - process identity: pid plus start time, so that a reused pid is
 * never mistaken for the process that made a lease.
 */
#ifndef PS_PROC_H
#define PS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ps_ident {
	uint32_t pid;
	uint32_t pad;
	uint64_t start; /* field 22 of /proc/PID/stat, clock ticks since boot */
};

/*
 * Reads pid's start time. Returns 0, -ESRCH if no such process (or it is
 * a zombie: a zombie holds no sockets and is treated as dead), or another
 * -errno. Uses open/read/close only: no allocation, no stdio.
 */
int ps_proc_ident(pid_t pid, struct ps_ident *out);

/*
 * The calling process's identity, cached per pid (recomputed after fork).
 * Returns 0 or -errno.
 */
int ps_proc_self(struct ps_ident *out);

/*
 * This process's pid, from the cache ps_proc_self fills (no system call
 * once filled; getpid() before, or where the cache cannot be had).
 */
pid_t ps_proc_pid(void);

/*
 * 1 if the process named by id is alive (same pid and same start time,
 * not a zombie), 0 if not. id->pid == 0 is never alive.
 */
int ps_proc_alive(const struct ps_ident *id);

/*
 * Copies pid's command line into buf with NULs turned into spaces, or
 * "[comm]" for kernel threads / unreadable cmdlines, always NUL-terminated
 * and truncated to len. Returns 0 or -errno (buf then holds "?").
 */
int ps_proc_cmdline(pid_t pid, char *buf, size_t len);

/* Formats id as "PID:START" into buf. */
void ps_ident_format(const struct ps_ident *id, char *buf, size_t len);

/* Parses "PID:START". Returns 0 or -EINVAL. */
int ps_ident_parse(const char *text, struct ps_ident *out);

#endif
