/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the shared lease registry: creation, validation, the robust
 * lock with repair, and the lease table. Its lock-free reads are in
 * registry_peek.c, allocation and gc in registry_alloc.c, the full check
 * in registry_check.c (registry_int.h is what they share).
 *
 * Lock order: there is one lock (the registry mutex). Nothing else is
 * taken while it is held, and nothing that can block for long (connect,
 * waiting for a peer) runs under it: only bind(), short file writes of the
 * mapping file and /proc reads when reclaiming.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "claims.h"
#include "reglock.h"
#include "handoff.h"
#include "proc.h"
#include "registry.h"
#include "registry_int.h"
#include "statedir.h"

/* A number for each mapping made by this process (memo.h keys on it). */
static uint32_t next_serial(void)
{
	static uint32_t last;

	return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

_Static_assert(sizeof(struct ps_ident) == 16, "ps_ident layout");
_Static_assert(sizeof(struct ps_lease) == 136, "ps_lease layout");
_Static_assert(offsetof(struct ps_lease, maker) == 24, "ps_lease.maker");
_Static_assert(offsetof(struct ps_lease, group) == 72, "ps_lease.group");
_Static_assert(offsetof(struct ps_reg_header, boot_id) == 80, "hdr.boot_id");
_Static_assert(offsetof(struct ps_reg_header, undo) == 152, "hdr.undo");
_Static_assert(offsetof(struct ps_reg_header, lock_gen) == 288, "hdr.lock_gen");
_Static_assert(offsetof(struct ps_reg_header, lock) == 1024, "hdr.lock");
_Static_assert(sizeof(pthread_mutex_t) <= 128, "mutex fits its slot");
_Static_assert(sizeof(struct ps_reg_header) <= PS_REG_HEADER_SIZE,
	       "header fits its page");
_Static_assert((PS_REG_HBUCKETS & (PS_REG_HBUCKETS - 1)) == 0, "pow2");
_Static_assert((PS_REG_GBUCKETS & (PS_REG_GBUCKETS - 1)) == 0, "pow2");

#define HBUCKETS_OFF ((uint64_t)PS_REG_HEADER_SIZE)
#define GBUCKETS_OFF (HBUCKETS_OFF + PS_REG_HBUCKETS * sizeof(uint32_t))
#define LEASES_OFF (GBUCKETS_OFF + PS_REG_GBUCKETS * sizeof(uint32_t))
#define FILE_SIZE \
	(LEASES_OFF + (uint64_t)PS_REG_NPORTS * sizeof(struct ps_lease))

/* Creation attempts before giving up on a registry that keeps changing. */
#define OPEN_TRIES 8

size_t ps_registry_file_size(void)
{
	return (size_t)FILE_SIZE;
}

void ps_reg_seterr(struct ps_reg_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

uint64_t ps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ps_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t ps_group_hash(const char *group)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)group; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h ? h : 1;
}

/* ------------------------------------------------------------ identity */

int ps_reg_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* The boot id without its newline, or "" where /proc does not say. */
static void boot_id(char out[40])
{
	char buf[64];

	memset(out, 0, 40);
	if (ps_reg_read_small("/proc/sys/kernel/random/boot_id", buf,
			      sizeof(buf)))
		return;
	buf[strcspn(buf, "\n")] = '\0';
	/* A boot id is 36 characters; anything longer is cut, consistently. */
	memcpy(out, buf, strnlen(buf, 39));
}

static uint64_t pidns_inode(void)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* -------------------------------------------------- header validation */

int ps_registry_check_header(const void *image, size_t len, uint64_t file_size,
			     const char *bootid, uint64_t pidns,
			     struct ps_reg_error *err)
{
	struct ps_reg_header h;

