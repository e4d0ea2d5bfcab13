/* SPDX-License-Identifier: MIT */
/*
 * job.c - the groups of `portshim run --per-job` (see job.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "mapfile.h"
#include "policy.h"
#include "registry.h"

static const char *const runners[] = {
	"make", "gmake", "ctest", "xargs", "ninja", "samu", "parallel",
};

/* Interpreters that run a runner written as a script. */
static const char *const interpreters[] = {
	"perl", "sh", "bash", "dash", "python", "python3",
};

static const char *job_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

static bool in_list(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

bool ps_job_runner_argv(int argc, char *const argv[])
{
	const char *b;

	if (argc < 1 || argv == NULL || argv[0] == NULL)
		return false;
	b = job_base_name(argv[0]);
	if (in_list(b, runners, sizeof(runners) / sizeof(runners[0])))
		return true;
	if (argc < 2 || argv[1] == NULL || argv[1][0] == '-' ||
	    !in_list(b, interpreters,
		     sizeof(interpreters) / sizeof(interpreters[0])))
		return false;
	return in_list(job_base_name(argv[1]), runners,
		       sizeof(runners) / sizeof(runners[0]));
}

int ps_job_group(const char *base, uint32_t r, char *out)
{
	int n = snprintf(out, PS_GROUP_MAX + 1, "%s.j%08x", base, (unsigned)r);

	return n < 0 || n > PS_GROUP_MAX ? -ENAMETOOLONG : 0;
}

int ps_job_base_map(const char *map, const char *group, const char *base,
		    char *out, size_t len)
{
	size_t blen = strlen(base), mlen = strlen(map), slen;
	const char *suffix;

	if (strncmp(group, base, blen) != 0 || group[blen] != '.') {
		/* The base group itself: its own file. */
		if ((size_t)snprintf(out, len, "%s", map) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	suffix = group + blen;
	slen = strlen(suffix);
	/* "<stem><suffix>.map" -> "<stem>.map"; "<file><suffix>" -> file. */
	if (mlen >= slen + 4 && strcmp(map + mlen - 4, ".map") == 0 &&
	    strncmp(map + mlen - 4 - slen, suffix, slen) == 0) {
		if ((size_t)snprintf(out, len, "%.*s.map",
				     (int)(mlen - 4 - slen), map) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	if (mlen >= slen && strcmp(map + mlen - slen, suffix) == 0) {
		if ((size_t)snprintf(out, len, "%.*s", (int)(mlen - slen),
				     map) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	if ((size_t)snprintf(out, len, "%s", map) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int ps_job_release(const char *registry, const char *group,
		   const struct ps_ident *self, const char *map)
{
	static struct ps_registry reg;
	static bool opened;
	struct ps_reg_error err = { "" };
	struct ps_reg_cursor cur = { 0 };
	struct ps_reg_guard guard;
	struct ps_lease *l;
	uint64_t now = ps_now_ns();
	int rc, freed = 0;
	bool left = false;

	/* Mapped once and never unmapped (a holder that unmaps and dies
	 * would leave waiters hanging). */
	if (!opened) {
		rc = ps_registry_open(&reg,
				      registry != NULL && registry[0] != '\0' ?
					      registry :
					      NULL,
				      &err);
		if (rc < 0)
			return rc;
		opened = true;
	}
	rc = ps_registry_lock(&reg, &guard);
	if (rc < 0)
		return rc;
	while ((l = ps_registry_next(&reg, &cur)) != NULL) {
		if (strncmp(l->group, group, sizeof(l->group)) != 0)
			continue;
		if ((l->holder.pid == self->pid &&
		     l->holder.start == self->start) ||
		    ps_lease_dead(l, now)) {
			ps_registry_free(&reg, l);
			freed++;
		} else {
			left = true;
		}
	}
	ps_registry_unlock(&reg, &guard);
	if (!left && map != NULL && map[0] != '\0')
		ps_mapfile_remove(map);
	return freed;
}
