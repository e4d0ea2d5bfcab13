/* SPDX-License-Identifier: MIT */
/*
 * envguard.c - what a process keeps of its start environment across
 * exec: see envguard.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "envguard.h"
#include "preload.h"

#define PS_ENVGUARD_STR(n, l, s) n,
static const char *const kept_names[] = { PS_ENV_VARIABLES(PS_ENVGUARD_STR) };
#undef PS_ENVGUARD_STR

_Static_assert(sizeof(kept_names) / sizeof(kept_names[0]) == PS_ENVGUARD_NKEPT,
	       "envguard.h counts envvars.h's list");

#define LD_PRELOAD_EQ "LD_PRELOAD="
#define LD_PRELOAD_EQ_LEN (sizeof(LD_PRELOAD_EQ) - 1)

const char *ps_envguard_name(size_t i)
{
	return i < PS_ENVGUARD_NKEPT ? kept_names[i] : NULL;
}

/* Length of the name part of "NAME=value" (the whole string if no '='). */
static size_t name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');

	return eq != NULL ? (size_t)(eq - entry) : strlen(entry);
}

int ps_envguard_index(const char *entry)
{
	size_t n = name_len(entry), i;

	if (n < 9 || memcmp(entry, "PORTSHIM_", 9) != 0)
		return -1;
	for (i = 0; i < PS_ENVGUARD_NKEPT; i++)
		if (strlen(kept_names[i]) == n &&
		    memcmp(entry, kept_names[i], n) == 0)
			return (int)i;
	return -1;
}

/* Copies s into the snapshot buffer; returns the copy or NULL if full. */
static char *snap_copy(struct ps_envguard *g, const char *s, size_t *used)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (n > sizeof(g->buf) - *used)
		return NULL;
	p = g->buf + *used;
	memcpy(p, s, n);
	*used += n;
	return p;
}

/* The last component of a path. */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Our entry in the LD_PRELOAD list: the one naming self, or failing that
 * one with the same last component. */
static void find_self_entry(struct ps_envguard *g, const char *list,
			    const char *self)
{
	const char *at;
	size_t n;

	n = ps_preload_find(list, self, base_name(self), &at);
	if (n == 0 || n >= sizeof(g->self_entry))
		return;
	memcpy(g->self_entry, at, n);
	g->self_entry[n] = '\0';
	g->self_base = base_name(g->self_entry);
}

void ps_envguard_snapshot(struct ps_envguard *g, char *const *envp,
			  const char *self)
{
	size_t used = 0;
	char *const *e;
	int i;

	for (e = envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');

		/* An empty value counts as unset (config.c). */
		if (eq == NULL || eq[1] == '\0')
			continue;
		/* The last LD_PRELOAD is the one the loader reads. */
		if (strncmp(*e, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN) == 0) {
			g->preload = snap_copy(g, *e, &used);
			continue;
		}
		i = ps_envguard_index(*e);
		if (i >= 0 && g->vars[i] == NULL)
			g->vars[i] = snap_copy(g, *e, &used);
	}
	if (g->preload != NULL && self != NULL)
		find_self_entry(g, g->preload + LD_PRELOAD_EQ_LEN, self);
}

void ps_envguard_scan(const struct ps_envguard *g, char *const envp[],
		      struct ps_env_scan *sc)
{
	bool seen[PS_ENVGUARD_NKEPT] = { false };
	const char *at;
	size_t i;
	int k;

	memset(sc, 0, sizeof(*sc));
	for (i = 0; envp != NULL && envp[i] != NULL; i++) {
		if (strncmp(envp[i], LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN) == 0) {
			sc->preload = &envp[i];
			continue;
		}
		k = ps_envguard_index(envp[i]);
		if (k >= 0)
			seen[k] = true;
	}
	sc->count = i;
	for (i = 0; i < PS_ENVGUARD_NKEPT; i++) {
		if (g->vars[i] != NULL && !seen[i]) {
			sc->missing[i] = true;
			sc->nmissing++;
		}
	}
	/* Another copy of the library (the same last component) counts:
	 * it is portshim too. */
	if (g->self_entry[0] != '\0')
		sc->preload_missing =
			sc->preload == NULL ||
			ps_preload_find(*sc->preload + LD_PRELOAD_EQ_LEN,
					g->self_entry, g->self_base, &at) == 0;
}

/* Appends s to the names list in buf (len bytes), ", "-separated. */
static void names_add(char *buf, size_t len, const char *s)
{
	size_t used = strlen(buf);

	if (used + 2 + strlen(s) + 4 >= len) {
		if (used + 4 < len &&
		    (used < 3 || strcmp(buf + used - 3, "...") != 0))
			memcpy(buf + used, "...", 4);
		return;
	}
	if (used > 0) {
		memcpy(buf + used, ", ", 2);
		used += 2;
	}
	memcpy(buf + used, s, strlen(s) + 1);
}

void ps_envguard_names(const struct ps_env_scan *sc, char *buf, size_t len)
{
	size_t i;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (sc->preload_missing)
		names_add(buf, len,
			  sc->preload == NULL ?
				  "LD_PRELOAD" :
				  "the portshim entry of LD_PRELOAD");
	for (i = 0; i < PS_ENVGUARD_NKEPT; i++)
		if (sc->missing[i])
			names_add(buf, len, kept_names[i]);
}

/* Pointers of a built environment, and bytes of its LD_PRELOAD. */
static size_t build_ptrs(const struct ps_env_scan *sc)
{
	return sc->count + sc->nmissing + 2;
}

static size_t build_preload(const struct ps_envguard *g,
			    const struct ps_env_scan *sc)
{
	if (!sc->preload_missing || sc->preload == NULL)
		return 0;
	return strlen(*sc->preload) + 1 + strlen(g->self_entry) + 1;
}

size_t ps_envguard_need(const struct ps_envguard *g,
			const struct ps_env_scan *sc)
{
	size_t nptr = build_ptrs(sc), plen = build_preload(g, sc);

	if (nptr > (SIZE_MAX - plen) / sizeof(char *))
		return 0;
	return nptr * sizeof(char *) + plen;
}

char **ps_envguard_build(const struct ps_envguard *g, char *const envp[],
			 const struct ps_env_scan *sc, void *mem)
{
	size_t nptr = build_ptrs(sc), plen = build_preload(g, sc), i, o = 0;
	char **ptrs = mem, *preload = NULL;

	if (plen > 0) {
		/* The user's entries keep their place, before ours. */
		preload = (char *)(ptrs + nptr);
		snprintf(preload, plen, "%s %s", *sc->preload, g->self_entry);
	}
	for (i = 0; i < sc->count; i++)
		ptrs[o++] = &envp[i] == sc->preload && preload != NULL ?
				    preload :
				    envp[i];
	if (sc->preload_missing && sc->preload == NULL)
		ptrs[o++] = g->preload;
	for (i = 0; i < PS_ENVGUARD_NKEPT; i++)
		if (sc->missing[i])
			ptrs[o++] = g->vars[i];
	ptrs[o] = NULL;
	return ptrs;
}