	if (len < sizeof(h)) {
		ps_reg_seterr(err,
			      "is %zu bytes, shorter than a registry header",
			      len);
		return -EUCLEAN;
	}
	memcpy(&h, image, sizeof(h));
	if (h.magic != PS_REG_MAGIC) {
		ps_reg_seterr(err, "is not a portshim registry (bad magic)");
		return -EUCLEAN;
	}
	if (h.version != PS_REG_VERSION) {
		ps_reg_seterr(err,
			      "has layout version %u, this portshim uses %u",
			      h.version, PS_REG_VERSION);
		return -EPROTO;
	}
	if (h.abi_word != sizeof(long) ||
	    h.abi_mutex != sizeof(pthread_mutex_t)) {
		ps_reg_seterr(
			err,
			"was made by a %u-bit program (mutex of %u bytes);"
			" this one is %zu-bit (mutex of %zu bytes)",
			h.abi_word * 8, h.abi_mutex, sizeof(long) * 8,
			sizeof(pthread_mutex_t));
		return -EPROTO;
	}
	if (h.header_size != PS_REG_HEADER_SIZE ||
	    h.hbuckets != PS_REG_HBUCKETS || h.gbuckets != PS_REG_GBUCKETS ||
	    h.nports != PS_REG_NPORTS || h.hbuckets_off != HBUCKETS_OFF ||
	    h.gbuckets_off != GBUCKETS_OFF || h.leases_off != LEASES_OFF ||
	    h.file_size != FILE_SIZE) {
		ps_reg_seterr(err, "has an inconsistent layout in its header");
		return -EUCLEAN;
	}
	if (file_size != FILE_SIZE) {
		ps_reg_seterr(err, "is %llu bytes, expected %llu",
			      (unsigned long long)file_size,
			      (unsigned long long)FILE_SIZE);
		return -EUCLEAN;
	}
	/*
	 * The boot id is quoted in the message below: only what the kernel
	 * writes there (hex digits and dashes) may reach a log line, never
	 * a newline or a terminal escape from a crafted file.
	 */
	if (memchr(h.boot_id, '\0', sizeof(h.boot_id)) == NULL ||
	    strspn(h.boot_id, "0123456789abcdef-") != strlen(h.boot_id)) {
		ps_reg_seterr(err, "has a malformed boot id");
		return -EUCLEAN;
	}
	if (bootid != NULL && strcmp(h.boot_id, bootid) != 0) {
		ps_reg_seterr(err,
			      "was made before the last reboot (boot id %.36s)",
			      h.boot_id);
		return -ESTALE;
	}
	if (pidns != 0 && h.pidns != pidns) {
		ps_reg_seterr(err,
			      "belongs to another PID namespace (%llu, this is"
			      " %llu): processes there cannot share its lock",
			      (unsigned long long)h.pidns,
			      (unsigned long long)pidns);
		return -EXDEV;
	}
	/* Garbage in the mutex must never reach pthread (reglock.h). */
	{
		char why[128];

		if (ps_reglock_validate(&h.lock.mutex, why, sizeof(why))) {
			ps_reg_seterr(err, "%s", why);
			return -EUCLEAN;
		}
	}
	return 0;
}

/* ----------------------------------------------------------- creation */

/*
 * Creates a complete registry under a temporary name and moves it to its
 * final name without ever replacing an existing one. Returns 0 when this
 * process's file became the registry (mapped into reg), -EEXIST when
 * another process won the race, or -errno.
 */
static int create_registry(struct ps_registry *reg, int dirfd, const char *base,
			   const char *shown, struct ps_reg_error *err)
{
	static atomic_uint counter;
	char tmp[256];
	void *map = MAP_FAILED;
	struct ps_reg_header *h;
	int fd = -1;
	int rc;

	for (int i = 0; i < OPEN_TRIES; i++) {
		snprintf(tmp, sizeof(tmp), ".%s.tmp.%d.%u", base, (int)getpid(),
			 atomic_fetch_add(&counter, 1));
		fd = openat(dirfd, tmp,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = -errno;
		ps_reg_seterr(err, "cannot create a registry next to %s: %s",
			      shown, strerror(-rc));
		return rc;
	}
	/*
	 * A umask such as 0277 would leave the file without the owner's
	 * write bit: usable through this descriptor, but every other
	 * process of the user would then fail to open it. 0600 adds no
	 * access for anyone else.
	 */
	if (fchmod(fd, 0600) != 0) {
		rc = -errno;
		ps_reg_seterr(err, "cannot chmod 600 a registry next to %s: %s",
			      shown, strerror(-rc));
		goto fail;
	}
	/*
	 * posix_fallocate turns a later SIGBUS on a full tmpfs into ENOSPC
	 * now, while nobody depends on the file yet.
	 */
	rc = -posix_fallocate(fd, 0, (off_t)FILE_SIZE);
	if (rc) {
		ps_reg_seterr(err, "cannot allocate %llu bytes for %s: %s",
			      (unsigned long long)FILE_SIZE, shown,
			      strerror(-rc));
		goto fail;
	}
	map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		ps_reg_seterr(err, "cannot map %s: %s", shown, strerror(-rc));
		goto fail;
	}
	h = map;
	h->version = PS_REG_VERSION;
	h->header_size = PS_REG_HEADER_SIZE;
	h->file_size = FILE_SIZE;
	h->abi_word = sizeof(long);
	h->abi_mutex = sizeof(pthread_mutex_t);
	h->pidns = pidns_inode();
	h->uid = (uint32_t)geteuid();
	h->hbuckets = PS_REG_HBUCKETS;
	h->gbuckets = PS_REG_GBUCKETS;
	h->nports = PS_REG_NPORTS;
	h->hbuckets_off = HBUCKETS_OFF;
	h->gbuckets_off = GBUCKETS_OFF;
	h->leases_off = LEASES_OFF;
	boot_id(h->boot_id);
	h->created_ns = ps_now_ns();
	rc = ps_reglock_init(&h->lock.mutex);
	if (rc) {
		ps_reg_seterr(err,
			      "cannot initialise a robust process-shared mutex"
			      " in %s: %s (robust futexes unavailable here?)",
			      shown, strerror(-rc));
		goto fail;
	}
	/* The magic goes last: a file with it is complete. */
	__atomic_store_n(&h->magic, PS_REG_MAGIC, __ATOMIC_RELEASE);

	rc = renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) ? -errno : 0;
	if (rc == -EINVAL || rc == -ENOSYS) {
		/* No RENAME_NOREPLACE on this file system: link + unlink. */
		rc = linkat(dirfd, tmp, dirfd, base, 0) ? -errno : 0;
		unlinkat(dirfd, tmp, 0);
	}
	if (rc) {
		if (rc != -EEXIST)
			ps_reg_seterr(err, "cannot publish %s: %s", shown,
				      strerror(-rc));
		unlinkat(dirfd, tmp, 0);
		/* Never locked by anyone: unmapping it is safe. */
		munmap(map, FILE_SIZE);
		close(fd);
		return rc;
	}
	{
		struct stat st;

		if (fstat(fd, &st) == 0) {
			reg->dev = st.st_dev;
			reg->ino = st.st_ino;
		}
	}
	reg->hdr = map;
	reg->fd = fd;
	reg->size = FILE_SIZE;
	reg->created = true;
	reg->serial = next_serial();
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, FILE_SIZE);
	close(fd);
	unlinkat(dirfd, tmp, 0);
	return rc;
}

