/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c - `portshim run [OPTION]... [--] CMD...`: runs CMD with the
 * shim preloaded in a group of its own, passes its exit status through,
 * and releases the group (leases and mapping files) when CMD ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "front.h"
#include "keeper.h"
#include "preload.h"
#include "job.h"
#include "mapfile.h"
#include "policy.h"
#include "portspec.h"
#include "proc.h"
#include "registry.h"
#include "statedir.h"
#include "supervise.h"

#ifndef PKGLIBDIR
#error "PKGLIBDIR must name the folder the preload library is installed in"
#endif

/*
 * The worker variables of common runners, for PORTSHIM_GROUP_FROM: each
 * is set, in each worker process, to a value that no other worker of the
 * same run has at the same time.
 *   PYTEST_XDIST_WORKER  pytest-xdist ("gw0", "gw1"...)
 *   PARALLEL_SEQ         GNU parallel (the job's sequence number)
 *   MOCHA_WORKER_ID      mocha --parallel (0, 1...)
 *   JEST_WORKER_ID       jest (1, 2...)
 *   VITEST_POOL_ID       vitest (1..maxWorkers)
 *   TEST_WORKER_INDEX    Playwright Test (unique per worker process, a
 *                        restarted worker gets a new one)
 *   TEST_ENV_NUMBER      Ruby's parallel_tests ("", "2", "3"...)
 *   TEST_TOKEN           ParaTest (PHPUnit)
 *   TEST_SHARD_INDEX     Bazel's test sharding
 * A runner that sets none of them leaves the group as it is.
 */
#define PS_RUN_GROUP_FROM                                                  \
	"PYTEST_XDIST_WORKER,PARALLEL_SEQ,MOCHA_WORKER_ID,JEST_WORKER_ID," \
	"VITEST_POOL_ID,TEST_WORKER_INDEX,TEST_ENV_NUMBER,TEST_TOKEN,"     \
	"TEST_SHARD_INDEX"

static const char run_help[] =
	"Usage: portshim run [OPTION]... [--] CMD [ARG]...\n"
	"Run CMD with the portshim library preloaded (after any LD_PRELOAD\n"
	"entries), in a new group. Binds of the tagged ports get free real\n"
	"ports; connects within the group follow them. portshim exits with\n"
	"CMD's status when CMD ends; the group's leases and mapping files are\n"
	"released when its last process ends (a daemon CMD started keeps them).\n"
	"\n"
	"  -p, --ports SPEC  the virtual ports, e.g. 8080,9000-9010,udp:5353,\n"
	"                    or all (the default)\n"
	"  -g, --group G     the group's name (default: a fresh unique name); a\n"
	"                    group that another live run owns is joined: its\n"
	"                    leases stay when this run ends\n"
	"  -m, --map FILE    the mapping file (default: <group>.map in the\n"
	"                    registry's folder)\n"
	"  -r, --range LO-HI the real ports to hand out (default: $PORTSHIM_RANGE\n"
	"                    or 20000-32767)\n"
	"      --per-job     CMD is a job runner (make -j, ctest -j, xargs -P,\n"
	"                    ninja, GNU parallel, a recursive make): each job it\n"
	"                    starts, and each job of the runners among them, gets\n"
	"                    a group of its own, released when the job ends\n"
	"      --no-keeper   no keeper process: the group ends when CMD ends,\n"
	"                    even if a process it started lives on (a daemon\n"
	"                    then loses its leases); starts a little faster\n"
	"      --report      when CMD ends, print the tagged ports that the group\n"
	"                    (with its workers and jobs) bound and connected to,\n"
	"                    and the --ports that tags the bound ones\n"
	"      --supervise   also intercept the socket system calls that the\n"
	"                    preload cannot see (static and Go programs, raw\n"
	"                    system calls) with a seccomp supervisor; CMD runs\n"
	"                    with no_new_privs (set-id bits have no effect)\n"
	"  -h, --help        show this help\n"
	"\n"
	"CMD sees PORTSHIM_PORTS, PORTSHIM_GROUP, PORTSHIM_MAP_FILE,\n"
	"PORTSHIM_GROUP_OWNER, PORTSHIM_RANGE (with --range) and LD_PRELOAD,\n"
	"and, unless it is set already (even empty), PORTSHIM_GROUP_FROM naming\n"
	"the worker variables of common test runners: PYTEST_XDIST_WORKER,\n"
	"PARALLEL_SEQ, MOCHA_WORKER_ID, JEST_WORKER_ID, VITEST_POOL_ID,\n"
	"TEST_WORKER_INDEX (Playwright), TEST_ENV_NUMBER (parallel_tests),\n"
	"TEST_TOKEN (ParaTest) and TEST_SHARD_INDEX (Bazel): each worker of such\n"
	"a runner gets a group of its own.\n"
	"\n"
	"Exit status: CMD's status; 128+N if CMD was killed by signal N; 2 bad\n"
	"usage or environment; 125 portshim failed before starting CMD; 126 CMD\n"
	"cannot be executed; 127 CMD was not found.\n";

