/* SPDX-License-Identifier: MIT */
/*
 * supervise.h - `portshim run --supervise`: a seccomp user-notification
 * supervisor that applies portshim's policy to programs the preload
 * library cannot see (static binaries, Go programs, raw system calls).
 *
 * How a run uses it:
 *
 *   ps_supervise_prepare()   before fork: checks the kernel, builds the
 *                            filter, sets PORTSHIM_SUPERVISED for CMD;
 *   ps_supervise_child()     in the child, just before exec: installs the
 *                            filter and hands its listener to the parent;
 *   ps_supervise_start()     in the parent, right after fork: takes the
 *                            listener and starts serving notifications in
 *                            threads of its own;
 *   ps_supervise_stop()      once CMD has exited: stops serving.
 *
 * The listener is handed over with pidfd_getfd() (the parent takes it out
 * of the child), not sent over a socket: once the filter is installed,
 * the child's own sendmsg() would wait for a supervisor that does not
 * have the listener yet.
 *
 * Every descendant of CMD inherits the filter. Dynamically linked ones
 * also have the preload library, whose own calls carry the cookie and
 * pass the filter untouched (supcall.h): the supervisor handles only
 * what the preload does not see, and nothing is rewritten twice.
 */
#ifndef PS_SUPERVISE_H
#define PS_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct ps_supervisor;

/*
 * Prepares a supervisor for a run whose own configuration is cfg (its
 * log level and file are used for the supervisor's log lines). Reuses
 * the cookie of an enclosing supervisor (PORTSHIM_SUPERVISED), so that
 * the calls portshim makes pass both filters, or makes a new one, and
 * exports it. Returns 0 and the supervisor in *out, or -errno with one
 * sentence in why (kernel features missing, unknown architecture).
 * Under a portshim supervisor already, returns 0 with *out NULL: that
 * one sees the command too (the functions below accept NULL).
 */
int ps_supervise_prepare(struct ps_supervisor **out,
			 const struct ps_config *cfg, char *why, size_t len);

/*
 * In the child of fork(), just before exec: asks for SIGKILL when the
 * parent (the supervisor) dies, sets no_new_privs, installs the filter
 * and waits until the parent has taken the listener.
 * Async-signal-safe. Returns 0, or -errno (the parent learns it too; the
 * child should then _exit()).
 */
int ps_supervise_child(struct ps_supervisor *sv);

/*
 * In the parent, right after fork(), before waiting for the exec: takes
 * the listener out of child and starts serving. Returns 0, or -errno
 * with one sentence in why (the child then exits by itself without
 * running CMD).
 */
int ps_supervise_start(struct ps_supervisor *sv, pid_t child, char *why,
		       size_t len);

/*
 * Stops serving and frees the supervisor (NULL is allowed). Calls still
 * in progress get a moment to finish; a descendant of CMD that outlives
 * it and makes an intercepted call afterwards gets ENOSYS.
 */
void ps_supervise_stop(struct ps_supervisor *sv);

/*
 * For PORTSHIM_BYPASS=supervise: true if the program that cmd names (as
 * execvp would find it) is one the preload cannot see but the supervisor
 * can (static, Go or musl); says so in a log line at PORTSHIM_LOG=info
 * (cfg: the run's configuration).
 */
bool ps_supervise_wanted(const struct ps_config *cfg, const char *cmd);

/*
 * True if the supervisor sees the socket calls of the program that cmd
 * names: any program of this machine's ABI (under no_new_privs, set-id
 * bits and file capabilities do not apply, so the preload reaches those
 * too). False for a program of another ABI (32-bit, x32), which the
 * filter lets through, and for one that cannot be inspected.
 */
bool ps_supervise_covers(const char *cmd);

#endif
