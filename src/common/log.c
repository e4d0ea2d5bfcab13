/* SPDX-License-Identifier: MIT */
/*
 * log.c - one-line log messages, one write(2) each.
 *
 * The level and the destination are set once by ps_log_setup, before any
 * thread or child exists, and are only read afterwards; no lock is needed.
 * A line is formatted into a stack buffer and written with a single
 * write(2). With O_APPEND on a regular file the kernel places each write at
 * the end of the file under the inode lock, so lines from many processes
 * never interleave; the same holds for pipes as long as a line is no longer
 * than PIPE_BUF (4096), which PS_LOG_LINE_MAX guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"

_Static_assert(PS_LOG_LINE_MAX <= PIPE_BUF,
	       "a log line must fit in one atomic pipe write");

static const char log_prefix[] = "portshim[";
static const char log_ellipsis[] = "...";

static enum ps_log_level log_level = PS_LOG_ERROR;
/* "" = stderr. A static buffer: nothing is allocated, ever. */
static char log_file[PATH_MAX];

void ps_log_setup(enum ps_log_level level, const char *file)
{
	if (level < PS_LOG_NONE)
		level = PS_LOG_NONE;
	if (level > PS_LOG_DEBUG)
		level = PS_LOG_DEBUG;
	log_level = level;

	/*
	 * A path that does not fit would name another file once truncated;
	 * stderr is the better place for the lines in that case.
	 */
	if (file == NULL || strlen(file) >= sizeof(log_file))
		log_file[0] = '\0';
	else
		memcpy(log_file, file, strlen(file) + 1);
}

enum ps_log_level ps_log_level(void)
{
	return log_level;
}

/* Appends the decimal form of v at buf[off], within cap; returns new off. */
static size_t put_uint(char *buf, size_t off, size_t cap, unsigned long v)
{
	char tmp[PS_U64_DIGITS];
	size_t n = ps_put_u64(tmp, v), i;

	for (i = 0; i < n && off < cap; i++)
		buf[off++] = tmp[i];
	return off;
}

/* Appends the string s at buf[off], within cap; returns the new off. */
static size_t put_str(char *buf, size_t off, size_t cap, const char *s)
{
	while (*s != '\0' && off < cap)
		buf[off++] = *s++;
	return off;
}

/* Writes a whole line, retrying only on EINTR (one write = one line). */
static void write_line(const char *buf, size_t len)
{
	int fd = STDERR_FILENO;
	ssize_t rc;

	if (log_file[0] != '\0') {
		/*
		 * Opened for every line and closed at once: a host program
		 * that closes or dup2()s over descriptors it does not know
		 * must never make us write into one of its files. If the
		 * file cannot be opened the line is dropped rather than sent
		 * to a stderr the user chose to keep our lines out of.
		 */
		do {
			fd = open(log_file,
				  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
					  O_NOFOLLOW | O_NOCTTY,
				  0600);
		} while (fd < 0 && errno == EINTR);
		if (fd < 0)
			return;
	}
	do {
		rc = write(fd, buf, len);
	} while (rc < 0 && errno == EINTR);
	if (fd != STDERR_FILENO)
		close(fd);
}

void ps_log_vwrite(enum ps_log_level level, const char *func, const char *fmt,
		   va_list ap)
{
	/* One byte more than a line, for vsnprintf's terminating NUL. */
	char buf[PS_LOG_LINE_MAX + 1];
	/* Room for everything but the final newline. */
	const size_t cap = PS_LOG_LINE_MAX - 1;
	int saved_errno = errno;
	size_t off, msg, i;
	bool truncated = false;
	int n;

	if (level < PS_LOG_ERROR || level > log_level)
		goto out;

	off = put_str(buf, 0, cap, log_prefix);
	off = put_uint(buf, off, cap, (unsigned long)getpid());
	off = put_str(buf, off, cap, "]: ");

	msg = off;
	/*
	 * vsnprintf on a stack buffer does not allocate for the integer and
	 * string conversions used by our messages. Restore errno first so
	 * that a "%m" in fmt reports the caller's error.
	 */
	errno = saved_errno;
	n = vsnprintf(buf + off, cap - off + 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > cap - off) {
		truncated = true;
		off = cap;
	} else {
		off += (size_t)n;
	}

	/* A line break inside the message would split the line. */
	for (i = msg; i < off; i++) {
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	}

	/* At the debug level every line says where it comes from. */
	if (!truncated && log_level == PS_LOG_DEBUG && func != NULL) {
		if (off + 3 + strlen(func) > cap)
			truncated = true;
		off = put_str(buf, off, cap, " (");
		off = put_str(buf, off, cap, func);
		off = put_str(buf, off, cap, ")");
	}

	if (truncated) {
		/* The last bytes of the line become "...". */
		off = cap;
		memcpy(buf + cap - (sizeof(log_ellipsis) - 1), log_ellipsis,
		       sizeof(log_ellipsis) - 1);
	}
	buf[off++] = '\n';
	write_line(buf, off);
out:
	errno = saved_errno;
}

void ps_log_write(enum ps_log_level level, const char *func, const char *fmt,
		  ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	ps_log_vwrite(level, func, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}