/*
 * The variables `run` sets for CMD. ps_config_load reads them through
 * run_getenv, so the environment is validated exactly as CMD will see it
 * (an inherited PORTSHIM_PORTS that --ports replaces is not an error).
 */
struct run_env {
	const char *name;
	const char *value; /* NULL: CMD will not have the variable */
	bool set;	   /* false: CMD inherits ours */
};

enum {
	RUN_ENV_PORTS,
	RUN_ENV_GROUP,
	RUN_ENV_MAP_FILE,
	RUN_ENV_RANGE,
	RUN_ENV_OWNER,
	RUN_NENV
};

static struct run_env run_env[RUN_NENV] = {
	[RUN_ENV_PORTS] = { "PORTSHIM_PORTS", NULL, false },
	[RUN_ENV_GROUP] = { "PORTSHIM_GROUP", NULL, false },
	[RUN_ENV_MAP_FILE] = { "PORTSHIM_MAP_FILE", NULL, false },
	[RUN_ENV_RANGE] = { "PORTSHIM_RANGE", NULL, false },
	[RUN_ENV_OWNER] = { "PORTSHIM_GROUP_OWNER", NULL, false },
};

static const char *run_getenv(const char *name)
{
	int i;

	for (i = 0; i < RUN_NENV; i++)
		if (run_env[i].set && strcmp(name, run_env[i].name) == 0)
			return run_env[i].value;
	return getenv(name);
}

static void run_env_set(int which, const char *value)
{
	run_env[which].value = value;
	run_env[which].set = true;
}

/* Parses "LO-HI" with 1 <= LO <= HI <= 65535. Returns 0 or -EINVAL. */
static int run_parse_range(const char *text)
{
	char lo[8];
	const char *dash = strchr(text, '-');
	unsigned long a, b;
	size_t n;

	if (dash == NULL)
		return -EINVAL;
	n = (size_t)(dash - text);
	if (n == 0 || n >= sizeof(lo))
		return -EINVAL;
	memcpy(lo, text, n);
	lo[n] = '\0';
	if (ps_parse_uint(lo, 1, 65535, &a) < 0 ||
	    ps_parse_uint(dash + 1, 1, 65535, &b) < 0 || a > b)
		return -EINVAL;
	return 0;
}

/* Makes path absolute against the current directory: CMD may chdir, and
 * the shim resolves the mapping file in whatever directory it is in. */
