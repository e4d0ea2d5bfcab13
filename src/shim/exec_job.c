/* SPDX-License-Identifier: MIT */
/*
 * exec_job.c - --per-job in the exec wrappers (exec_int.h; what a job is:
 * src/common/job.h). A runner's exec of a new process starts a job with
 * a group of its own; a job's first process owns that group and releases
 * it when it exits (a destructor, and _exit/_Exit for shells, which run
 * none).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "config.h"
#include "exec_int.h"
#include "job.h"
#include "log.h"
#include "policy.h"
#include "proc.h"
#include "rawsys.h"
#include "real.h"

/* Written once by the constructor; read-only afterwards. */
static char job_base[PS_GROUP_MAX + 1];	 /* PORTSHIM_PER_JOB, or "" */
static char job_base_map[PATH_MAX];	 /* the base group's mapping file */
static bool job_runner;			 /* exec*() here starts a job */
static pid_t job_init_pid;		 /* our pid when this image started */
static bool job_leader;			 /* we own our job's group */
static struct ps_ident job_self;	 /* the leader: us */
static char job_group[PS_GROUP_MAX + 1]; /* our job's group */
static char job_map[PATH_MAX];		 /* and its mapping file */
static char job_registry[PATH_MAX];	 /* PORTSHIM_REGISTRY, or "" */

/*
 * --per-job: what this process is (src/common/job.h). A runner starts a
 * job with each new program; a job's first process becomes its group's
 * owner here, before the configuration is read, so that the shim, and
 * every child, sees PORTSHIM_GROUP_OWNER naming it.
 */
void ps_exec_job_setup(int argc, char **argv)
{
	const char *per = secure_getenv("PORTSHIM_PER_JOB");
	const char *group = secure_getenv("PORTSHIM_GROUP");
	const char *job = secure_getenv("PORTSHIM_JOB");
	const char *owner = secure_getenv("PORTSHIM_GROUP_OWNER");
	const char *map = secure_getenv("PORTSHIM_MAP_FILE");
	struct ps_ident id;
	char text[64];
	bool in_job;

	if (per == NULL || per[0] == '\0' || !ps_group_valid(per) ||
	    strlen(per) + PS_JOB_SUFFIX_LEN > PS_GROUP_MAX)
		return;
	memcpy(job_base, per, strlen(per) + 1);
	job_init_pid = getpid();
	in_job = group != NULL && job != NULL && strcmp(group, job) == 0;
	job_runner = !in_job || ps_job_runner_argv(argc, argv);
	if (map != NULL && map[0] != '\0' && group != NULL &&
	    ps_job_base_map(map, group, per, job_base_map,
			    sizeof(job_base_map)) < 0)
		job_base_map[0] = '\0';
	if (!in_job || ps_proc_self(&job_self) < 0)
		return;
	if (owner == NULL || owner[0] == '\0') {
		/* The job's first process: the group is ours. */
		ps_ident_format(&job_self, text, sizeof(text));
		if (setenv("PORTSHIM_GROUP_OWNER", text, 1) < 0)
			return;
	} else if (ps_ident_parse(owner, &id) < 0 || id.pid != job_self.pid ||
		   id.start != job_self.start) {
		return; /* a process of the job, not its leader */
	}
	/* The leader (also after it ran another program in its place). */
	job_leader = true;
	snprintf(job_group, sizeof(job_group), "%s", group);
	if (map != NULL)
		snprintf(job_map, sizeof(job_map), "%s", map);
}

/* exec_int.h: the registry the leader releases its group in. */
void ps_exec_job_start(const struct ps_config *cfg)
{
	memcpy(job_registry, cfg->registry, sizeof(job_registry));
}

/*
 * The end of a job: its leader, exiting, releases the group's leases
 * (all made for it) and its mapping file, so a finished job's ports go
 * back at once rather than when the whole run ends.
 */