/*
 * Validates and maps an open registry descriptor. uid is the owner the
 * file must have: ours, or for a descriptor handed down by the group's
 * owner (PORTSHIM_REGISTRY_FD), the owner's. Closes fd on failure.
 */
static int adopt_fd(struct ps_registry *reg, int fd, uid_t uid,
		    const char *shown, struct ps_reg_error *err)
{
	char bootid[40];
	struct stat st;
	void *map;
	int rc;

	if (fstat(fd, &st) != 0) {
		rc = -errno;
		ps_reg_seterr(err, "cannot stat %s: %s", shown, strerror(-rc));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		ps_reg_seterr(err, "%s is not a regular file (remove it)",
			      shown);
		goto fail;
	}
	if (st.st_uid != uid) {
		rc = -EPERM;
		ps_reg_seterr(
			err,
			"%s belongs to uid %u, not to you (uid %u); remove"
			" it or set PORTSHIM_REGISTRY",
			shown, (unsigned)st.st_uid, (unsigned)uid);
		goto fail;
	}
	if (st.st_mode & 077) {
		rc = -EPERM;
		ps_reg_seterr(err,
			      "%s is accessible to others (mode %04o), so they"
			      " could redirect your connections; run"
			      " 'portshim gc --reset'",
			      shown, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_nlink != 1) {
		rc = -EPERM;
		ps_reg_seterr(
			err, "%s has %lu hard links; run 'portshim gc --reset'",
			shown, (unsigned long)st.st_nlink);
		goto fail;
	}
	if ((uint64_t)st.st_size != FILE_SIZE) {
		rc = -EUCLEAN;
		ps_reg_seterr(err,
			      "%s is %lld bytes, a registry is %llu (truncated"
			      " or not a registry); run 'portshim gc --reset'",
			      shown, (long long)st.st_size,
			      (unsigned long long)FILE_SIZE);
		goto fail;
	}
	/* Map no more than the file holds: checked just above. */
	map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		ps_reg_seterr(err, "cannot map %s: %s", shown, strerror(-rc));
		goto fail;
	}
	boot_id(bootid);
	rc = ps_registry_check_header(map, FILE_SIZE, (uint64_t)st.st_size,
				      bootid[0] ? bootid : NULL, pidns_inode(),
				      err);
	if (rc) {
		struct ps_reg_error why = { "" };

		/* err may be NULL: the reason is then computed and dropped. */
		if (err != NULL)
			why = *err;
		ps_reg_seterr(err, "%s %s; run 'portshim gc --reset'", shown,
			      why.msg);
		/* Not locked, never will be: unmapping is safe. */
		munmap(map, FILE_SIZE);
		goto fail;
	}
	reg->hdr = map;
	reg->fd = fd;
	reg->dev = st.st_dev;
	reg->ino = st.st_ino;
	reg->size = FILE_SIZE;
	reg->serial = next_serial();
	return 0;
fail:
	close(fd);
	return rc;
}

/*
 * Opens and validates an existing registry. Returns 0, -ENOENT if it
 * does not exist, or -errno with a reason.
 */
static int open_existing(struct ps_registry *reg, int dirfd, const char *base,
			 const char *shown, struct ps_reg_error *err)
{
	int fd;
	int rc;

	fd = openat(dirfd, base,
		    O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return rc;
		if (rc == -ELOOP)
			ps_reg_seterr(
				err,
				"%s is a symbolic link; refusing to follow"
				" it (remove it)",
				shown);
		else if (rc == -EISDIR)
			ps_reg_seterr(
				err,
				"%s is a directory, not a registry (remove"
				" it)",
				shown);
		else
			ps_reg_seterr(err, "cannot open %s: %s", shown,
				      strerror(-rc));
		return rc;
	}
	return adopt_fd(reg, fd, geteuid(), shown, err);
}