static int run_absolute(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		if ((size_t)snprintf(out, len, "%s", path) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	if ((size_t)snprintf(out, len, "%s/%s", cwd, path) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Finds the preload library: $PORTSHIM_LIBRARY (tests point it at a
 * build), else the build tree's copy when this executable runs from a
 * build tree (src/cli/portshim next to src/shim/.libs/), else the
 * installed one. Returns 0 or an exit status after printing why.
 */
static int run_library(char *out, size_t len)
{
	const char *env = getenv("PORTSHIM_LIBRARY");
	char exe[PATH_MAX], cand[PATH_MAX + 64], resolved[PATH_MAX];
	char *slash;
	ssize_t n;

	if (env != NULL && *env != '\0') {
		if (realpath(env, resolved) == NULL) {
			ps_cli_error("PORTSHIM_LIBRARY: cannot use '%s': %s",
				     env, strerror(errno));
			return PS_EXIT_RUN_FAILED;
		}
		snprintf(out, len, "%s", resolved);
		goto check;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(cand, sizeof(cand),
				 "%s/../shim/.libs/libportshim.so", exe);
			if (realpath(cand, resolved) != NULL) {
				snprintf(out, len, "%s", resolved);
				goto check;
			}
		}
	}
	snprintf(out, len, "%s/libportshim.so", PKGLIBDIR);
	if (access(out, R_OK) < 0) {
		ps_cli_error("cannot use the preload library %s: %s", out,
			     strerror(errno));
		return PS_EXIT_RUN_FAILED;
	}
check:
	/* LD_PRELOAD separates entries with spaces and colons: such a path
	 * would preload the pieces instead. */
	if (strpbrk(out, " :") != NULL) {
		ps_cli_error("the preload library's path '%s' contains a "
			     "space or a colon, which LD_PRELOAD cannot "
			     "hold; set PORTSHIM_LIBRARY to another path",
			     out);
		return PS_EXIT_RUN_FAILED;
	}
	return 0;
}

/*
 * Sets LD_PRELOAD to the existing entries followed by lib: libraries the
 * user preloads keep their place before ours, and a nested run does not
 * add the shim twice. Returns 0 or -errno.
 */
static int run_set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD"), *at;
	char *val;
	int rc;

	if (old == NULL || old[strspn(old, " :")] == '\0')
		return setenv("LD_PRELOAD", lib, 1) < 0 ? -errno : 0;
	if (ps_preload_find(old, lib, NULL, &at) != 0)
		return 0;
	if (asprintf(&val, "%s %s", old, lib) < 0)
		return -ENOMEM;
	rc = setenv("LD_PRELOAD", val, 1) < 0 ? -errno : 0;
	free(val);
	return rc;
}

/*
 * Says so (one line) when another user holds the default state directory
 * and its fallback is used; the failures are reported where the
 * registry is opened.
 */
static void run_statedir_notice(void)
{
	char dir[PATH_MAX], why[512];
	int fd;

	fd = ps_statedir_open(ps_cli_getenv, dir, sizeof(dir), why,
			      sizeof(why));
	if (fd < 0)
		return;
	close(fd);
	if (why[0] != '\0')
		ps_cli_error("warning: %s", why);
}

/* The default mapping file, "<folder>/<group>.map": the folder of the
 * registry, so that two registries never share a mapping file (the
 * state directory for the default registry). Returns 0 or -errno with a
 * reason printed. */
static int run_default_map(const char *registry, const char *group, char *out,
			   size_t len)
{
	char dir[PATH_MAX], why[512];
	const char *slash;
	int fd, n;

	if (registry[0] != '\0') {
		slash = strrchr(registry, '/');
		n = (int)(slash - registry);
		if ((size_t)snprintf(out, len, "%.*s/%s.map", n, registry,
				     group) >= len) {
			ps_cli_error("the registry's path is too long");
			return -ENAMETOOLONG;
		}
		return 0;
	}
	fd = ps_statedir_open(ps_cli_getenv, dir, sizeof(dir), why,
			      sizeof(why));
	if (fd < 0) {
		ps_cli_error("%s", why);
		return fd;
	}
	close(fd);
	if ((size_t)snprintf(out, len, "%s/%s.map", dir, group) >= len) {
		ps_cli_error("the state directory's path is too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

/* True if group is g or a worker group derived from it ("g.<suffix>"). */
static bool run_group_match(const char *group, const char *g)
{
	size_t len = strlen(g);

	return strncmp(group, g, len) == 0 &&
	       (group[len] == '\0' || group[len] == '.');
}

/* One group met while releasing: the run's own group or a derived one. */
struct run_group {
	char name[PS_GROUP_MAX + 1];
	bool freed; /* we freed some of its leases */
	bool kept;  /* another live holder still has leases in it */
};

struct run_groups {
	struct run_group *v;
	size_t n, cap;
};

/* The entry of name, added if new; NULL if out of memory. */
static struct run_group *run_groups_get(struct run_groups *gs, const char *name)
{
	struct run_group *v;
	size_t i, cap;

	for (i = 0; i < gs->n; i++)
		if (strcmp(gs->v[i].name, name) == 0)
			return &gs->v[i];
	if (gs->n == gs->cap) {
		cap = gs->cap ? gs->cap * 2 : 16;
		v = realloc(gs->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		gs->v = v;
		gs->cap = cap;
	}
	v = &gs->v[gs->n++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

/* True if the named group is in gs and kept. */
static bool run_groups_kept(const struct run_groups *gs, const char *name)
{
	size_t i;

	for (i = 0; i < gs->n; i++)
		if (strcmp(gs->v[i].name, name) == 0)
			return gs->v[i].kept;
	return false;
}

/* The mapping file of group (the run's or a derived one) into out. */
static int run_map_of(const char *map, const char *base, const char *group,
		      char *out, size_t len)
{
	if (strcmp(group, base) == 0) {
		if ((size_t)snprintf(out, len, "%s", map) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	return ps_policy_map_path(map, group + strlen(base), out, len);
}

/*
 * Releases what the run owns in group and in the worker groups derived
 * from it (PORTSHIM_GROUP_FROM appends ".<value>"): the leases whose
 * holder is this process (PORTSHIM_GROUP_OWNER), and those whose holder is
 * gone anyway. A lease of a live other holder stays: a second run given
 * the same --group (a client joining a server's group, say) must not take
 * the group's mapping away from the first. The derived names are not
 * known here, so every lease in use is looked at, through the group
 * chains: a loop over the 65536 slots would fault the whole 9 MB file
 * into this fresh process under the lock (40 ms on a small VM).
 *
 * A group that keeps leases but lost some gets its mapping file rewritten
 * (under the lock, as the shim does), so it lists only what is left.
 * Fills gs with the groups met. Returns 0 or -errno. With self NULL,
 * frees nothing and rewrites the mapping file of every group met (for
 * members that could not write theirs, keeper.h).
 */
static int run_release(struct ps_registry *reg, const struct ps_config *cfg,
		       const struct ps_ident *self, const char *group,
		       const char *map, struct run_groups *gs)
{
	static struct ps_policy pol;
	char path[PATH_MAX];
	struct ps_reg_cursor cur = { 0 };
	struct ps_reg_guard guard;
	struct ps_lease *l;
	struct run_group *g;
	uint64_t now = ps_boot_ns();
	size_t i;
	int rc;

	rc = ps_registry_lock(reg, &guard);
	if (rc < 0)
		return rc;
	while ((l = ps_registry_next(reg, &cur)) != NULL) {
		if (!run_group_match(l->group, group))
			continue;
		g = run_groups_get(gs, l->group);
		if (self == NULL) {
			/* Publishing only: every group with a lease. */
			if (g != NULL)
				g->kept = g->freed = true;
		} else if ((l->holder.pid == self->pid &&
			    l->holder.start == self->start) ||
			   ps_lease_dead(l, now)) {
			ps_registry_free(reg, l);
			if (g != NULL)
				g->freed = true;
		} else if (g != NULL) {
			g->kept = true;
		}
	}
	for (i = 0; map[0] != '\0' && i < gs->n; i++) {
		g = &gs->v[i];
		if (!g->kept || !g->freed ||
		    run_map_of(map, group, g->name, path, sizeof(path)) < 0 ||
		    ps_policy_init(&pol, cfg, g->name, path) < 0)
			continue;
		/* The policy works on our mapping of the registry, whose
		 * lock we hold. */
		pol.reg = *reg;
		pol.reg_ready = true;
		ps_policy_publish(&pol);
	}
	ps_registry_unlock(reg, &guard);
	return 0;
}

/*
 * The live holder of a lease of group, or of a worker group derived from
 * it, other than self: the owner of a group that this run joins (a
 * client started with --group G while G's server runs under another
 * run). CMD then makes its leases for that owner, so that they live as
 * long as the group and not only as long as this run. Returns true and
 * the holder in *owner. Every lease is looked at, as in run_release.
 */
static bool run_find_owner(struct ps_registry *reg, const char *group,
			   const struct ps_ident *self, struct ps_ident *owner)
{
	struct ps_reg_cursor cur = { 0 };
	struct ps_reg_guard guard;
	struct ps_lease *l;
	uint64_t now = ps_boot_ns();
	bool found = false;

	if (ps_registry_lock(reg, &guard) < 0)
		return false;
	while (!found && (l = ps_registry_next(reg, &cur)) != NULL) {
		if (l->kind != PS_KIND_GROUP ||
		    !run_group_match(l->group, group) ||
		    (l->holder.pid == self->pid &&
		     l->holder.start == self->start) ||
		    ps_lease_dead(l, now))
			continue;
		*owner = l->holder;
		found = true;
	}
	ps_registry_unlock(reg, &guard);
	return found;
}

/* True if every character of s[0..n) may appear in a group name. */
static bool run_suffix_valid(const char *s, size_t n)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
			return false;
	return true;
}

/*
 * Removes the mapping files of the groups that no other run keeps (gs
 * from run_release): the run's own, and those of the derived worker
 * groups, which ps_policy_map_path names "<stem>.<suffix>.map" next to it
 * (or "<file>.<suffix>" when the file does not end in ".map"). The folder
 * is searched for them, since a worker's group may have no lease left.
 * To stay safe in a shared folder, a candidate is removed only if it is
 * a regular file of ours whose header names a group derived from ours.
 */
static void run_remove_maps(const char *map, const char *group,
			    const struct run_groups *gs)
{
	char dir[PATH_MAX], path[PATH_MAX], fgroup[PS_GROUP_MAX + 1];
	struct ps_map_entry ent;
	const char *base, *name, *tail;
	size_t stemlen, taillen, len, n;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dirfd, rc;

	if (!run_groups_kept(gs, group)) {
		rc = ps_mapfile_remove(map);
		if (rc < 0 && rc != -ENOENT)
			ps_cli_error("cannot remove %s: %s", map,
				     strerror(-rc));
	}

	dirfd = ps_open_parent(map, &base);
	if (dirfd < 0)
		return;
	snprintf(dir, sizeof(dir), "%.*s", (int)(base - map), map);
	len = strlen(base);
	if (len > 4 && strcmp(base + len - 4, ".map") == 0) {
		stemlen = len - 4;
		tail = ".map";
	} else {
		stemlen = len;
		tail = "";
	}
	taillen = strlen(tail);
	d = fdopendir(dirfd);
	if (d == NULL) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		name = de->d_name;
		len = strlen(name);
		if (len < stemlen + 1 + taillen + 1 ||
		    strncmp(name, base, stemlen) != 0 || name[stemlen] != '.' ||
		    strcmp(name + len - taillen, tail) != 0 ||
		    !run_suffix_valid(name + stemlen + 1,
				      len - stemlen - 1 - taillen))
			continue;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s", dir, name) >=
		    sizeof(path))
			continue;
		if (ps_mapfile_read(path, fgroup, &ent, 1, &n) < 0 ||
		    strcmp(fgroup, group) == 0 ||
		    !run_group_match(fgroup, group) ||
		    run_groups_kept(gs, fgroup))
			continue;
		unlinkat(dirfd, name, 0);
	}
	closedir(d);
}

/* The seccomp supervisor of CMD (--supervise), and why it failed. */
static struct ps_supervisor *run_sv;
static char run_sv_why[512];

/* Prints a config error line as "portshim: PORTSHIM_X: ...". */
static void run_config_error(void *arg, const char *line, int len)
{
	(void)arg;
	ps_cli_error("%.*s", len, line);
}

/* What the keeper needs to publish and release the run's group. */
struct run_ctx {
	const struct ps_config *cfg;
	struct ps_registry *reg; /* NULL: no registry */
	const char *group;
	char *map; /* "" = no mapping file */
};

/* Keeper: a member could not write its mapping file; write them all. */
static void run_publish(struct ps_keeper_job *job)
{
	struct run_ctx *ctx = job->arg;
	struct run_groups groups = { NULL, 0, 0 };

	if (ctx->reg != NULL && ctx->map[0] != '\0')
		run_release(ctx->reg, ctx->cfg, NULL, ctx->group, ctx->map,
			    &groups);
	free(groups.v);
}

/* Keeper: the group's last process ended; release it. */
static void run_end(struct ps_keeper_job *job, const struct ps_ident *self)
{
	struct run_ctx *ctx = job->arg;
	struct run_groups groups = { NULL, 0, 0 };
	int rc;

	if (ctx->reg != NULL) {
		rc = run_release(ctx->reg, ctx->cfg, self, ctx->group, ctx->map,
				 &groups);
		if (rc < 0) {
			ps_cli_error("cannot release group %s in %s: %s",
				     ctx->group, ctx->reg->path, strerror(-rc));
			/* Unsure who holds what: leave the files alone. */
			ctx->map[0] = '\0';
		}
	}
	if (ctx->map[0] != '\0')
		run_remove_maps(ctx->map, ctx->group, &groups);
	free(groups.v);
}

static const char *keeper_getenv(const char *name)
{
	return getenv(name);
}

/*
 * `portshim __keeper ...`: a thin keeper goes on as a whole one
 * (keeper_int.h). What it keeps is rebuilt from CMD's environment, which
 * `run` made: the configuration, the registry, the group and its mapping
 * file.
 */
int ps_cli_keeper(int argc, char **argv)
{
	static struct ps_config cfg;
	static struct ps_registry reg;
	static struct run_ctx ctx;
	static struct ps_keeper_job job;
	static char cfg_err[4096], map[PATH_MAX];
	struct ps_reg_error rerr = { "" };
	const char *group = getenv("PORTSHIM_GROUP");
	const char *map_file = getenv("PORTSHIM_MAP_FILE");

	if (group == NULL)
		return ps_keeper_resume(&job, 0, argv);
	/* `run` checked these variables and said what was wrong; a value
	 * it let through is never a reason to abandon the group. */
	ps_config_load(&cfg, keeper_getenv, cfg_err, sizeof(cfg_err));
	snprintf(map, sizeof(map), "%s", map_file != NULL ? map_file : "");
	if (ps_registry_open(&reg,
			     cfg.registry[0] != '\0' ? cfg.registry : NULL,
			     &rerr) == 0)
		ctx.reg = &reg;
	else
		ps_cli_error("the keeper of group %s: %s (its leases wait for "
			     "`portshim gc`)",
			     group, rerr.msg);
	ctx.cfg = &cfg;
	ctx.group = group;
	ctx.map = map;
	job.reg = ctx.reg;
	job.publish = run_publish;
	job.release = run_end;
	job.arg = &ctx;
	return ps_keeper_resume(&job, argc, argv);
}

int ps_cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ports", required_argument, NULL, 'p' },
		{ "group", required_argument, NULL, 'g' },
		{ "map", required_argument, NULL, 'm' },
		{ "range", required_argument, NULL, 'r' },
		{ "supervise", no_argument, NULL, 'S' },
		{ "report", no_argument, NULL, 'R' },
		{ "per-job", no_argument, NULL, 'J' },
		{ "no-keeper", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ps_portspec spec;
	static struct ps_config cfg;
	static char cfg_err[4096], map[PATH_MAX], lib[PATH_MAX];
	static char report[PATH_MAX], warned[PATH_MAX];
	char group[PS_GROUP_MAX + 1] = "", owner[64], err[256];
	struct ps_ident joined;
	const char *ports = "all", *map_opt = NULL, *range = NULL;
	struct ps_reg_error rerr = { "" };
	static struct ps_registry reg;
	static struct run_ctx ctx;
	static struct ps_keeper_job job;
	struct ps_ident self;
	bool supervise = false, have_reg = false, given = false;
	uid_t map_owner = 0;
	bool want_report = false, joining = false, per_job = false;
	bool keeper = true;
	int c, rc, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:g:m:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			ports = optarg;
			break;
		case 'g':
			rc = ps_cli_parse_group("--group", optarg, group);
			if (rc != 0)
				return rc;
			given = true;
			break;
		case 'm':
			map_opt = optarg;
			break;
		case 'r':
			range = optarg;
			break;
		case 'S':
			supervise = true;
			break;
		case 'R':
			want_report = true;
			break;
		case 'J':
			per_job = true;
			break;
		case 'K':
			keeper = false;
			break;
		case 'h':
			return ps_cli_help(run_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		return ps_cli_usage_error("run: missing CMD");
	if (ps_portspec_parse(&spec, ports, err, sizeof(err)) < 0)
		return ps_cli_usage_error("invalid --ports '%s': %s", ports,
					  err);
	if (range != NULL && run_parse_range(range) < 0)
		return ps_cli_usage_error("invalid --range '%s': expected "
					  "LO-HI with 1 <= LO <= HI <= 65535",
					  range);
	if (per_job && strlen(group) + PS_JOB_SUFFIX_LEN > PS_GROUP_MAX)
		return ps_cli_usage_error("--per-job: the group '%s' is too "
					  "long to name its jobs' groups "
					  "(at most %d characters)",
					  group,
					  PS_GROUP_MAX - PS_JOB_SUFFIX_LEN);
	if (map_opt != NULL && *map_opt == '\0')
		return ps_cli_usage_error("invalid --map '': expected a "
					  "file name");
	rc = ps_proc_self(&self);
	if (rc < 0) {
		ps_cli_error("cannot read this process's identity: %s",
			     strerror(-rc));
		return PS_EXIT_RUN_FAILED;
	}
	ps_ident_format(&self, owner, sizeof(owner));
	if (group[0] == '\0')
		ps_front_fresh_group(getpid(), group, sizeof(group));

	/* Validate the environment exactly as CMD will get it. The mapping
	 * file's default is only known once the state directory is open, so
	 * without --map it is checked as absent. */
	run_env_set(RUN_ENV_PORTS, ports);
	run_env_set(RUN_ENV_GROUP, group);
	run_env_set(RUN_ENV_MAP_FILE, map_opt);
	if (range != NULL)
		run_env_set(RUN_ENV_RANGE, range);
	run_env_set(RUN_ENV_OWNER, owner);
	if (ps_config_load(&cfg, run_getenv, cfg_err, sizeof(cfg_err)) > 0) {
		ps_config_each_error(cfg_err, run_config_error, NULL);
		return PS_EXIT_USAGE;
	}
	/* --range is the user's choice of the moment (PORTSHIM_RANGE is
	 * often set once for a whole suite; doctor checks it). */
	if (range != NULL)
		ps_cli_range_warnings(cfg.range_lo, cfg.range_hi);
	/* PORTSHIM_BYPASS=supervise: supervise what the preload cannot see. */
	if (!supervise && cfg.bypass == PS_BYPASS_SUPERVISE &&
	    ps_supervise_wanted(&cfg, argv[optind]))
		supervise = true;
	/* A program the shim cannot see: say so (PORTSHIM_BYPASS), unless
	 * the supervisor sees it. */
	if (!supervise || !ps_supervise_covers(argv[optind])) {
		rc = ps_cli_bypass_check(argv[optind], cfg.bypass);
		if (rc != 0)
			return rc;
	}

	/* The default place taken by another user: say where we go. */
	if (cfg.registry[0] == '\0')
		run_statedir_notice();
	rc = ps_registry_open(
		&reg, cfg.registry[0] != '\0' ? cfg.registry : NULL, &rerr);
	if (rc == 0) {
		have_reg = true;
	} else if (cfg.on_error == PS_ON_ERROR_PASS) {
		ps_cli_error("%s (PORTSHIM_ON_ERROR=pass: running without "
			     "the registry)",
			     rerr.msg);
	} else {
		ps_cli_error("%s",
			     rerr.msg[0] != '\0' ? rerr.msg : strerror(-rc));
		return PS_EXIT_RUN_FAILED;
	}

	if (map_opt != NULL)
		rc = run_absolute(map_opt, map, sizeof(map));
	else
		rc = run_default_map(cfg.registry, group, map, sizeof(map));
	if (rc == -ENAMETOOLONG && map_opt != NULL) {
		ps_cli_error("--map: the path '%s' is too long", map_opt);
		return PS_EXIT_RUN_FAILED;
	}
	if (rc < 0) {
		if (map_opt != NULL)
			ps_cli_error("--map: %s", strerror(-rc));
		if (cfg.on_error != PS_ON_ERROR_PASS)
			return PS_EXIT_RUN_FAILED;
		map[0] = '\0';
	}

	/* A --map that another user can take is refused before CMD runs. */
	if (map_opt != NULL && map[0] != '\0') {
		rc = ps_mapfile_claim(map, group, &map_owner);
		if (rc == -EPERM) {
			ps_cli_error("--map %s: the file is there already and "
				     "belongs to uid %u: refusing a mapping "
				     "file that another user controls",
				     map, (unsigned)map_owner);
			return PS_EXIT_RUN_FAILED;
		}
		if (rc == -EACCES) {
			ps_cli_error("--map %s: its folder can be written by "
				     "other users and is not sticky: anyone "
				     "could replace the mapping file",
				     map);
			return PS_EXIT_RUN_FAILED;
		}
		if (rc < 0) {
			ps_cli_error("--map %s: %s", map, strerror(-rc));
			return PS_EXIT_RUN_FAILED;
		}
	}

	rc = run_library(lib, sizeof(lib));
	if (rc != 0)
		return rc;

	/* Joining a group that a live run owns: its leases are the owner's. */
	if (given && have_reg && run_find_owner(&reg, group, &self, &joined)) {
		ps_ident_format(&joined, owner, sizeof(owner));
		joining = true;
	}

	/*
	 * Runners that number their workers in the environment: each
	 * worker gets a group of its own, resolved when it first binds or
	 * connects (pytest-xdist sets PYTEST_XDIST_WORKER in the worker
	 * after it started). A PORTSHIM_GROUP_FROM of the user's, even an
	 * empty one (none), is kept.
	 */
	if (getenv("PORTSHIM_GROUP_FROM") == NULL &&
	    setenv("PORTSHIM_GROUP_FROM", PS_RUN_GROUP_FROM, 1) < 0) {
		ps_cli_error("cannot set the environment: %s", strerror(errno));
		return PS_EXIT_RUN_FAILED;
	}

	if (setenv("PORTSHIM_PORTS", ports, 1) < 0 ||
	    setenv("PORTSHIM_GROUP", group, 1) < 0 ||
	    setenv("PORTSHIM_GROUP_OWNER", owner, 1) < 0 ||
	    (range != NULL && setenv("PORTSHIM_RANGE", range, 1) < 0) ||
	    (map[0] != '\0' ? setenv("PORTSHIM_MAP_FILE", map, 1) :
			      unsetenv("PORTSHIM_MAP_FILE")) < 0 ||
	    run_set_preload(lib) < 0) {
		ps_cli_error("cannot set the environment: %s", strerror(errno));
		return PS_EXIT_RUN_FAILED;
	}

	/* --per-job: the shim's exec wrappers start a group per job
	 * (src/common/job.h); without it, an inherited value is dropped,
	 * so that a plain run inside a --per-job run is one group. */
	if ((per_job ? setenv("PORTSHIM_PER_JOB", group, 1) :
		       unsetenv("PORTSHIM_PER_JOB")) < 0 ||
	    unsetenv("PORTSHIM_JOB") < 0) {
		ps_cli_error("cannot set the environment: %s", strerror(errno));
		return PS_EXIT_RUN_FAILED;
	}

	/* Bypass warnings: once per program and run (src/shim/exec.c). */
	if (ps_cli_state_file(cfg.registry, group, "warned", warned,
			      sizeof(warned), true) == 0 &&
	    setenv("PORTSHIM_WARNED", warned, 1) < 0) {
		unlink(warned);
		warned[0] = '\0';
	}
	if (want_report) {
		rc = ps_cli_state_file(cfg.registry, group, "report", report,
				       sizeof(report), false);
		if (rc == 0 && setenv("PORTSHIM_REPORT", report, 1) < 0) {
			ps_cli_error("cannot set the environment: %s",
				     strerror(errno));
			unlink(report);
			rc = -1;
		}
		if (rc < 0) {
			ps_cli_error("--report: cannot make the report file");
			if (warned[0] != '\0')
				unlink(warned);
			return PS_EXIT_RUN_FAILED;
		}
	}

	if (supervise && ps_supervise_prepare(&run_sv, &cfg, run_sv_why,
					      sizeof(run_sv_why)) < 0) {
		ps_cli_error("--supervise: %s", run_sv_why);
		if (want_report)
			unlink(report);
		if (warned[0] != '\0')
			unlink(warned);
		if (map[0] != '\0' && !joining)
			ps_mapfile_remove(map);
		return PS_EXIT_RUN_FAILED;
	}

	ctx.cfg = &cfg;
	ctx.reg = have_reg ? &reg : NULL;
	ctx.group = group;
	ctx.map = map;
	job.cmd = argv + optind;
	job.run_argv = argv;
	job.sv = run_sv;
	job.reg = ctx.reg;
	job.owner = joining ? owner : NULL;
	job.publish = run_publish;
	job.release = run_end;
	job.arg = &ctx;
	if (keeper) {
		status = ps_keeper_run(&job);
	} else {
		/* run is the group's owner, as the keeper would be; nobody
		 * publishes for members that cannot write the mapping file
		 * (they say so themselves). */
		unsetenv("PORTSHIM_KEEPER");
		ps_keeper_hand_down(job.reg);
		status = ps_cli_exec(job.cmd, run_sv, "--supervise");
		run_end(&job, &self);
	}
	if (want_report)
		ps_cli_report_print(report, group);
	if (warned[0] != '\0')
		unlink(warned);
	return status;
}

int ps_cli_library(char *out, size_t len)
{
	return run_library(out, len);
}
