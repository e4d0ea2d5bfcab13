/* SPDX-License-Identifier: MIT */
/*
 * envguard.h - what a process keeps of the environment it started with,
 * to put it back when it execs a program with an environment that
 * dropped it (env -i, a daemon's scrubbing, a test runner's clean
 * environment).
 *
 * The guard is a snapshot of portshim's variables (every one of
 * envvars.h's list) and of LD_PRELOAD, taken once at start, and which
 * entry of LD_PRELOAD is this library. A scan of a new environment tells
 * what it lacks, by name (for a warning) and as a list to build a new
 * environment from: the new one's entries in order (an LD_PRELOAD
 * without our entry gets it appended after the user's), then the missing
 * variables from the snapshot.
 *
 * No allocation and no lock: the exec wrappers run after vfork and
 * before the program's own initialisation. The caller provides the
 * memory of a built environment (ps_envguard_need bytes).
 */
#ifndef PS_ENVGUARD_H
#define PS_ENVGUARD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "envvars.h"

#define PS_ENVGUARD_NAME(n, l, s) +1
/* How many variables the guard keeps: envvars.h's list. */
#define PS_ENVGUARD_NKEPT (0 PS_ENV_VARIABLES(PS_ENVGUARD_NAME))

/* The snapshot's storage: "NAME=value" strings, NUL-separated. */
#define PS_ENVGUARD_SNAP 16384

struct ps_envguard {
	char buf[PS_ENVGUARD_SNAP];
	char *vars[PS_ENVGUARD_NKEPT]; /* "NAME=value", or NULL */
	char *preload;		       /* "LD_PRELOAD=...", or NULL */
	char self_entry[PATH_MAX];     /* our LD_PRELOAD entry, or "" */
	const char *self_base;	       /* its last component */
};

/* What a new environment lacks, compared with the snapshot. */
struct ps_env_scan {
	size_t count; /* entries in envp */
	bool missing[PS_ENVGUARD_NKEPT];
	size_t nmissing;
	bool preload_missing; /* our entry is not in LD_PRELOAD */
	char *const *preload; /* envp's LD_PRELOAD slot, or NULL */
};

/* The name of kept variable i (0 <= i < PS_ENVGUARD_NKEPT); 0 is
 * PORTSHIM_PORTS, without which a program escapes the shim. */
const char *ps_envguard_name(size_t i);

/* The index of entry's name ("NAME=value" or "NAME") among the kept
 * variables, or -1. */
int ps_envguard_index(const char *entry);

/*
 * Takes the snapshot of envp (NULL-terminated; NULL is empty) into g,
 * which must be zeroed. An empty value counts as unset; a variable that
 * does not fit in the snapshot is not kept. self names the file this
 * library was loaded from (NULL: unknown): the LD_PRELOAD entry naming
 * it, or failing that one with the same last component, is ours.
 */
void ps_envguard_snapshot(struct ps_envguard *g, char *const *envp,
			  const char *self);

/* Scans envp (NULL is empty) against the snapshot. */
void ps_envguard_scan(const struct ps_envguard *g, char *const envp[],
		      struct ps_env_scan *sc);

/*
 * The dropped names for a message, ", "-separated into buf (len bytes;
 * "..." at the end when they do not fit): "LD_PRELOAD, PORTSHIM_PORTS",
 * or "the portshim entry of LD_PRELOAD" when LD_PRELOAD is there
 * without it.
 */
void ps_envguard_names(const struct ps_env_scan *sc, char *buf, size_t len);

/* Bytes that ps_envguard_build needs for sc, or 0 if that overflows. */
size_t ps_envguard_need(const struct ps_envguard *g,
			const struct ps_env_scan *sc);

/*
 * Builds in mem (ps_envguard_need bytes, aligned for pointers) the
 * environment envp with what it lacks put back, and returns it.
 */
char **ps_envguard_build(const struct ps_envguard *g, char *const envp[],
			 const struct ps_env_scan *sc, void *mem);

#endif
