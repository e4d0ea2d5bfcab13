/* SPDX-License-Identifier: MIT */
/*
 * job.h - `portshim run --per-job`: a group for each job of a job runner.
 *
 * What a job is. Under --per-job, PORTSHIM_PER_JOB holds the run's group
 * (the base). A *runner* is a process of the run that is in no job yet
 * (CMD itself, and what CMD runs in its place or forks without running a
 * new program), or one that runs a known job runner program (make, gmake,
 * ctest, xargs, ninja, samu, parallel: PS_JOB_RUNNERS), wherever it is. A
 * *job* is a process that a runner starts with a new program: fork or
 * vfork then exec, posix_spawn, whatever the call, seen by the exec
 * wrappers. Its environment gets
 *
 *     PORTSHIM_GROUP=<base>.j<8 hex digits>   a fresh group
 *     PORTSHIM_JOB=<that group>               "this is a job's group"
 *     PORTSHIM_MAP_FILE=<base map>.j<...>.map its mapping file
 *
 * and no PORTSHIM_GROUP_OWNER: the job's first process (its *leader*)
 * makes itself the owner when it starts, so every lease the job makes is
 * held by the leader and dies with it. Everything the job starts inherits
 * the group, except what a runner inside it starts (the jobs of a
 * recursive make). When the leader exits, it releases the group's leases
 * and mapping file; if it is killed, its leases are dead at once (any
 * allocation or `portshim gc` reclaims them) and the run removes the
 * mapping file when it ends.
 */
#ifndef PS_JOB_H
#define PS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The programs that are job runners wherever they run (by base name). */
#define PS_JOB_RUNNERS "make, gmake, ctest, xargs, ninja, samu, parallel"

/* Characters of a job suffix: ".j" and 8 hex digits. */
#define PS_JOB_SUFFIX_LEN 10

/*
 * True if a process started with argv (argc entries) runs a known job
 * runner: argv[0]'s base name is one, or argv[0] is an interpreter (perl,
 * sh, bash, dash, python3...) running a script whose base name is one
 * (GNU parallel is a Perl script: the kernel starts it as
 * "/usr/bin/perl /usr/bin/parallel ...").
 */
bool ps_job_runner_argv(int argc, char *const argv[]);

/*
 * The group of a new job: base + ".j" + 8 hex digits of r, into out
 * (PS_GROUP_MAX + 1 bytes). Returns 0 or -ENAMETOOLONG.
 */
int ps_job_group(const char *base, uint32_t r, char *out);

/*
 * The mapping file of the base group, from the mapping file map of group
 * (the base's own, or a job's: "<stem>.jXXXXXXXX.map"), into out (len
 * bytes). Returns 0 or -ENAMETOOLONG.
 */
int ps_job_base_map(const char *map, const char *group, const char *base,
		    char *out, size_t len);

/*
 * Releases a finished job's group: frees the leases of group whose holder
 * is self or dead (a lease of a live other holder stays), then removes
 * map (may be NULL) if no lease of the group is left. Opens the registry
 * at registry (NULL: the default) itself. Returns the number of leases
 * freed, or -errno.
 */
int ps_job_release(const char *registry, const char *group,
		   const struct ps_ident *self, const char *map);

#endif
