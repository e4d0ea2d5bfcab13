/* SPDX-License-Identifier: MIT */
/*
 * preload.c - reading an LD_PRELOAD list: see preload.h.
 */
#include <stdbool.h>
#include <string.h>

#include "preload.h"

static bool names_base(const char *p, size_t n, const char *base)
{
	size_t blen = strlen(base);

	return n >= blen && memcmp(p + n - blen, base, blen) == 0 &&
	       (n == blen || p[n - blen - 1] == '/');
}

size_t ps_preload_find(const char *list, const char *path, const char *base,
		       const char **at)
{
	size_t plen = strlen(path), n;
	const char *p = list;

	for (;;) {
		p += strspn(p, " :");
		n = strcspn(p, " :");
		if (n == 0)
			return 0;
		if ((n == plen && memcmp(p, path, n) == 0) ||
		    (base != NULL && names_base(p, n, base))) {
			*at = p;
			return n;
		}
		p += n;
	}
}
