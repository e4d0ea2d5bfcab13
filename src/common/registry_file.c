/* SPDX-License-Identifier: MIT */
/*
 * registry_file.c - the registry's file: its layout, the header's check,
 * creating or adopting it (also a descriptor handed down to a process
 * that switched user), and the checks that the file under the mapping is
 * still whole and still ours, with faultless copies out of the mapping
 * and a reopen after the host closed our descriptor. What the other
 * registry files use of it is in registry_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "handoff.h"
#include "proc.h"
#include "reglock.h"
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
 * Maps the whole registry file fd (shown: how messages name it). Returns
 * 0 with *out set, or -errno with err set and *out unchanged.
 */
static int map_file(int fd, const char *shown, struct ps_reg_error *err,
		    void **out)
{
	void *map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
	int rc;

	if (map == MAP_FAILED) {
		rc = -errno;
		ps_reg_seterr(err, "cannot map %s: %s", shown, strerror(-rc));
		return rc;
	}
	*out = map;
	return 0;
}

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
	rc = map_file(fd, shown, err, &map);
	if (rc)
		goto fail;
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
	rc = map_file(fd, shown, err, &map);
	if (rc)
		goto fail;
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
