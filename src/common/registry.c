/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the shared lease registry: creation, validation, the robust
 * lock with repair, and the lease table.
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
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "statedir.h"

_Static_assert(sizeof(struct ps_ident) == 16, "ps_ident layout");
_Static_assert(sizeof(struct ps_lease) == 136, "ps_lease layout");
_Static_assert(offsetof(struct ps_lease, maker) == 24, "ps_lease.maker");
_Static_assert(offsetof(struct ps_lease, group) == 72, "ps_lease.group");
_Static_assert(offsetof(struct ps_reg_header, boot_id) == 80, "hdr.boot_id");
_Static_assert(offsetof(struct ps_reg_header, undo) == 152, "hdr.undo");
_Static_assert(offsetof(struct ps_reg_header, lock) == 1024, "hdr.lock");
_Static_assert(sizeof(pthread_mutex_t) <= 128, "mutex fits its slot");
_Static_assert(sizeof(struct ps_reg_header) <= PS_REG_HEADER_SIZE,
	       "header fits its page");
_Static_assert((PS_REG_HBUCKETS & (PS_REG_HBUCKETS - 1)) == 0, "pow2");
_Static_assert((PS_REG_GBUCKETS & (PS_REG_GBUCKETS - 1)) == 0, "pow2");

#define HBUCKETS_OFF ((uint64_t)PS_REG_HEADER_SIZE)
#define GBUCKETS_OFF (HBUCKETS_OFF + PS_REG_HBUCKETS * sizeof(uint32_t))
#define LEASES_OFF (GBUCKETS_OFF + PS_REG_GBUCKETS * sizeof(uint32_t))
#define FILE_SIZE (LEASES_OFF + (uint64_t)PS_REG_NPORTS * \
		   sizeof(struct ps_lease))

/* Creation attempts before giving up on a registry that keeps changing. */
#define OPEN_TRIES 8

size_t ps_registry_file_size(void)
{
	return (size_t)FILE_SIZE;
}

static void seterr(struct ps_reg_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seterr(struct ps_reg_error *err, const char *fmt, ...)
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

uint32_t ps_group_hash(const char *group)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)group; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h ? h : 1;
}

static uint32_t hbucket(uint32_t ghash, uint16_t vport)
{
	uint32_t h = ghash ^ ((uint32_t)vport * 0x9e3779b1u);

	h ^= h >> 15;
	return h & (PS_REG_HBUCKETS - 1);
}

static uint32_t gbucket(uint32_t ghash)
{
	return (ghash ^ (ghash >> 13)) & (PS_REG_GBUCKETS - 1);
}

/* ------------------------------------------------------------ identity */

static int read_small(const char *path, char *buf, size_t len)
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
	if (read_small("/proc/sys/kernel/random/boot_id", buf, sizeof(buf)))
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