/* Points the table pointers into a mapped registry. */
static void set_tables(struct ps_registry *reg)
{
	reg->hbuckets = (uint32_t *)((char *)reg->hdr + HBUCKETS_OFF);
	reg->gbuckets = (uint32_t *)((char *)reg->hdr + GBUCKETS_OFF);
	reg->leases = (struct ps_lease *)((char *)reg->hdr + LEASES_OFF);
}

/*
 * The registry that the group's owner handed down (PORTSHIM_REGISTRY_FD,
 * see handoff.h), for a process of the group that runs as another user:
 * a server that switched user, or a child started through runuser, su or
 * setpriv. Such a process can neither open the owner's registry by its
 * path (a 0700 folder of another uid) nor may it make one of its own, in
 * which the group's other processes would never find its ports. Returns
 * -ENOENT when there is no hand-down or the process runs as the owner
 * (open by path as usual), else what opening it gave.
 */
static int open_handed(struct ps_registry *reg, struct ps_reg_error *err)
{
	struct ps_handoff h;
	char shown[64];
	int fd, rc;

	if (ps_handoff_parse(ps_env_secure(PS_HANDOFF_ENV), &h) < 0 ||
	    h.uid == geteuid())
		return -ENOENT;
	rc = ps_handoff_check(&h);
	if (rc < 0) {
		ps_reg_seterr(
			err,
			"pid %ld runs as uid %u, but its group's registry"
			" belongs to uid %u and was not handed to it: %s (keep"
			" descriptor %d open in the program, or let it switch"
			" user after it started)",
			(long)getpid(), (unsigned)geteuid(), (unsigned)h.uid,
			rc == -EBADF ? "the descriptor was closed" :
				       "the descriptor names another file",
			h.fd);
		return -EACCES;
	}
	/* A copy of our own, so that the program may close its number. */
	fd = fcntl(h.fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		rc = -errno;
		ps_reg_seterr(err,
			      "cannot use the group's registry (descriptor %d):"
			      " %s",
			      h.fd, strerror(-rc));
		return rc;
	}
	snprintf(shown, sizeof(shown), "the group's registry (descriptor %d)",
		 h.fd);
	rc = adopt_fd(reg, fd, h.uid, shown, err);
	if (rc)
		return rc;
	snprintf(reg->path, sizeof(reg->path), "/proc/self/fd/%d", fd);
	set_tables(reg);
	return 0;
}

int ps_registry_open(struct ps_registry *reg, const char *path,
		     struct ps_reg_error *err)
{
	char dir[4096];
	const char *base;
	int dirfd;
	int rc = -ENOENT;

	memset(reg, 0, sizeof(*reg));
	reg->fd = -1;
	/* An invalid value is reported by the configuration (config.c). */
	if (ps_reglock_timeout_parse(ps_env_secure("PORTSHIM_LOCK_TIMEOUT"),
				     &reg->lock_timeout_ms) != 0)
		reg->lock_timeout_ms = PS_LOCK_TIMEOUT_DEFAULT_MS;
	rc = open_handed(reg, err);
	if (rc != -ENOENT)
		return rc;
	rc = -ENOENT;
	if (path == NULL || path[0] == '\0') {
		dirfd = ps_statedir_open(ps_env_secure, dir, sizeof(dir),
					 err ? err->msg : NULL,
					 err ? sizeof(err->msg) : 0);
		if (dirfd < 0)
			return dirfd;
		base = "registry";
		if (strlen(dir) + sizeof("/registry") > sizeof(reg->path)) {
			close(dirfd);
			ps_reg_seterr(err, "state directory path is too long");
			return -ENAMETOOLONG;
		}
		memcpy(reg->path, dir, strlen(dir));
		memcpy(reg->path + strlen(dir), "/registry",
		       sizeof("/registry"));
	} else {
		if (strlen(path) >= sizeof(reg->path)) {
			ps_reg_seterr(err, "registry path is too long");
			return -ENAMETOOLONG;
		}
		snprintf(reg->path, sizeof(reg->path), "%s", path);
		dirfd = ps_open_parent(reg->path, &base);
		if (dirfd < 0) {
			ps_reg_seterr(err, "cannot open the folder of %s: %s",
				      path, strerror(-dirfd));
			return dirfd;
		}
	}
	for (int i = 0; i < OPEN_TRIES && rc == -ENOENT; i++) {
		rc = open_existing(reg, dirfd, base, reg->path, err);
		if (rc != -ENOENT)
			break;
		rc = create_registry(reg, dirfd, base, reg->path, err);
		if (rc == -EEXIST)
			rc = -ENOENT; /* someone else won: open theirs */
	}
	close(dirfd);
	if (rc == -ENOENT)
		ps_reg_seterr(err, "%s keeps disappearing while being opened",
			      reg->path);
	if (rc)
		return rc;
	set_tables(reg);
	return 0;
}

/* ------------------------------------------------------ transactions */

