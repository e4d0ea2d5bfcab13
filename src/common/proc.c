/* SPDX-License-Identifier: MIT */
/*
 * proc.c - process identity from /proc: pid plus start time.
 *
 * Everything here runs inside host programs (the shim checks lease owners
 * while holding the registry lock), so files are read with open/read/close
 * into stack buffers: no stdio, no allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "decimal.h"
#include "proc.h"

/*
 * /proc/PID/stat is 52 numbers after "PID (comm) ", each at most 20
 * digits, and comm is at most 64 bytes for kernel threads: 2048 bytes
 * always hold the whole line.
 */
#define STAT_BUF 2048

/* "/proc/" + 10 digits + "/cmdline" + NUL fits easily. */
#define PROC_PATH_MAX 40

/* Writes the decimal form of v into buf (at least 21 bytes); returns len. */
static size_t fmt_u64(char *buf, uint64_t v)
{
	size_t n = ps_put_u64(buf, v);

	buf[n] = '\0';
	return n;
}

/* Builds "/proc/PID/<leaf>" into path (PROC_PATH_MAX bytes). */
static void proc_path(char *path, pid_t pid, const char *leaf)
{
	size_t off;

	memcpy(path, "/proc/", 6);
	off = 6 + fmt_u64(path + 6, (uint64_t)pid);
	path[off++] = '/';
	memcpy(path + off, leaf, strlen(leaf) + 1);
}

/*
 * Reads up to len bytes of /proc/PID/<leaf> into buf. Returns the number
 * of bytes read or -errno; a missing process gives -ESRCH.
 */
static ssize_t proc_read(pid_t pid, const char *leaf, char *buf, size_t len)
{
	char path[PROC_PATH_MAX];
	size_t got = 0;
	ssize_t rc;
	int fd;

	proc_path(path, pid, leaf);
	do {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		rc = errno == ENOENT ? -ESRCH : -errno;
		goto out;
	}
	while (got < len) {
		rc = read(fd, buf + got, len - got);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			/* A process that exited after the open gives ESRCH. */
			rc = -errno;
			goto out;
		}
		if (rc == 0)
			break;
		got += (size_t)rc;
	}
	rc = (ssize_t)got;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Parses an unsigned decimal number at *p, up to the first non-digit or
 * end, and advances *p past it. Returns false if there is no digit or on
 * overflow.
 */
static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s == end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

/*
 * Finds the state and the start time in a /proc/PID/stat line. comm (the
 * second field) may hold spaces and ')' characters, so fields are counted
 * from the LAST ')' in the line, after which the kernel prints only
 * numbers and the one-letter state.
 */