int ps_registry_check_header(const void *image, size_t len,
			     uint64_t file_size, const char *bootid,
			     uint64_t pidns, struct ps_reg_error *err)
{
	struct ps_reg_header h;

	if (len < sizeof(h)) {
		seterr(err, "is %zu bytes, shorter than a registry header",
		       len);
		return -EUCLEAN;
	}
	memcpy(&h, image, sizeof(h));
	if (h.magic != PS_REG_MAGIC) {
		seterr(err, "is not a portshim registry (bad magic)");
		return -EUCLEAN;
	}
	if (h.version != PS_REG_VERSION) {
		seterr(err, "has layout version %u, this portshim uses %u",
		       h.version, PS_REG_VERSION);
		return -EPROTO;
	}
	if (h.abi_word != sizeof(long) ||
	    h.abi_mutex != sizeof(pthread_mutex_t)) {
		seterr(err, "was made by a %u-bit program (mutex of %u bytes);"
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
		seterr(err, "has an inconsistent layout in its header");
		return -EUCLEAN;
	}
	if (file_size != FILE_SIZE) {
		seterr(err, "is %llu bytes, expected %llu",
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
		seterr(err, "has a malformed boot id");
		return -EUCLEAN;
	}
	if (bootid != NULL && strcmp(h.boot_id, bootid) != 0) {
		seterr(err, "was made before the last reboot (boot id %.36s)",
		       h.boot_id);
		return -ESTALE;
	}
	if (pidns != 0 && h.pidns != pidns) {
		seterr(err, "belongs to another PID namespace (%llu, this is"
		       " %llu): processes there cannot share its lock",
		       (unsigned long long)h.pidns,
		       (unsigned long long)pidns);
		return -EXDEV;
	}
	return 0;
}

/* ----------------------------------------------------------- creation */

static int init_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	rc = pthread_mutexattr_init(&a);
	if (rc)
		return -rc;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

/*
 * Creates a complete registry under a temporary name and moves it to its
 * final name without ever replacing an existing one. Returns 0 when this
 * process's file became the registry (mapped into reg), -EEXIST when
 * another process won the race, or -errno.
 */
static int create_registry(struct ps_registry *reg, int dirfd,
			   const char *base, const char *shown,
			   struct ps_reg_error *err)
{
	static atomic_uint counter;
	char tmp[256];
	void *map = MAP_FAILED;
	struct ps_reg_header *h;
	int fd = -1;
	int rc;

	for (int i = 0; i < OPEN_TRIES; i++) {
		snprintf(tmp, sizeof(tmp), ".%s.tmp.%d.%u", base,
			 (int)getpid(), atomic_fetch_add(&counter, 1));
		fd = openat(dirfd, tmp,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = -errno;
		seterr(err, "cannot create a registry next to %s: %s", shown,
		       strerror(-rc));
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
		seterr(err, "cannot chmod 600 a registry next to %s: %s",
		       shown, strerror(-rc));
		goto fail;
	}
	/*
	 * posix_fallocate turns a later SIGBUS on a full tmpfs into ENOSPC
	 * now, while nobody depends on the file yet.
	 */
	rc = -posix_fallocate(fd, 0, (off_t)FILE_SIZE);
	if (rc) {
		seterr(err, "cannot allocate %llu bytes for %s: %s",
		       (unsigned long long)FILE_SIZE, shown, strerror(-rc));
		goto fail;
	}
	map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		seterr(err, "cannot map %s: %s", shown, strerror(-rc));
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
	rc = init_mutex(&h->lock.mutex);
	if (rc) {
		seterr(err, "cannot initialise a robust process-shared mutex"
		       " in %s: %s (robust futexes unavailable here?)", shown,
		       strerror(-rc));
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
			seterr(err, "cannot publish %s: %s", shown,
			       strerror(-rc));
		unlinkat(dirfd, tmp, 0);
		/* Never locked by anyone: unmapping it is safe. */
		munmap(map, FILE_SIZE);
		close(fd);
		return rc;
	}
	reg->hdr = map;
	reg->fd = fd;
	reg->size = FILE_SIZE;
	reg->created = true;
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, FILE_SIZE);
	close(fd);
	unlinkat(dirfd, tmp, 0);
	return rc;
}

/*
 * Opens and validates an existing registry. Returns 0, -ENOENT if it
 * does not exist, or -errno with a reason.
 */
static int open_existing(struct ps_registry *reg, int dirfd, const char *base,
			 const char *shown, struct ps_reg_error *err)
{
	char bootid[40];
	struct stat st;
	void *map;
	int fd;
	int rc;

	fd = openat(dirfd, base, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return rc;
		if (rc == -ELOOP)
			seterr(err, "%s is a symbolic link; refusing to follow"
			       " it (remove it)", shown);
		else if (rc == -EISDIR)
			seterr(err, "%s is a directory, not a registry (remove"
			       " it)", shown);
		else
			seterr(err, "cannot open %s: %s", shown,
			       strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		seterr(err, "cannot stat %s: %s", shown, strerror(-rc));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		seterr(err, "%s is not a regular file (remove it)", shown);
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		rc = -EPERM;
		seterr(err, "%s belongs to uid %u, not to you (uid %u); remove"
		       " it or set PORTSHIM_REGISTRY", shown,
		       (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	if (st.st_mode & 077) {
		rc = -EPERM;
		seterr(err, "%s is accessible to others (mode %04o), so they"
		       " could redirect your connections; run"
		       " 'portshim gc --reset'", shown,
		       (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_nlink != 1) {
		rc = -EPERM;
		seterr(err, "%s has %lu hard links; run 'portshim gc --reset'",
		       shown, (unsigned long)st.st_nlink);
		goto fail;
	}
	if ((uint64_t)st.st_size != FILE_SIZE) {
		rc = -EUCLEAN;
		seterr(err, "%s is %lld bytes, a registry is %llu (truncated"
		       " or not a registry); run 'portshim gc --reset'",
		       shown, (long long)st.st_size,
		       (unsigned long long)FILE_SIZE);
		goto fail;
	}
	/* Map no more than the file holds: checked just above. */
	map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		seterr(err, "cannot map %s: %s", shown, strerror(-rc));
		goto fail;
	}
	boot_id(bootid);
	rc = ps_registry_check_header(map, FILE_SIZE, (uint64_t)st.st_size,
				      bootid[0] ? bootid : NULL,
				      pidns_inode(), err);
	if (rc) {
		struct ps_reg_error why = { "" };

		/* err may be NULL: the reason is then computed and dropped. */
		if (err != NULL)
			why = *err;
		seterr(err, "%s %s; run 'portshim gc --reset'", shown,
		       why.msg);
		/* Not locked, never will be: unmapping is safe. */
		munmap(map, FILE_SIZE);
		goto fail;
	}
	reg->hdr = map;
	reg->fd = fd;
	reg->size = FILE_SIZE;
	return 0;
fail:
	close(fd);
	return rc;
}

static const char *env_secure(const char *name)
{
	return secure_getenv(name);
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
	if (path == NULL || path[0] == '\0') {
		dirfd = ps_statedir_open(env_secure, dir, sizeof(dir),
					 err ? err->msg : NULL,
					 err ? sizeof(err->msg) : 0);
		if (dirfd < 0)
			return dirfd;
		base = "registry";
		if (strlen(dir) + sizeof("/registry") > sizeof(reg->path)) {
			close(dirfd);
			seterr(err, "state directory path is too long");
			return -ENAMETOOLONG;
		}
		memcpy(reg->path, dir, strlen(dir));
		memcpy(reg->path + strlen(dir), "/registry",
		       sizeof("/registry"));
	} else {
		if (strlen(path) >= sizeof(reg->path)) {
			seterr(err, "registry path is too long");
			return -ENAMETOOLONG;
		}
		snprintf(reg->path, sizeof(reg->path), "%s", path);
		dirfd = ps_open_parent(reg->path, &base);
		if (dirfd < 0) {
			seterr(err, "cannot open the folder of %s: %s", path,
			       strerror(-dirfd));
			return dirfd;
		}
	}
	for (int i = 0; i < OPEN_TRIES && rc == -ENOENT; i++) {
		rc = open_existing(reg, dirfd, base, reg->path, err);
		if (rc != -ENOENT)
			break;
		rc = create_registry(reg, dirfd, base, reg->path, err);
		if (rc == -EEXIST)
			rc = -ENOENT;	/* someone else won: open theirs */
	}
	close(dirfd);
	if (rc == -ENOENT)
		seterr(err, "%s keeps disappearing while being opened",
		       reg->path);
	if (rc)
		return rc;
	reg->hbuckets = (uint32_t *)((char *)reg->hdr + HBUCKETS_OFF);
	reg->gbuckets = (uint32_t *)((char *)reg->hdr + GBUCKETS_OFF);
	reg->leases = (struct ps_lease *)((char *)reg->hdr + LEASES_OFF);
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

/* Removes port from the chain starting at *head (linked through off). */
static void chain_unlink(struct ps_registry *reg, uint32_t *head,
			 size_t off, uint32_t port)
{
	uint32_t *link = head;

	for (uint32_t n = 0; n < PS_REG_NPORTS && *link; n++) {
		uint32_t p = *link;

		if (p >= PS_REG_NPORTS)
			break;	/* corrupt: repair will rebuild */
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
		uint32_t *hb = &reg->hbuckets[hbucket(l->ghash, l->vport)];

		l->hnext = *hb;
		*hb = port;
	} else {
		l->hnext = 0;
	}
	uint32_t *gb = &reg->gbuckets[gbucket(l->ghash)];

	l->gnext = *gb;
	*gb = port;
}

static void unlink_lease(struct ps_registry *reg, uint32_t port)
{
	struct ps_lease *l = &reg->leases[port];

	if (l->kind == PS_KIND_GROUP)
		chain_unlink(reg, &reg->hbuckets[hbucket(l->ghash, l->vport)],
			     offsetof(struct ps_lease, hnext), port);
	chain_unlink(reg, &reg->gbuckets[gbucket(l->ghash)],
		     offsetof(struct ps_lease, gnext), port);
}

static void insert_lease(struct ps_registry *reg, uint32_t port,
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
}

int ps_registry_update(struct ps_registry *reg, struct ps_lease *l,
		       const struct ps_lease *nl)
{
	uint32_t port = ps_registry_port(reg, l);
	uint32_t ghash = ps_group_hash(nl->group);
	bool relink = ghash != l->ghash || nl->vport != l->vport ||
		      nl->kind != l->kind ||
		      strcmp(nl->group, l->group) != 0;

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

static bool lease_ok(const struct ps_lease *l, uint32_t port)
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
static void repair(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t undo = __atomic_load_n(&h->undo_port, __ATOMIC_ACQUIRE);
	uint32_t n = 0;

	/* Lock-free readers (ps_registry_peek) must see a change begin. */
	if (!(h->seq & 1))
		h->seq++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (undo != 0 && undo <= PS_REG_NPORTS)
		memcpy(&reg->leases[undo - 1], &h->undo, sizeof(h->undo));
	h->undo_port = 0;
	memset(reg->hbuckets, 0, PS_REG_HBUCKETS * sizeof(uint32_t));
	memset(reg->gbuckets, 0, PS_REG_GBUCKETS * sizeof(uint32_t));
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_FREE)
			continue;
		if (l->state != PS_LEASE_USED || !lease_ok(l, p)) {
			memset(l, 0, sizeof(*l));
			continue;
		}
		l->ghash = ps_group_hash(l->group);
		link_lease(reg, p);
		n++;
	}
	h->nleases = n;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	h->seq++;	/* even again: the table is consistent */
	if (h->next_hint >= PS_REG_NPORTS)
		h->next_hint = 0;
	h->recoveries++;
}

/* ---------------------------------------------------------- locking */

int ps_registry_lock(struct ps_registry *reg, struct ps_reg_guard *g)
{
	sigset_t all;
	struct stat st;
	bool waited;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &g->oldmask);
	/*
	 * A registry shrunk under us would turn the next access into a
	 * SIGBUS in the host program; one removed would leave us alone on
	 * an orphan. Both are refused before the mapping is touched.
	 */
	if (fstat(reg->fd, &st) != 0 || (uint64_t)st.st_size < reg->size) {
		rc = -EIO;
		goto fail;
	}
	if (st.st_nlink == 0) {
		rc = -ESTALE;
		goto fail;
	}
	/*
	 * Uncontended (the common case), trylock takes the lock at once and
	 * the check above is still fresh, which saves the second fstat on
	 * every call. This is not a probe: trylock takes the lock on
	 * EOWNERDEAD exactly as lock does, and it is handled the same way.
	 * EBUSY means someone holds it (or we do: lock then says EDEADLK).
	 */
	rc = pthread_mutex_trylock(&reg->hdr->lock.mutex);
	waited = rc == EBUSY;
	if (waited)
		rc = pthread_mutex_lock(&reg->hdr->lock.mutex);
	if (rc != 0 && rc != EOWNERDEAD) {
		rc = -rc;
		goto fail;
	}
	/*
	 * The wait may have been long: the size is checked again before the
	 * table is touched. A table shrunk meanwhile cannot be repaired (that
	 * would be the SIGBUS avoided here), but the mutex is still made
	 * consistent rather than left to become ENOTRECOVERABLE; every
	 * process refuses the short file from now on, here and when opening.
	 */
	if ((waited || rc == EOWNERDEAD) &&
	    (fstat(reg->fd, &st) != 0 || (uint64_t)st.st_size < reg->size)) {
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&reg->hdr->lock.mutex);
		pthread_mutex_unlock(&reg->hdr->lock.mutex);
		rc = -EIO;
		goto fail;
	}
	if (rc == EOWNERDEAD) {
		repair(reg);
		rc = pthread_mutex_consistent(&reg->hdr->lock.mutex);
	}
	if (rc) {
		rc = -rc;
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

/* ------------------------------------------------------------ lookup */

/* How many times a lock-free reader retries before taking the lock. */
#define PEEK_TRIES 4

/*
 * One lock-free walk of the (group, vport) chain. Every word that steers
 * the walk is read once, atomically, into a local and checked before it
 * is used as an index, so a chain rewritten under our feet can give a
 * wrong answer (which the caller's sequence check throws away) but never
 * an access outside the table.
 */
static uint32_t peek_chain(struct ps_registry *reg, const char *group,
			   uint32_t gh, uint16_t vport)
{
	uint32_t p = __atomic_load_n(&reg->hbuckets[hbucket(gh, vport)],
				     __ATOMIC_RELAXED);

	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) ==
			    PS_LEASE_USED &&
		    __atomic_load_n(&l->kind, __ATOMIC_RELAXED) ==
			    PS_KIND_GROUP &&
		    __atomic_load_n(&l->vport, __ATOMIC_RELAXED) == vport &&
		    __atomic_load_n(&l->ghash, __ATOMIC_RELAXED) == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0)
			return p;
		p = __atomic_load_n(&l->hnext, __ATOMIC_RELAXED);
	}
	return 0;
}

/* The lock's file checks, for the same reasons (SIGBUS, orphan). */
static int peek_file_ok(struct ps_registry *reg)
{
	struct stat st;

	if (fstat(reg->fd, &st) != 0 || (uint64_t)st.st_size < reg->size)
		return -EIO;
	if (st.st_nlink == 0)
		return -ESTALE;
	return 0;
}

/*
 * Why a reader may skip the lock: every change to the table is made under
 * the lock between two increments of the header's sequence word (tx_begin
 * and tx_end; repair too), which is odd while a change is under way. A
 * reader that sees the same even value before and after its walk saw no
 * change at all. Readers never write, so they cannot leave anything
 * half-done, and they hold nothing that a signal handler could wait for.
 */
int ps_registry_peek_lease(struct ps_registry *reg, const char *group,
			   uint16_t vport, struct ps_reg_glance *out)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t gh = ps_group_hash(group);
	int rc = peek_file_ok(reg);

	if (rc)
		return rc;
	for (int i = 0; i < PEEK_TRIES; i++) {
		uint64_t s1 = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
		struct ps_lease *l;
		uint32_t p;

		if (s1 & 1)
			continue;
		p = peek_chain(reg, group, gh, vport);
		if (p != 0) {
			l = &reg->leases[p];
			out->protos = __atomic_load_n(&l->protos,
						      __ATOMIC_RELAXED);
			out->maker.pid = __atomic_load_n(&l->maker.pid,
							 __ATOMIC_RELAXED);
			out->maker.pad = 0;
			out->maker.start = __atomic_load_n(&l->maker.start,
							   __ATOMIC_RELAXED);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->seq, __ATOMIC_RELAXED) != s1)
			continue;
		if (p == 0)
			return -ENOENT;
		out->real = (uint16_t)p;
		out->seq = s1;
		return 0;
	}
	return -EAGAIN;
}

int ps_registry_peek_at(struct ps_registry *reg, const char *group,
			uint16_t real, uint16_t *vport)
{
	struct ps_reg_header *h = reg->hdr;
	struct ps_lease *l = &reg->leases[real];
	uint32_t gh = ps_group_hash(group);
	int rc = peek_file_ok(reg);

	if (rc)
		return rc;
	for (int i = 0; i < PEEK_TRIES; i++) {
		uint64_t s1 = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
		bool ours;
		uint16_t v;

		if (s1 & 1)
			continue;
		ours = __atomic_load_n(&l->state, __ATOMIC_RELAXED) ==
			       PS_LEASE_USED &&
		       __atomic_load_n(&l->kind, __ATOMIC_RELAXED) ==
			       PS_KIND_GROUP &&
		       __atomic_load_n(&l->ghash, __ATOMIC_RELAXED) == gh &&
		       strncmp(l->group, group, sizeof(l->group)) == 0;
		v = __atomic_load_n(&l->vport, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->seq, __ATOMIC_RELAXED) != s1)
			continue;
		if (!ours)
			return -ENOENT;
		*vport = v;
		return 0;
	}
	return -EAGAIN;
}

int ps_registry_peek(struct ps_registry *reg, const char *group,
		     uint16_t vport, uint16_t *real)
{
	struct ps_reg_glance gl;
	int rc = ps_registry_peek_lease(reg, group, vport, &gl);

	if (rc == 0)
		*real = gl.real;
	return rc;
}

bool ps_registry_unchanged(const struct ps_registry *reg, uint64_t seq)
{
	/* Orders the caller's earlier reads and system calls before it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&reg->hdr->seq, __ATOMIC_RELAXED) == seq;
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
	uint32_t p = reg->hbuckets[hbucket(gh, vport)];

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
	uint32_t p = reg->gbuckets[gbucket(gh)];
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
	size_t count = 0;

	/* Freeing unlinks from the chain being walked: restart each time. */
	for (;;) {
		uint32_t p = reg->gbuckets[gbucket(gh)];
		struct ps_lease *victim = NULL;

		for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS &&
		     n < PS_REG_NPORTS; n++) {
			struct ps_lease *l = &reg->leases[p];

			if (l->state == PS_LEASE_USED && l->ghash == gh &&
			    strncmp(l->group, group, sizeof(l->group)) == 0) {
				victim = l;
				break;
			}
			p = l->gnext;
		}
		if (victim == NULL)
			return count;
		ps_registry_free(reg, victim);
		count++;
	}
}