/*
 * Each change to one lease is bracketed by tx_begin/tx_end. The fences
 * keep the compiler (and weakly ordered CPUs) from moving the change
 * before the undo record is published, or the undo record's retirement
 * before the change: a process killed at any instruction leaves either
 * no undo record (the change is complete or not begun) or a complete one.
 */
static void tx_begin(struct ps_registry *reg, uint32_t port)
{
	struct ps_reg_header *h = reg->hdr;

	h->seq++;
	memcpy(&h->undo, &reg->leases[port], sizeof(h->undo));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&h->undo_port, port + 1, __ATOMIC_SEQ_CST);
}

static void tx_end(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&h->undo_port, 0, __ATOMIC_SEQ_CST);
	h->seq++;
}

unsigned long ps_registry_unlink_steps;

/* Removes port from the chain starting at *head (linked through off). */
static void chain_unlink(struct ps_registry *reg, uint32_t *head, size_t off,
			 uint32_t port)
{
	uint32_t *link = head;

	for (uint32_t n = 0; n < PS_REG_NPORTS && *link; n++) {
		uint32_t p = *link;

		ps_registry_unlink_steps++;

		if (p >= PS_REG_NPORTS)
			break; /* corrupt: repair will rebuild */
		uint32_t *next = (uint32_t *)((char *)&reg->leases[p] + off);

		if (p == port) {
			*link = *next;
			*next = 0;
			return;
		}
		link = next;
	}
}

static void link_lease(struct ps_registry *reg, uint32_t port)
{
	struct ps_lease *l = &reg->leases[port];

	if (l->kind == PS_KIND_GROUP) {
		uint32_t *hb =
			&reg->hbuckets[ps_reg_hbucket(l->ghash, l->vport)];

		l->hnext = *hb;
		*hb = port;
	} else {
		l->hnext = 0;
	}
	uint32_t *gb = &reg->gbuckets[ps_reg_gbucket(l->ghash)];

	l->gnext = *gb;
	*gb = port;
}

static void unlink_lease(struct ps_registry *reg, uint32_t port)
{
	struct ps_lease *l = &reg->leases[port];

	if (l->kind == PS_KIND_GROUP)
		chain_unlink(reg,
			     &reg->hbuckets[ps_reg_hbucket(l->ghash, l->vport)],
			     offsetof(struct ps_lease, hnext), port);
	chain_unlink(reg, &reg->gbuckets[ps_reg_gbucket(l->ghash)],
		     offsetof(struct ps_lease, gnext), port);
}

void ps_reg_insert_lease(struct ps_registry *reg, uint32_t port,
			 const struct ps_lease *tmpl)
{
	struct ps_lease *l = &reg->leases[port];

	tx_begin(reg, port);
	*l = *tmpl;
	/* tmpl may be a copy of a used lease: not committed until the end. */
	l->state = PS_LEASE_FREE;
	l->group[PS_GROUP_MAX] = '\0';
	l->ghash = ps_group_hash(l->group);
	if (l->created_ns == 0)
		l->created_ns = ps_now_ns();
	l->hnext = l->gnext = 0;
	link_lease(reg, port);
	reg->hdr->nleases++;
	/* The state word is the lease's commit mark: written last. */
	__atomic_store_n(&l->state, PS_LEASE_USED, __ATOMIC_RELEASE);
	tx_end(reg);
}

void ps_registry_free(struct ps_registry *reg, struct ps_lease *l)
{
	uint32_t port = ps_registry_port(reg, l);

	if (l->state != PS_LEASE_USED)
		return;
	tx_begin(reg, port);
	unlink_lease(reg, port);
	memset(l, 0, sizeof(*l));
	reg->hdr->nleases--;
	tx_end(reg);
	ps_claim_drop(reg, (uint16_t)port);
}

int ps_registry_update(struct ps_registry *reg, struct ps_lease *l,
		       const struct ps_lease *nl)
{
	uint32_t port = ps_registry_port(reg, l);
	uint32_t ghash = ps_group_hash(nl->group);
	bool relink = ghash != l->ghash || nl->vport != l->vport ||
		      nl->kind != l->kind || strcmp(nl->group, l->group) != 0;

	tx_begin(reg, port);
	if (relink)
		unlink_lease(reg, port);
	uint32_t hnext = l->hnext, gnext = l->gnext;

	*l = *nl;
	l->group[PS_GROUP_MAX] = '\0';
	l->ghash = ghash;
	l->state = PS_LEASE_USED;
	if (relink) {
		l->hnext = l->gnext = 0;
		link_lease(reg, port);
	} else {
		l->hnext = hnext;
		l->gnext = gnext;
	}
	tx_end(reg);
	return 0;
}

/* ------------------------------------------------------------ repair */

static bool group_ok(const char *g, bool may_be_empty)
{
	size_t n = strnlen(g, PS_GROUP_MAX + 1);

	if (n > PS_GROUP_MAX)
		return false;
	if (n == 0)
		return may_be_empty;
	return ps_group_valid(g);
}