static int parse_stat(const char *buf, size_t len, char *state, uint64_t *start)
{
	const char *p, *end = buf + len;
	int field;

	p = memrchr(buf, ')', len);
	if (p == NULL || end - p < 3 || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p++; /* field 3 */
	for (field = 3; field < 22; field++) {
		/* Skip the rest of this field and the separating space. */
		while (p < end && *p != ' ')
			p++;
		if (p == end)
			return -EIO;
		p++;
	}
	if (!parse_u64(&p, end, start)) /* field 22: starttime */
		return -EIO;
	return 0;
}

int ps_proc_ident(pid_t pid, struct ps_ident *out)
{
	char buf[STAT_BUF];
	uint64_t start;
	ssize_t len;
	char state;
	int rc;

	if (pid <= 0)
		return -EINVAL;
	len = proc_read(pid, "stat", buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	rc = parse_stat(buf, (size_t)len, &state, &start);
	if (rc < 0)
		return rc;
	/*
	 * A zombie has closed every socket and will never run again: as far
	 * as leases go it is dead, even though its pid is still taken.
	 * 'X' (dead) is only ever seen in a race with the final reap.
	 */
	if (state == 'Z' || state == 'X' || state == 'x')
		return -ESRCH;
	out->pid = (uint32_t)pid;
	out->pad = 0;
	out->start = start;
	return 0;
}

/*
 * The cache of ps_proc_self lives in a page of its own marked
 * MADV_WIPEONFORK: a child made by fork() (or any clone without
 * CLONE_VM) gets that page zeroed by the kernel, so a non-zero pid found
 * there is always this process's own, and the shim's hot path makes no
 * getpid() system call (glibc stopped caching the pid in 2.25, and one
 * system call costs about as much as a bind() on some virtual machines).
 * Only a child sharing our memory (vfork, clone with CLONE_VM) would see
 * our pid; such a child may only exec or _exit, and never reaches here.
 *
 * Where the page cannot be had (MADV_WIPEONFORK needs Linux 4.14), the
 * cache is in ordinary memory and keyed by getpid(), recomputed after
 * fork. In both, start is stored before pid, and pid with release order,
 * so a thread that sees a pid also sees the matching start time; two
 * threads filling the cache at once store the same values.
 */
struct self_cache {
	uint32_t pid;
	uint32_t pad;
	uint64_t start;
};

static struct self_cache self_plain;
static struct self_cache *self_wiped; /* NULL: not tried yet */
static struct self_cache self_none;   /* self_wiped when unavailable */

/* The wipe-on-fork page, or NULL where the kernel has none. */
static struct self_cache *wiped_cache(void)
{
	struct self_cache *c = __atomic_load_n(&self_wiped, __ATOMIC_ACQUIRE);
	struct self_cache *expected = NULL;
	long page;
	void *m;

	if (c != NULL)
		return c == &self_none ? NULL : c;
	page = sysconf(_SC_PAGESIZE);
	m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED && madvise(m, (size_t)page, MADV_WIPEONFORK)) {
		munmap(m, (size_t)page);
		m = MAP_FAILED;
	}
	c = m == MAP_FAILED ? &self_none : m;
	/* A thread that lost the race drops its page, never used. */
	if (!__atomic_compare_exchange_n(&self_wiped, &expected, c, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (m != MAP_FAILED)
			munmap(m, (size_t)page);
		c = expected;
	}
	return c == &self_none ? NULL : c;
}

int ps_proc_self(struct ps_ident *out)
{
	struct self_cache *c = wiped_cache();
	struct ps_ident id;
	uint32_t pid;
	pid_t self;
	int rc;

	if (c != NULL) {
		pid = __atomic_load_n(&c->pid, __ATOMIC_ACQUIRE);
		self = pid != 0 ? (pid_t)pid : getpid();
	} else {
		c = &self_plain;
		self = getpid();
		pid = __atomic_load_n(&c->pid, __ATOMIC_ACQUIRE);
	}
	if (pid == (uint32_t)self) {
		out->pid = pid;
		out->pad = 0;
		out->start = __atomic_load_n(&c->start, __ATOMIC_RELAXED);
		return 0;
	}
	rc = ps_proc_ident(self, &id);
	if (rc < 0)
		return rc;
	__atomic_store_n(&c->start, id.start, __ATOMIC_RELAXED);
	__atomic_store_n(&c->pid, id.pid, __ATOMIC_RELEASE);
	*out = id;
	return 0;
}

pid_t ps_proc_pid(void)
{
	struct self_cache *c = wiped_cache();
	struct ps_ident id;
	uint32_t pid =
		c != NULL ? __atomic_load_n(&c->pid, __ATOMIC_ACQUIRE) : 0;

	if (pid != 0)
		return (pid_t)pid;
	if (c != NULL && ps_proc_self(&id) == 0)
		return (pid_t)id.pid;
	return getpid();
}

int ps_proc_alive(const struct ps_ident *id)
{
	struct ps_ident now;
	int rc;

	if (id == NULL || id->pid == 0 || id->pid > INT32_MAX)
		return 0;
	rc = ps_proc_ident((pid_t)id->pid, &now);
	if (rc == -ESRCH)
		return 0;
	/*
	 * Any other failure (out of descriptors, a /proc we cannot parse)
	 * says nothing about the process. Reporting it alive only delays
	 * reclaiming a lease; reporting it dead could hand a live owner's
	 * port to someone else.
	 */
	if (rc < 0)
		return 1;
	return now.start == id->start;
}

/*
 * Command lines and comm are chosen by the process itself; a control
 * character in them would break the one-line output of `portshim ls` and
 * `who` or play tricks on a terminal, so each becomes '?'.
 */
static void sanitize(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	}
}

/* Copies "[comm]" from /proc/PID/stat into buf; returns 0 or -errno. */
static int cmdline_from_comm(pid_t pid, char *buf, size_t len)
{
	char stat[STAT_BUF];
	const char *open_paren, *close_paren;
	size_t n, off = 0;
	ssize_t got;

	got = proc_read(pid, "stat", stat, sizeof(stat));
	if (got < 0)
		return (int)got;
	open_paren = memchr(stat, '(', (size_t)got);
	close_paren = memrchr(stat, ')', (size_t)got);
	if (open_paren == NULL || close_paren == NULL ||
	    close_paren < open_paren)
		return -EIO;
	n = (size_t)(close_paren - open_paren - 1);
	if (off < len - 1)
		buf[off++] = '[';
	if (n > len - 1 - off)
		n = len - 1 - off;
	memcpy(buf + off, open_paren + 1, n);
	sanitize(buf + off, n);
	off += n;
	if (off < len - 1)
		buf[off++] = ']';
	buf[off] = '\0';
	return 0;
}

int ps_proc_cmdline(pid_t pid, char *buf, size_t len)
{
	ssize_t got;
	size_t i;
	int rc;

	if (buf == NULL || len == 0)
		return -EINVAL;
	if (pid <= 0) {
		rc = -EINVAL;
		goto fail;
	}
	got = proc_read(pid, "cmdline", buf, len - 1);
	/* Arguments are separated (and ended) by NULs. */
	while (got > 0 && buf[got - 1] == '\0')
		got--;
	if (got > 0) {
		for (i = 0; i < (size_t)got; i++) {
			if (buf[i] == '\0')
				buf[i] = ' ';
		}
		sanitize(buf, (size_t)got);
		buf[got] = '\0';
		return 0;
	}
	/* Kernel threads and zombies have an empty command line. */
	rc = cmdline_from_comm(pid, buf, len);
	if (rc == 0)
		return 0;
fail:
	if (len >= 2)
		memcpy(buf, "?", 2);
	else
		buf[0] = '\0';
	return rc;
}

void ps_ident_format(const struct ps_ident *id, char *buf, size_t len)
{
	/* "4294967295:18446744073709551615" and a NUL. */
	char tmp[10 + 1 + 20 + 1];
	size_t off;

	if (len == 0)
		return;
	off = fmt_u64(tmp, id->pid);
	tmp[off++] = ':';
	off += fmt_u64(tmp + off, id->start);
	if (off > len - 1)
		off = len - 1;
	memcpy(buf, tmp, off);
	buf[off] = '\0';
}

/*
 * ps_parse_uint is not used here: its unsigned long is 32 bits on i386,
 * and start times are 64-bit everywhere.
 */
int ps_ident_parse(const char *text, struct ps_ident *out)
{
	const char *p = text, *end;
	uint64_t pid, start;

	if (text == NULL)
		return -EINVAL;
	end = text + strlen(text);
	if (!parse_u64(&p, end, &pid) || pid > INT32_MAX)
		return -EINVAL;
	if (p == end || *p != ':')
		return -EINVAL;
	p++;
	if (!parse_u64(&p, end, &start) || p != end)
		return -EINVAL;
	out->pid = (uint32_t)pid;
	out->pad = 0;
	out->start = start;
	return 0;
}