/* ------------------------------------------------------- reclaiming */

bool ps_lease_dead(const struct ps_lease *l, uint64_t now_ns)
{
	if (l->expires_ns != 0 && now_ns >= l->expires_ns)
		return true;
	return !ps_proc_alive(&l->holder);
}

size_t ps_registry_gc(struct ps_registry *reg, bool dry_run,
		      void (*fn)(void *arg, const struct ps_lease *l,
				 uint16_t real),
		      void *arg)
{
	uint64_t now = ps_now_ns();
	/* Leases of one group share a holder: remember the last answer. */
	struct ps_ident last = { 0 };
	bool last_dead = false;
	size_t count = 0;

	for (uint32_t p = 1; p < PS_REG_NPORTS; p++) {
		struct ps_lease *l = &reg->leases[p];
		bool dead;

		if (l->state != PS_LEASE_USED)
			continue;
		if (l->expires_ns != 0 && now >= l->expires_ns) {
			dead = true;
		} else if (l->holder.pid == last.pid &&
			   l->holder.start == last.start && last.pid != 0) {
			dead = last_dead;
		} else {
			dead = !ps_proc_alive(&l->holder);
			last = l->holder;
			last_dead = dead;
		}
		if (!dead)
			continue;
		if (fn)
			fn(arg, l, (uint16_t)p);
		if (!dry_run)
			ps_registry_free(reg, l);
		count++;
	}
	return count;
}

