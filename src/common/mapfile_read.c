/* SPDX-License-Identifier: MIT */
/*
 * mapfile_read.c - reading a group's mapping file (`portshim run`'s
 * joining check, `portshim gc`). Not in the preload library: no host
 * program reads mapping files through portshim.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mapfile.h"

/* Longest line the reader accepts; ours are at most 24 + 63 + 1 bytes. */
#define MAP_LINE_MAX 128

/* Splits s at the next space; returns the token or NULL if none. */
static char *next_token(char **s)
{
	char *tok = *s, *sp;

	if (tok == NULL)
		return NULL;
	sp = strchr(tok, ' ');
	if (sp != NULL) {
		*sp = '\0';
		*s = sp + 1;
	} else {
		*s = NULL;
	}
	return tok;
}

/*
 * Parses one entry line (without its newline): exactly four fields
 * separated by single spaces.
 */
static int parse_entry(char *line, struct ps_map_entry *e)
{
	char *rest = line, *proto, *vport, *real, *pid;
	unsigned long v, r, p;
	int pr;

	proto = next_token(&rest);
	vport = next_token(&rest);
	real = next_token(&rest);
	pid = next_token(&rest);
	if (pid == NULL || rest != NULL)
		return -EBADMSG;
	pr = ps_proto_parse(proto);
	if (pr < 0)
		return -EBADMSG;
	e->proto = (enum ps_proto)pr;
	if (ps_parse_uint(vport, 1, 65535, &v) < 0 ||
	    ps_parse_uint(real, 1, 65535, &r) < 0 ||
	    ps_parse_uint(pid, 0, UINT32_MAX, &p) < 0)
		return -EBADMSG;
	e->vport = (uint16_t)v;
	e->real = (uint16_t)r;
	e->pid = (uint32_t)p;
	return 0;
}

/* What the reader has seen so far. */
struct map_parse {
	bool header;
	char group[PS_GROUP_MAX + 1];
	struct ps_map_entry *ents;
	size_t max;
	size_t count;
};

/* Parses one line (NUL-terminated, without its newline). */
static int parse_line(struct map_parse *mp, char *line, size_t len)
{
	struct ps_map_entry e;
	const size_t hlen = sizeof(PS_MAP_HEADER) - 1;
	int rc;

	if (!mp->header) {
		if (len <= hlen || memcmp(line, PS_MAP_HEADER, hlen) != 0 ||
		    !ps_group_valid(line + hlen))
			return -EBADMSG;
		memcpy(mp->group, line + hlen, len - hlen + 1);
		mp->header = true;
		return 0;
	}
	rc = parse_entry(line, &e);
	if (rc < 0)
		return rc;
	if (mp->count < mp->max)
		mp->ents[mp->count] = e;
	mp->count++;
	return 0;
}

int ps_mapfile_read(const char *path, char *group, struct ps_map_entry *ents,
		    size_t max, size_t *n)
{
	struct map_parse mp = { .ents = ents, .max = ents ? max : 0 };
	char chunk[4096], line[MAP_LINE_MAX + 1];
	size_t llen = 0;
	struct stat st;
	ssize_t got, i;
	int fd, rc;

	if (n != NULL)
		*n = 0;
	/* O_NONBLOCK: a FIFO planted at the path must not hang the reader. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (!ps_mapfile_trusted(&st)) {
		rc = -EPERM;
		goto out;
	}
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0)
			break;
		for (i = 0; i < got; i++) {
			if (chunk[i] != '\n') {
				if (llen == MAP_LINE_MAX || chunk[i] == '\0') {
					rc = -EBADMSG;
					goto out;
				}
				line[llen++] = chunk[i];
				continue;
			}
			line[llen] = '\0';
			rc = parse_line(&mp, line, llen);
			if (rc < 0)
				goto out;
			llen = 0;
		}
	}
	/*
	 * An empty file has no header, and a last line without its newline
	 * means the file was cut: neither is a mapping file.
	 */
	if (!mp.header || llen != 0) {
		rc = -EBADMSG;
		goto out;
	}
	if (group != NULL)
		memcpy(group, mp.group, strlen(mp.group) + 1);
	if (n != NULL)
		*n = mp.count;
	rc = 0;
out:
	close(fd);
	return rc;
}

bool ps_mapfile_trusted(const struct stat *st)
{
	return S_ISREG(st->st_mode) &&
	       (st->st_uid == geteuid() || st->st_uid == 0);
}
