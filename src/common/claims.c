/* SPDX-License-Identifier: MIT */
/*
 * claims.c - one file per real port in /dev/shm, owned by the registry
 * that leases it (see claims.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "claims.h"
#include "decimal.h"
#include "proc.h"

/*
 * "portshim claim v1 <uid> <created_ns> <pid> <start>": the registry
 * (its owner and creation time) and the holder of the lease the claim
 * was made for (pid and start time), whose death makes it stale.
 */
#define CLAIM_TAG "portshim claim v1 "
#define CLAIM_MAX 96

/* Opens PS_CLAIMS_DIR if it is root's, sticky and writable by all. */
static int open_dir(void)
{
	struct stat st;
	int fd;

	fd = open(PS_CLAIMS_DIR,
		  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 ||
	    (st.st_mode & (S_ISVTX | S_IWOTH)) != (S_ISVTX | S_IWOTH)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* The registry's part of a claim's text (ends with a space). */
static size_t claim_prefix(const struct ps_registry *reg, char *buf)
{
	size_t n = sizeof(CLAIM_TAG) - 1;

	memcpy(buf, CLAIM_TAG, n);
	n += ps_put_u64(buf + n, reg->hdr->uid);
	buf[n++] = ' ';
	n += ps_put_u64(buf + n, reg->hdr->created_ns);
	buf[n++] = ' ';
	return n;
}

/* "portshim-claim-<port>" into name (32 bytes). */
static void claim_name(char *name, uint16_t port)
{
	size_t n = sizeof(PS_CLAIMS_PREFIX) - 1;

	memcpy(name, PS_CLAIMS_PREFIX, n);
	n += ps_put_u64(name + n, port);
	name[n] = '\0';
}

/*
 * Reads the claim name in dirfd (a symlink, see below) into buf
 * (CLAIM_MAX bytes, NUL-terminated); *uid is its owner. Returns its
 * length, or -1 (gone, or not a claim).
 */
static ssize_t claim_read(int dirfd, const char *name, char *buf, uid_t *uid)
{
	struct stat st;
	ssize_t n;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISLNK(st.st_mode))
		return -1;
	*uid = st.st_uid;
	n = readlinkat(dirfd, name, buf, CLAIM_MAX - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* True if the claim text names reg. */
static bool claim_of(const char *text, ssize_t n, const char *prefix,
		     size_t plen)
{
	return n > (ssize_t)plen && memcmp(text, prefix, plen) == 0;
}

/*
 * True if the lease the claim text was made for is gone: its holder
 * (the last two numbers) is not alive. A text that cannot be read as a
 * claim is not judged stale: it still denies (a claim half-written by
 * its maker, or another user's file).
 */
static bool claim_stale(const char *text)
{
	const char *p = text + sizeof(CLAIM_TAG) - 1;
	uint64_t v[4] = { 0 };
	struct ps_ident id = { 0 };

	if (strncmp(text, CLAIM_TAG, sizeof(CLAIM_TAG) - 1) != 0)
		return false;
	/* Four decimal numbers, one space between, a newline last. */
	for (int i = 0; i < 4; i++) {
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9') {
			if (v[i] > (UINT64_MAX - 9) / 10)
				return false;
			v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
		}
		if (i < 3 && *p++ != ' ')
			return false;
	}
	if (*p != '\0' || v[2] == 0 || v[2] > UINT32_MAX)
		return false;
	id.pid = (uint32_t)v[2];
	id.start = v[3];
	return ps_proc_alive(&id) == 0;
}

int ps_claim_take(const struct ps_registry *reg, uint16_t port,
		  const struct ps_ident *holder)
{
	char name[32], text[CLAIM_MAX], seen[CLAIM_MAX];
	size_t plen = claim_prefix(reg, text), len = plen;
	int saved = errno, dirfd, rc = 0;
	uid_t owner = 0;
	ssize_t n;

	len += ps_put_u64(text + len, holder->pid);
	text[len++] = ' ';
	len += ps_put_u64(text + len, holder->start);
	text[len] = '\0';
	dirfd = open_dir();
	if (dirfd < 0)
		goto out; /* no claims here: do without */
	claim_name(name, port);
	for (int tries = 0; tries < 2; tries++) {
		/*
		 * A claim is a symbolic link whose target is its text
		 * (never followed): made at once with its text, so never
		 * seen half-written, and kept in the inode by tmpfs, where
		 * a file would cost a page.
		 */
		if (symlinkat(text, dirfd, name) == 0)
			goto out;
		if (errno != EEXIST)
			goto out; /* cannot claim: do without */
		n = claim_read(dirfd, name, seen, &owner);
		if (claim_of(seen, n, text, plen))
			goto out; /* ours already */
		if (owner == geteuid()) {
			/*
			 * This user's, from another registry: the user's
			 * registries keep out of each other's way by
			 * binding, as before claims. A stale one is
			 * replaced by ours; a live one is left to its
			 * registry, and protects the port as well.
			 */
			if (n >= 0 && claim_stale(seen) &&
			    unlinkat(dirfd, name, 0) == 0)
				continue;
			goto out;
		}
		/*
		 * Another user's. Once the lease it was made for is gone
		 * it denies nothing, but it stays theirs (the sticky folder
		 * keeps it so): the port is used without a claim.
		 */
		if (n < 0 || !claim_stale(seen))
			rc = -EADDRINUSE;
		goto out;
	}
out:
	if (dirfd >= 0)
		close(dirfd);
	errno = saved;
	return rc;
}

void ps_claim_drop(const struct ps_registry *reg, uint16_t port)
{
	char name[32], prefix[CLAIM_MAX], seen[CLAIM_MAX];
	size_t plen = claim_prefix(reg, prefix);
	int saved = errno, dirfd;
	uid_t owner;

	dirfd = open_dir();
	if (dirfd < 0)
		return;
	claim_name(name, port);
	if (claim_of(seen, claim_read(dirfd, name, seen, &owner), prefix, plen))
		unlinkat(dirfd, name, 0);
	close(dirfd);
	errno = saved;
}

/* One claim file met by claims_walk: its name, port and text. */
struct claim_file {
	int dirfd;
	const char *name;
	uint16_t port;
	const char *seen; /* what claim_read read */
	ssize_t n;	  /* its result */
	uid_t owner;
};

/*
 * Calls visit for each claim file of the folder (a name
 * PS_CLAIMS_PREFIX + a port 1-65535); returns how many visit counted
 * (it returns 1 or 0), or -errno when the folder cannot be read.
 */
static int claims_walk(int (*visit)(void *ctx, const struct claim_file *f),
		       void *ctx)
{
	char seen[CLAIM_MAX];
	const size_t nlen = sizeof(PS_CLAIMS_PREFIX) - 1;
	struct claim_file f;
	struct dirent *de;
	DIR *d;
	int dirfd, count = 0;

	dirfd = open_dir();
	if (dirfd < 0)
		return dirfd;
	d = fdopendir(dirfd);
	if (d == NULL) {
		close(dirfd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned long p;
		char *end;

		if (strncmp(de->d_name, PS_CLAIMS_PREFIX, nlen) != 0)
			continue;
		p = strtoul(de->d_name + nlen, &end, 10);
		if (*end != '\0' || p == 0 || p > 65535)
			continue;
		f.dirfd = dirfd;
		f.name = de->d_name;
		f.port = (uint16_t)p;
		f.seen = seen;
		f.n = claim_read(dirfd, de->d_name, seen, &f.owner);
		count += visit(ctx, &f);
	}
	closedir(d);
	return count;
}

/* What ps_claims_each and ps_claims_sweep look for. */
struct claims_ctx {
	char prefix[CLAIM_MAX];
	size_t plen;
	void (*fn)(void *arg, uint16_t port);
	void *fn_arg;
	bool (*leased)(void *arg, uint16_t port);
	void *arg;
	bool dry_run;
};

static int each_visit(void *ctx, const struct claim_file *f)
{
	struct claims_ctx *c = ctx;

	if (!claim_of(f->seen, f->n, c->prefix, c->plen))
		return 0;
	c->fn(c->fn_arg, f->port);
	return 1;
}

int ps_claims_each(const struct ps_registry *reg,
		   void (*fn)(void *arg, uint16_t port), void *arg)
{
	struct claims_ctx c = { .fn = fn, .fn_arg = arg };

	c.plen = claim_prefix(reg, c.prefix);
	return claims_walk(each_visit, &c);
}

bool ps_claims_usable(void)
{
	int fd = open_dir();

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int sweep_visit(void *ctx, const struct claim_file *f)
{
	struct claims_ctx *c = ctx;

	if (f->n < 0 || f->owner != geteuid())
		return 0;
	if (claim_of(f->seen, f->n, c->prefix, c->plen) ?
		    c->leased(c->arg, f->port) :
		    !claim_stale(f->seen))
		return 0;
	if (c->fn != NULL)
		c->fn(c->fn_arg, f->port);
	if (!c->dry_run)
		unlinkat(f->dirfd, f->name, 0);
	return 1;
}

int ps_claims_sweep(const struct ps_registry *reg,
		    bool (*leased)(void *arg, uint16_t port), void *arg,
		    bool dry_run, void (*fn)(void *arg, uint16_t port),
		    void *fn_arg)
{
	struct claims_ctx c = { .fn = fn,
				.fn_arg = fn_arg,
				.leased = leased,
				.arg = arg,
				.dry_run = dry_run };

	c.plen = claim_prefix(reg, c.prefix);
	return claims_walk(sweep_visit, &c);
}