__attribute__((destructor)) static void job_fini(void)
{
	static bool done;
	int saved = errno;

	if (job_leader && !done && (uint32_t)getpid() == job_self.pid) {
		done = true;
		/* A group that never got a lease has no mapping file: most
		 * jobs (a make's $(shell ...), a compiler) end here, without
		 * opening the registry. */
		if (job_map[0] == '\0' || access(job_map, F_OK) == 0)
			ps_job_release(job_registry, job_group, &job_self,
				       job_map);
	}
	errno = saved;
}

/*
 * Shells end with _exit() (dash does, after its own clean-up), which runs
 * no destructor: the leader of a job that is a shell script would never
 * release its group. So _exit and _Exit are interposed too, for that
 * alone. A vfork or fork child that calls them is not the leader (its pid
 * differs) and goes straight through.
 */
_Noreturn void ps_exec_exit(int status)
{
	job_fini();
#ifdef PS_HAVE_RAWSYS
	/* Before the table: the kernel's exit, with no lock taken. */
	if (!ps_real_ready())
		ps_real_exit_raw(status);
#endif
	ps_real()->exit(status);
	ps_real_exit_raw(status);
}

/* ----------------------------------------------------------- jobs */

/* True if entry ("NAME=value") sets one of the variables a job replaces. */
static bool job_replaced(const char *entry)
{
	return strncmp(entry, "PORTSHIM_GROUP=", 15) == 0 ||
	       strncmp(entry, "PORTSHIM_JOB=", 13) == 0 ||
	       strncmp(entry, "PORTSHIM_MAP_FILE=", 18) == 0 ||
	       strncmp(entry, "PORTSHIM_GROUP_OWNER=", 21) == 0;
}

/*
 * --per-job: when a runner starts a program in a new process (spawn:
 * posix_spawn; otherwise the exec of a forked or vforked child, whose pid
 * is not the one this image started with), the program is a new job:
 * xe->envp is replaced by a copy with the job's group, mapping file and
 * marker, and without an owner (src/common/job.h). On the stack up to
 * PS_EXEC_JOB_PTRS entries, in a mapping beyond. Nothing changes when it cannot
 * be done (the job then shares the runner's group, as without
 * --per-job). System calls and stack buffers only: safe after vfork.
 */
void ps_exec_job_apply(struct ps_exec_env *xe, const char *prog, bool spawn)
{
	char group[PS_GROUP_MAX + 1], map[PATH_MAX];
	char *const *envp = xe->envp;
	size_t n = 0, o = 0, i, need;
	char **ptrs;
	uint32_t r;

	if (!job_runner || (!spawn && getpid() == job_init_pid))
		return;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)(uintptr_t)&r;
	if (ps_job_group(job_base, r, group) < 0)
		return;
	map[0] = '\0';
	if (job_base_map[0] != '\0' &&
	    ps_policy_map_path(job_base_map, group + strlen(job_base), map,
			       sizeof(map)) < 0)
		return;
	while (envp != NULL && envp[n] != NULL)
		n++;
	need = n + 4;
	if (need <= PS_EXEC_JOB_PTRS) {
		ptrs = xe->job_ptrs;
	} else {
		void *m = mmap(NULL, need * sizeof(char *),
			       PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return;
		xe->job_map = m;
		xe->job_maplen = need * sizeof(char *);
		ptrs = m;
	}
	for (i = 0; i < n; i++)
		if (!job_replaced(envp[i]))
			ptrs[o++] = envp[i];
	snprintf(xe->job_group_var, sizeof(xe->job_group_var),
		 "PORTSHIM_GROUP=%s", group);
	snprintf(xe->job_var, sizeof(xe->job_var), "PORTSHIM_JOB=%s", group);
	ptrs[o++] = xe->job_group_var;
	ptrs[o++] = xe->job_var;
	if (map[0] != '\0') {
		snprintf(xe->job_map_var, sizeof(xe->job_map_var),
			 "PORTSHIM_MAP_FILE=%s", map);
		ptrs[o++] = xe->job_map_var;
	}
	ptrs[o] = NULL;
	xe->envp = ptrs;
	PS_INFO("job group=%s for %s", group, prog);
}