/* ------------------------------------------------------- allocation */

static bool bit_set(const uint8_t *map, uint32_t p)
{
	return map != NULL && ((map[p >> 3] >> (p & 7)) & 1);
}

int ps_registry_alloc(struct ps_registry *reg, const struct ps_lease *tmpl,
		      uint16_t lo, uint16_t hi, const uint8_t *reserved,
		      ps_try_bind_fn try_bind, void *arg, uint16_t *real)
{
	uint32_t n;
	uint32_t start;

	if (lo == 0)
		lo = 1;
	if (hi < lo)
		return -EINVAL;
	n = (uint32_t)hi - lo + 1;
	for (int pass = 0; pass < 2; pass++) {
		start = reg->hdr->next_hint;
		if (start < lo || start > hi)
			start = lo;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t p = lo + (start - lo + i) % n;
			int rc;

			if (reg->leases[p].state != PS_LEASE_FREE ||
			    bit_set(reserved, p))
				continue;
			rc = try_bind ? try_bind(arg, (uint16_t)p) : 0;
			if (rc == -EADDRINUSE)
				continue;	/* a foreign process has it */
			if (rc < 0)
				return rc;
			insert_lease(reg, p, tmpl);
			reg->hdr->next_hint = p + 1 > hi ? lo : p + 1;
			*real = (uint16_t)p;
			return 0;
		}
		/* The range is full: reclaim dead leases once, then retry. */
		if (pass == 0 && ps_registry_gc(reg, false, NULL, NULL) == 0)
			break;
	}
	return -EADDRNOTAVAIL;
}

