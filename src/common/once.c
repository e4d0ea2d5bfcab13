/* SPDX-License-Identifier: MIT */
/*
 * once.c - a file of keys shared by the processes of a run (see once.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include "once.h"

/* True if the file on fd holds key (klen bytes) as a whole line. */
static bool once_has(int fd, const char *key, size_t klen)
{
	char buf[4096];
	size_t pos = 0, i;
	bool differs = false;
	off_t off = 0;
	ssize_t n;

	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		for (i = 0; i < (size_t)n; i++) {
			if (buf[i] == '\n') {
				if (!differs && pos == klen)
					return true;
				pos = 0;
				differs = false;
			} else if (!differs && pos < klen &&
				   buf[i] == key[pos]) {
				pos++;
			} else {
				differs = true;
			}
		}
		off += n;
	}
}

int ps_once_claim(const char *path, const char *key)
{
	struct iovec iov[2];
	size_t klen = strlen(key);
	int saved = errno, fd, rc;

	if (klen == 0 || memchr(key, '\n', klen) != NULL)
		return 1;
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = -errno;
		close(fd);
		goto out;
	}
	if (once_has(fd, key, klen)) {
		rc = 0;
	} else {
		iov[0].iov_base = (void *)key;
		iov[0].iov_len = klen;
		iov[1].iov_base = (void *)"\n";
		iov[1].iov_len = 1;
		rc = writev(fd, iov, 2) == (ssize_t)(klen + 1) ? 1 : -EIO;
	}
	/* Closing the only descriptor releases the lock. */
	close(fd);
out:
	errno = saved;
	return rc;
}