bool ps_reg_lease_ok(const struct ps_lease *l, uint32_t port)
{
	if (port == 0)
		return false;
	if (l->kind == PS_KIND_GROUP)
		return l->vport != 0 && group_ok(l->group, false);
	if (l->kind == PS_KIND_PICK)
		return group_ok(l->group, true);
	return false;
}

/*
 * Brings the table back to a consistent state after a holder of the lock
 * died (lock held, EOWNERDEAD). The dead process's half-done change, if
 * any, is rolled back from the undo record; then every lease is
 * validated (garbage is discarded: it can only come from a writer that
 * broke the protocol) and the derived data (chains, count) is rebuilt.
 */
/*
 * Rebuilds the derived data (chains, count) from the leases, discarding
 * invalid leases (garbage can only come from a writer that broke the
 * protocol). Lock held, sequence word odd. O(table).
 */
static void rebuild(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t n = 0;

	memset(reg->hbuckets, 0, PS_REG_HBUCKETS * sizeof(uint32_t));
	memset(reg->gbuckets, 0, PS_REG_GBUCKETS * sizeof(uint32_t));
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_FREE)
			continue;
		if (l->state != PS_LEASE_USED || !ps_reg_lease_ok(l, p)) {
			memset(l, 0, sizeof(*l));
			continue;
		}
		l->ghash = ps_group_hash(l->group);
		link_lease(reg, p);
		n++;
	}
	h->nleases = n;
	if (h->next_hint >= PS_REG_NPORTS)
		h->next_hint = 0;
}

/*
 * Brings the table back to a consistent state after a holder of the lock
 * died (lock held, EOWNERDEAD). The dead process's half-done change, if
 * any, is rolled back from the undo record; then every lease is
 * validated and the derived data is rebuilt. A holder that died inside
 * a bulk free (below) left freed leases and stale chains: the rebuild
 * is all they need.
 */
static void repair(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t undo = __atomic_load_n(&h->undo_port, __ATOMIC_ACQUIRE);

	/* Lock-free readers (ps_registry_peek) must see a change begin. */
	if (!(h->seq & 1))
		h->seq++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (undo != 0 && undo <= PS_REG_NPORTS)
		memcpy(&reg->leases[undo - 1], &h->undo, sizeof(h->undo));
	h->undo_port = 0;
	rebuild(reg);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	h->seq++; /* even again: the table is consistent */
	h->recoveries++;
}

/*
 * Bulk frees: freeing one lease unlinks it from its chains, a walk of
 * the chain; freeing every lease of a 64k-lease group that way is
 * quadratic (seconds under the lock). A bulk free instead only clears
 * each lease's state word (its commit mark: a lease is freed by one
 * store) and rebuilds the chains once at the end. Meanwhile the sequence
 * word is odd, so lock-free readers go to the lock, and a holder that
 * dies in the middle leaves what repair() handles anyway. The links of
 * a freed lease are kept until the rebuild, so that a walk of a chain
 * (ps_registry_next) can go on past it.
 */
void ps_reg_bulk_free_one(struct ps_registry *reg, struct ps_reg_bulk *b,
			  struct ps_lease *l)
{
	if (l->state != PS_LEASE_USED)
		return;
	if (!b->open) {
		reg->hdr->seq++;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		b->open = true;
	}
	__atomic_store_n(&l->state, PS_LEASE_FREE, __ATOMIC_RELEASE);
	memset((char *)l + offsetof(struct ps_lease, maker), 0,
	       sizeof(*l) - offsetof(struct ps_lease, maker));
	l->vport = 0;
	l->kind = 0;
	l->protos = 0;
	b->n++;
	ps_claim_drop(reg, ps_registry_port(reg, l));
}

void ps_registry_bulk_free(struct ps_registry *reg, struct ps_reg_bulk *b,
			   struct ps_lease *l)
{
	ps_reg_bulk_free_one(reg, b, l);
}

void ps_registry_bulk_end(struct ps_registry *reg, struct ps_reg_bulk *b)
{
	if (!b->open)
		return;
	rebuild(reg);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	reg->hdr->seq++;
	b->open = false;
}

/* ------------------------------------------------- the file under us */

/*
 * Copies len bytes of the mapping at src into dst with a read that cannot
 * fault (PITFALLS 32): where the file was shrunk under the mapping, a
 * plain load raises SIGBUS in the host program, process_vm_readv() of
 * our own memory returns EFAULT. Returns 0, -EIO (the file is shorter
 * than the mapping), or -ENOSYS where the call is not allowed (some
 * seccomp sandboxes): the caller then falls back to fstat.
 */
int ps_reg_copy_in(void *dst, const void *src, size_t len)
{
	struct iovec l = { dst, len };
	struct iovec r = { (void *)(uintptr_t)src, len };
	ssize_t n = process_vm_readv(ps_proc_pid(), &l, 1, &r, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM))
		return -ENOSYS;
	return -EIO;
}