/* ------------------------------------------------------------ checks */

int ps_registry_check(struct ps_registry *reg, struct ps_reg_error *err)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t used = 0, hlinked = 0, glinked = 0;

	if (h->undo_port != 0) {
		seterr(err, "an undo record is pending for port %u",
		       h->undo_port - 1);
		return -EUCLEAN;
	}
	if (h->seq & 1) {
		seterr(err, "the sequence word is odd (a change is open)");
		return -EUCLEAN;
	}
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		const struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_FREE)
			continue;
		if (l->state != PS_LEASE_USED || !lease_ok(l, p)) {
			seterr(err, "lease at port %u is malformed", p);
			return -EUCLEAN;
		}
		if (l->ghash != ps_group_hash(l->group)) {
			seterr(err, "lease at port %u has a stale hash", p);
			return -EUCLEAN;
		}
		used++;
	}
	if (used != h->nleases) {
		seterr(err, "%u leases in use but the header says %u", used,
		       h->nleases);
		return -EUCLEAN;
	}
	for (uint32_t b = 0; b < PS_REG_HBUCKETS; b++) {
		for (uint32_t p = reg->hbuckets[b], n = 0; p; n++) {
			const struct ps_lease *l = &reg->leases[p];

			if (p >= PS_REG_NPORTS || n > used ||
			    l->state != PS_LEASE_USED ||
			    l->kind != PS_KIND_GROUP ||
			    hbucket(l->ghash, l->vport) != b) {
				seterr(err, "vport chain %u is corrupt at %u",
				       b, p);
				return -EUCLEAN;
			}
			hlinked++;
			p = l->hnext;
		}
	}
	for (uint32_t b = 0; b < PS_REG_GBUCKETS; b++) {
		for (uint32_t p = reg->gbuckets[b], n = 0; p; n++) {
			const struct ps_lease *l = &reg->leases[p];

			if (p >= PS_REG_NPORTS || n > used ||
			    l->state != PS_LEASE_USED ||
			    gbucket(l->ghash) != b) {
				seterr(err, "group chain %u is corrupt at %u",
				       b, p);
				return -EUCLEAN;
			}
			glinked++;
			p = l->gnext;
		}
	}
	if (glinked != used) {
		seterr(err, "%u leases but %u on group chains", used, glinked);
		return -EUCLEAN;
	}
	uint32_t groups = 0;

	for (uint32_t p = 0; p < PS_REG_NPORTS; p++)
		if (reg->leases[p].state == PS_LEASE_USED &&
		    reg->leases[p].kind == PS_KIND_GROUP)
			groups++;
	if (hlinked != groups) {
		seterr(err, "%u group leases but %u on vport chains", groups,
		       hlinked);
		return -EUCLEAN;
	}
	/* (group, vport) is unique. */
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		const struct ps_lease *l = &reg->leases[p];

		if (l->state != PS_LEASE_USED || l->kind != PS_KIND_GROUP)
			continue;
		if (ps_registry_port(reg, ps_registry_find(reg, l->group,
							   l->vport)) != p) {
			seterr(err, "group %s has two leases for port %u",
			       l->group, l->vport);
			return -EUCLEAN;
		}
	}
	return 0;
}

/* ------------------------------------------------- reserved ports */

int ps_reserved_ports_load(uint8_t *map)
{
	char buf[8192];
	char *s;
	int rc;

	memset(map, 0, PS_REG_NPORTS / 8);
	rc = read_small("/proc/sys/net/ipv4/ip_local_reserved_ports", buf,
			sizeof(buf));
	if (rc)
		return rc;
	s = buf;
	while (*s) {
		char *end;
		unsigned long lo, hi;

		while (*s == ',' || *s == ' ' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		lo = strtoul(s, &end, 10);
		if (end == s)
			return -EINVAL;
		hi = lo;
		s = end;
		if (*s == '-') {
			hi = strtoul(s + 1, &end, 10);
			if (end == s + 1)
				return -EINVAL;
			s = end;
		}
		for (unsigned long p = lo; p <= hi && p < PS_REG_NPORTS; p++)
			map[p >> 3] |= (uint8_t)(1u << (p & 7));
	}
	return 0;
}
