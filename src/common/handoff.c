/* SPDX-License-Identifier: MIT */
/*
 * handoff.c - PORTSHIM_REGISTRY_FD: see handoff.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "handoff.h"

/* One decimal field ending at stop (':' or '\0'); advances *p past it. */
static int field(const char **p, char stop, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != stop)
		return -EINVAL;
	*p = stop != '\0' ? s + 1 : s;
	*out = v;
	return 0;
}

int ps_handoff_parse(const char *text, struct ps_handoff *h)
{
	uint64_t fd, uid;

	if (text == NULL || field(&text, ':', INT32_MAX, &fd) < 0 ||
	    field(&text, ':', UINT64_MAX, &h->dev) < 0 ||
	    field(&text, ':', UINT64_MAX, &h->ino) < 0 ||
	    field(&text, '\0', UINT32_MAX - 1, &uid) < 0)
		return -EINVAL;
	h->fd = (int)fd;
	h->uid = (uid_t)uid;
	return 0;
}

int ps_handoff_format(int fd, char *out, size_t len)
{
	struct stat st;
	int n;

	if (fstat(fd, &st) < 0)
		return -errno;
	n = snprintf(out, len, "%d:%" PRIu64 ":%" PRIu64 ":%u", fd,
		     (uint64_t)st.st_dev, (uint64_t)st.st_ino,
		     (unsigned)st.st_uid);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ps_handoff_check(const struct ps_handoff *h)
{
	struct stat st;

	if (fstat(h->fd, &st) < 0)
		return -EBADF;
	if ((uint64_t)st.st_dev != h->dev || (uint64_t)st.st_ino != h->ino)
		return -ESTALE;
	return 0;
}