/* Two pieces in one call, as ps_reg_copy_in. */
int ps_reg_copy_in2(void *d1, const void *s1, size_t n1, void *d2,
		    const void *s2, size_t n2)
{
	struct iovec l[2] = { { d1, n1 }, { d2, n2 } };
	struct iovec r[2] = { { (void *)(uintptr_t)s1, n1 },
			      { (void *)(uintptr_t)s2, n2 } };
	ssize_t n = process_vm_readv(ps_proc_pid(), l, 2, r, 2, 0);

	if (n == (ssize_t)(n1 + n2))
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM))
		return -ENOSYS;
	return -EIO;
}

/*
 * Opens the registry's path again after this process lost its
 * descriptor (the host closed it with close_range, or dup2'ed another
 * file over its number: the number is the host's now and is never
 * closed here). The mapping survives either; only the file checks need
 * a descriptor. The file found must be the one mapped. Returns 0 with
 * *st filled, -ESTALE (the path names another file or none), or -errno.
 */
static int reopen(struct ps_registry *reg, int lost, struct stat *st)
{
	int fd = open(reg->path,
		      O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (fstat(fd, st) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	if (st->st_dev != reg->dev || st->st_ino != reg->ino) {
		close(fd);
		return -ESTALE;
	}
	/* Two threads may both have found it lost: one descriptor stays. */
	if (!__atomic_compare_exchange_n(&reg->fd, &lost, fd, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		close(fd);
	return 0;
}

/*
 * The checks before the mapping is touched: the file still covers the
 * whole mapping (a read of its last byte that cannot fault), and it is
 * still the registry (linked, and the descriptor still ours). Returns 0,
 * -EIO (shrunk), -ESTALE (removed or replaced), or -errno.
 */
int ps_reg_file_ok(struct ps_registry *reg)
{
	struct stat st;
	char last;
	int fd = __atomic_load_n(&reg->fd, __ATOMIC_ACQUIRE);
	int rc = ps_reg_copy_in(&last, (char *)reg->hdr + reg->size - 1, 1);

	if (rc == -EIO)
		return rc;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != reg->dev ||
	    st.st_ino != reg->ino) {
		rc = reopen(reg, fd, &st);
		if (rc)
			return rc;
	}
	if ((uint64_t)st.st_size < reg->size)
		return -EIO;
	if (st.st_nlink == 0)
		return -ESTALE;
	return 0;
}

/* Whether the mapping still holds a registry (it can be overwritten). */
static int image_ok(struct ps_registry *reg)
{
	uint64_t magic;
	int rc = ps_reg_copy_in(&magic, &reg->hdr->magic, sizeof(magic));

	if (rc == -EIO)
		return rc;
	if (rc == -ENOSYS)
		magic = __atomic_load_n(&reg->hdr->magic, __ATOMIC_RELAXED);
	return magic == PS_REG_MAGIC ? 0 : -EUCLEAN;
}

static int wait_ok(void *arg)
{
	struct ps_registry *reg = arg;
	int rc = ps_reg_file_ok(reg);

	return rc ? rc : image_ok(reg);
}

/* ---------------------------------------------------------- locking */

int ps_registry_lock(struct ps_registry *reg, struct ps_reg_guard *g)
{
	pthread_mutex_t *m = &reg->hdr->lock.mutex;
	sigset_t all;
	int rc;

	memset(&g->holder, 0, sizeof(g->holder));
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &g->oldmask);
	/*
	 * A vfork or raw clone child would lock with its parent's thread
	 * id and no robust list: killed inside, it would leave the lock
	 * held for good (PITFALLS 34). It is refused before it touches it.
	 */
	if (!ps_reglock_context_ok()) {
		rc = -ENOLCK;
		goto fail;
	}
	/*
	 * A registry shrunk under us would turn the next access into a
	 * SIGBUS in the host program; one removed would leave us alone on
	 * an orphan. Both are refused before the mapping is touched, and
	 * a mutex that is garbage before pthread sees it.
	 */
	rc = wait_ok(reg);
	if (rc == 0)
		rc = ps_reglock_validate(m, NULL, 0);
	if (rc)
		goto fail;
	rc = ps_reglock_acquire(m, &reg->hdr->lock_gen, &g->oldmask,
				reg->lock_timeout_ms ?
					reg->lock_timeout_ms :
					PS_LOCK_TIMEOUT_DEFAULT_MS,
				reg->dev, reg->ino, wait_ok, reg, &g->holder);
	if (rc == -ETIMEDOUT)
		reg->last_holder = g->holder;
	if (rc < 0)
		goto fail;
	/*
	 * The wait may have been long: the file is checked again before
	 * the table is touched. A table shrunk meanwhile cannot be repaired
	 * (that would be the SIGBUS avoided here), but the mutex is still
	 * made consistent rather than left to become ENOTRECOVERABLE; every
	 * process refuses the short file from now on, here and when opening.
	 */
	if (ps_reg_file_ok(reg) == -EIO) {
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(m);
		pthread_mutex_unlock(m);
		rc = -EIO;
		goto fail;
	}
	__atomic_fetch_add(&reg->hdr->lock_gen, 1, __ATOMIC_RELAXED);
	if (rc == EOWNERDEAD) {
		repair(reg);
		rc = -pthread_mutex_consistent(m);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
	return rc;
}

void ps_registry_unlock(struct ps_registry *reg, struct ps_reg_guard *g)
{
	pthread_mutex_unlock(&reg->hdr->lock.mutex);
	pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
}

const char *ps_registry_strerror(const struct ps_registry *reg,
				 const struct ps_reg_guard *g, int rc,
				 char *buf, size_t len)
{
	char who[160];

	switch (rc) {
	case -ETIMEDOUT:
		ps_reglock_describe(g != NULL ? &g->holder : &reg->last_holder,
				    who, sizeof(who));
		snprintf(buf, len,
			 "its lock is held by %s; gave up after "
			 "%u.%03u s without progress (PORTSHIM_LOCK_TIMEOUT)",
			 who, reg->lock_timeout_ms / 1000,
			 reg->lock_timeout_ms % 1000);
		break;
	case -ENOLCK:
		snprintf(buf, len,
			 "this process cannot take its lock: it "
			 "was made by vfork() or a raw clone() and has no "
			 "robust-futex list, so its death would leave the "
			 "lock held");
		break;
	case -EIO:
		snprintf(buf, len,
			 "the file was truncated under this "
			 "process; run 'portshim gc --reset'");
		break;
	case -ESTALE:
		snprintf(buf, len,
			 "the file was removed or replaced after "
			 "this process opened it");
		break;
	case -EUCLEAN:
		snprintf(buf, len,
			 "the file is corrupt (its lock or its "
			 "header); run 'portshim gc --reset'");
		break;
	case -ENOTRECOVERABLE:
		snprintf(buf, len,
			 "its lock is not recoverable; run "
			 "'portshim gc --reset'");
		break;
	default:
		snprintf(buf, len, "%s", strerror(-rc));
		break;
	}
	return buf;
}

struct ps_lease *ps_registry_at(struct ps_registry *reg, uint16_t real)
{
	struct ps_lease *l = &reg->leases[real];

	return l->state == PS_LEASE_USED ? l : NULL;
}

struct ps_lease *ps_registry_find(struct ps_registry *reg, const char *group,
				  uint16_t vport)
{
	uint32_t gh = ps_group_hash(group);
	uint32_t p = reg->hbuckets[ps_reg_hbucket(gh, vport)];

	/* Bounded: shared memory is never trusted to be acyclic. */
	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_USED && l->kind == PS_KIND_GROUP &&
		    l->vport == vport && l->ghash == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0)
			return l;
		p = l->hnext;
	}
	return NULL;
}

size_t ps_registry_each_group(struct ps_registry *reg, const char *group,
			      void (*fn)(void *arg, struct ps_lease *l),
			      void *arg)
{
	uint32_t gh = ps_group_hash(group);
	uint32_t p = reg->gbuckets[ps_reg_gbucket(gh)];
	size_t count = 0;

	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		p = l->gnext;
		if (l->state == PS_LEASE_USED && l->ghash == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0) {
			if (fn)
				fn(arg, l);
			count++;
		}
	}
	return count;
}

