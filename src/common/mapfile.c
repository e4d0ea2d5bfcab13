/* SPDX-License-Identifier: MIT */
/*
 * mapfile.c - writing, claiming and removing a group's mapping file (its
 * reader, which only the portshim program uses, is mapfile_read.c).
 *
 * The writer runs inside host programs (the shim publishes the mapping
 * after a bind), so it uses no stdio and no allocation: the text is built
 * in a stack buffer and written in chunks to a temporary file in the same
 * directory, which is then renamed over the final name. Readers see the
 * old file or the new one, never a part of either.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h> /* renameat only; no stdio streams here */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "decimal.h"
#include "mapfile.h"
#include "statedir.h"

/* Longest entry line: "tcp 65535 65535 4294967295\n". */
#define MAP_ENTRY_MAX 32

/* Temp names taken (EEXIST) before we give up. */
#define TMP_TRIES 16

/*
 * Makes temp names unique between threads of one process; the pid in the
 * name separates processes. A leftover temp of a dead process with the
 * same pid only costs one more try.
 */
static unsigned tmp_counter;

/* Copies s at buf; returns the number of bytes. */
static size_t put_str(char *buf, const char *s)
{
	size_t n = strlen(s);

	memcpy(buf, s, n);
	return n;
}

/* Writes all of buf, resuming after short writes and EINTR. */
static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t rc;

	while (len > 0) {
		rc = write(fd, buf, len);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -EIO;
		buf += rc;
		len -= (size_t)rc;
	}
	return 0;
}

/* Builds ".<base>.tmp.<pid>.<counter>" into name (NAME_MAX + 1 bytes). */
static int tmp_name(char *name, const char *base)
{
	char num[2 * 10 + 2];
	size_t blen = strlen(base), nlen = 0;

	nlen += ps_put_u64(num, (uint32_t)getpid());
	num[nlen++] = '.';
	nlen += ps_put_u64(num + nlen, __atomic_fetch_add(&tmp_counter, 1,
							  __ATOMIC_RELAXED));
	if (1 + blen + 5 + nlen > NAME_MAX)
		return -ENAMETOOLONG;
	name[0] = '.';
	memcpy(name + 1, base, blen);
	memcpy(name + 1 + blen, ".tmp.", 5);
	memcpy(name + 1 + blen + 5, num, nlen);
	name[1 + blen + 5 + nlen] = '\0';
	return 0;
}

/* Writes the header and the entries to fd. */
static int write_text(int fd, const char *group,
		      const struct ps_map_entry *ents, size_t n)
{
	char buf[4096];
	size_t off = 0, i;
	int rc;

	off += put_str(buf + off, PS_MAP_HEADER);
	off += put_str(buf + off, group);
	buf[off++] = '\n';
	for (i = 0; i < n; i++) {
		if (off + MAP_ENTRY_MAX > sizeof(buf)) {
			rc = write_all(fd, buf, off);
			if (rc < 0)
				return rc;
			off = 0;
		}
		off += put_str(buf + off,
			       ents[i].proto == PS_TCP ? "tcp " : "udp ");
		off += ps_put_u64(buf + off, ents[i].vport);
		buf[off++] = ' ';
		off += ps_put_u64(buf + off, ents[i].real);
		buf[off++] = ' ';
		off += ps_put_u64(buf + off, ents[i].pid);
		buf[off++] = '\n';
	}
	return write_all(fd, buf, off);
}

int ps_mapfile_write(const char *path, const char *group,
		     const struct ps_map_entry *ents, size_t n)
{
	char tmp[NAME_MAX + 1];
	const char *base;
	bool tmp_made = false;
	int dirfd = -1, fd = -1, rc, tries;
	size_t i;

	if (group == NULL || !ps_group_valid(group) || (n > 0 && !ents))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if ((ents[i].proto != PS_TCP && ents[i].proto != PS_UDP) ||
		    ents[i].vport == 0 || ents[i].real == 0)
			return -EINVAL;
	}

	/*
	 * Everything happens relative to the parent directory, so the temp
	 * file and the rename target are in the same directory even if a
	 * component of path is replaced meanwhile.
	 */
	rc = dirfd = ps_open_parent(path, &base);
	if (rc < 0)
		goto out;
	for (tries = 0; tries < TMP_TRIES; tries++) {
		rc = tmp_name(tmp, base);
		if (rc < 0)
			goto out;
		/*
		 * O_EXCL|O_NOFOLLOW: a file or symlink someone placed at the
		 * name is never written through; we take another name.
		 * 0644 (less the umask): other tools of the same user read
		 * the file, and the directory decides who else can.
		 */
		fd = openat(dirfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC | O_NOCTTY,
			    0644);
		if (fd >= 0)
			break;
		if (errno != EEXIST && errno != EINTR) {
			rc = -errno;
			goto out;
		}
	}
	if (fd < 0) {
		rc = -EEXIST;
		goto out;
	}
	tmp_made = true;

	/*
	 * No fsync: the mapping describes live processes and is useless
	 * after a crash, and readers only need the rename to be atomic.
	 */
	rc = write_text(fd, group, ents, n);
	if (rc < 0)
		goto out;
	rc = close(fd);
	fd = -1;
	if (rc < 0 && errno != EINTR) {
		rc = -errno;
		goto out;
	}
	/* rename replaces a symlink at the final name; it never follows it. */
	if (renameat(dirfd, tmp, dirfd, base) < 0) {
		rc = -errno;
		goto out;
	}
	tmp_made = false;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp_made)
		unlinkat(dirfd, tmp, 0);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int ps_mapfile_claim(const char *path, const char *group, uid_t *owner)
{
	char buf[sizeof(PS_MAP_HEADER) + PS_GROUP_MAX + 1];
	const char *base;
	struct stat st;
	size_t len;
	int dirfd, fd = -1, rc;

	if (group == NULL || !ps_group_valid(group))
		return -EINVAL;
	dirfd = ps_open_parent(path, &base);
	if (dirfd < 0)
		return dirfd;
	if (fstat(dirfd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		rc = -EACCES;
		goto out;
	}
	fd = openat(dirfd, base,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
			    O_NOCTTY,
		    0644);
	if (fd >= 0) {
		/* One short write: a reader sees the header or nothing. */
		len = put_str(buf, PS_MAP_HEADER);
		len += put_str(buf + len, group);
		buf[len++] = '\n';
		rc = write_all(fd, buf, len);
		close(fd);
		if (rc < 0)
			unlinkat(dirfd, base, 0);
		goto out;
	}
	if (errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	/*
	 * Something is there. Ours (a file the rename will replace, or a
	 * symlink it replaces without following): kept. Anyone else's:
	 * in a sticky folder, our rename could never replace it.
	 */
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	*owner = st.st_uid;
	rc = st.st_uid == geteuid() &&
			     (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ?
		     0 :
		     -EPERM;
out:
	close(dirfd);
	return rc;
}

int ps_mapfile_remove(const char *path)
{
	const char *base;
	int dirfd, rc = 0;

	dirfd = ps_open_parent(path, &base);
	if (dirfd < 0)
		return dirfd;
	/* Without AT_REMOVEDIR: a directory at the path is left alone. */
	if (unlinkat(dirfd, base, 0) < 0)
		rc = -errno;
	close(dirfd);
	return rc;
}
