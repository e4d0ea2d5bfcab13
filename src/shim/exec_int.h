/* SPDX-License-Identifier: MIT */
/*
 * exec_int.h - what the three files of the exec wrappers share:
 *
 *   exec.c        the exported exec*(), posix_spawn*() and _exit()
 *                 trampolines, and the wrappers that run the checks and
 *                 call the real function;
 *   exec_check.c  the decision: can the program be seen, does its
 *                 environment drop the shim, what PORTSHIM_BYPASS does
 *                 then (the environment guard itself is envguard.c);
 *   exec_job.c    --per-job: who starts a job, the job's environment,
 *                 the leader's release at exit.
 *
 * Everything here runs in a vfork child too: system calls, stack buffers
 * and state written once by the constructor (ps_exec_init).
 */
#ifndef PS_EXEC_INT_H
#define PS_EXEC_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Bytes of stack for a rebuilt environment (pointers and LD_PRELOAD). */
#define PS_EXEC_ENV_AREA 4096
/* Pointers of a job's environment on the stack before mmap is needed. */
#define PS_EXEC_JOB_PTRS 512

/* What an exec passes on: the environment, and how to run the program. */
struct ps_exec_env {
	char *const *envp; /* the environment to pass on */
	void *map;	   /* mmap'd storage, or NULL */
	size_t maplen;
	bool supervise;	     /* run it as `portshim supervise --` */
	char prog[PATH_MAX]; /* the program, for that command */
	union {
		char *ptrs[PS_EXEC_ENV_AREA / sizeof(char *)];
		char bytes[PS_EXEC_ENV_AREA];
	} area;
	/* A job's environment (--per-job): its pointers and new entries. */
	void *job_map; /* mmap'd pointers, or NULL */
	size_t job_maplen;
	char *job_ptrs[PS_EXEC_JOB_PTRS];
	char job_group_var[sizeof("PORTSHIM_GROUP=") + PS_GROUP_MAX];
	char job_var[sizeof("PORTSHIM_JOB=") + PS_GROUP_MAX];
	char job_map_var[sizeof("PORTSHIM_MAP_FILE=") + PATH_MAX];
};

/* ---------------------------------------------------- exec_check.c */

/*
 * At load, from the start configuration (enabled): the bypass mode, the
 * snapshot of the environment, portshim's program for supervise.
 */
void ps_exec_check_init(const struct ps_config *cfg);

/*
 * Decides an exec of prog (for messages) whose file is path relative to
 * dirfd, or the open descriptor fd when path is NULL, with environment
 * envp. Returns 0 (go ahead with xe->envp, as `portshim supervise` when
 * xe->supervise) or -EPERM. Preserves errno.
 */
int ps_exec_check(const char *prog, int dirfd, const char *path, int fd,
		  char *const envp[], struct ps_exec_env *xe);

/* The same for the p-variants: the file execvp() would run. */
int ps_exec_check_p(const char *file, char *const envp[],
		    struct ps_exec_env *xe);

/* Releases what a check or a job mapped (after a failed exec). */
void ps_exec_env_done(struct ps_exec_env *xe);

/* portshim's program, for PORTSHIM_BYPASS=supervise ("" if none). */
extern char ps_exec_sup_prog[PATH_MAX];

/* ------------------------------------------------------ exec_job.c */

/*
 * At load, before the configuration is read: with PORTSHIM_PER_JOB set,
 * what this process is (a runner, a job's leader); a job's first process
 * becomes its group's owner (PORTSHIM_GROUP_OWNER).
 */
void ps_exec_job_setup(int argc, char **argv);

/* Then, with the start configuration, when it is enabled. */
void ps_exec_job_start(const struct ps_config *cfg);

/*
 * If this exec (spawn: a posix_spawn) starts a new job, replaces
 * xe->envp by the job's environment. Nothing changes when it cannot.
 */
void ps_exec_job_apply(struct ps_exec_env *xe, const char *prog, bool spawn);

/* _exit() and _Exit(): the leader's release, then the real _exit(). */
_Noreturn void ps_exec_exit(int status);

#endif