struct ps_lease *ps_registry_next(struct ps_registry *reg,
				  struct ps_reg_cursor *cur)
{
	while (cur->bucket <= PS_REG_GBUCKETS) {
		uint32_t p = cur->port;
		struct ps_lease *l;

		if (p == 0 || p >= PS_REG_NPORTS ||
		    cur->steps >= PS_REG_NPORTS) {
			/* This chain is done (or corrupt): the next one. */
			if (cur->bucket == PS_REG_GBUCKETS) {
				cur->bucket++;
				break;
			}
			cur->port = reg->gbuckets[cur->bucket++];
			cur->steps = 0;
			continue;
		}
		l = &reg->leases[p];
		/* Read before the caller may free l, which unlinks it. */
		cur->port = l->gnext;
		cur->steps++;
		if (l->state == PS_LEASE_USED)
			return l;
	}
	return NULL;
}

size_t ps_registry_release_group(struct ps_registry *reg, const char *group)
{
	uint32_t gh = ps_group_hash(group);
	uint32_t p = reg->gbuckets[ps_reg_gbucket(gh)];
	struct ps_reg_bulk bulk = { false, 0 };
	size_t count = 0;

	/* A bulk free keeps the links: one walk of the chain. */
	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		p = l->gnext;
		if (l->state == PS_LEASE_USED && l->ghash == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0) {
			/* A few are cheaper one by one than a rebuild. */
			if (count < 16 && !bulk.open)
				ps_registry_free(reg, l);
			else
				ps_reg_bulk_free_one(reg, &bulk, l);
			count++;
		}
	}
	ps_registry_bulk_end(reg, &bulk);
	return count;
}
