/* SPDX-License-Identifier: MIT */
/*
 * test_registry_files.c - opening the registry: the creation race, and
 * every kind of file that must be refused.
 *
 * Each refusal must come with -errno and one line that names the file
 * and says how to fix it; the file itself is left as it was (nothing is
 * repaired behind the user's back). A registry shrunk or removed after a
 * process mapped it must give that process an error, never a SIGBUS.
 *
 * Tests that need root (files of another user, a state directory of a
 * fresh uid, another PID namespace, a small tmpfs) are skipped without
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

static struct {
	char dir[64];
	char path[128];
} fx;

static struct ps_registry reg;

/* Removes dir and everything in it (one level of subfolders). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL) {
		unlink(dir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (unlink(sub) != 0 && errno == EISDIR)
			remove_tree(sub);
		else if (errno == EISDIR || errno == EPERM)
			remove_tree(sub);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/ps-regfiles.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	snprintf(fx.path, sizeof(fx.path), "%s/registry", fx.dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	remove_tree(fx.dir);
	return 0;
}

/* Opens, then forgets a registry (nobody holds its lock). */
static void forget(struct ps_registry *r)
{
	munmap(r->hdr, r->size);
	close(r->fd);
}

/* Creates a valid registry at path. */
static void make_registry(const char *path)
{
	struct ps_reg_error err = { "" };
	int rc = ps_registry_open(&reg, path, &err);

	if (rc != 0)
		fail_msg("ps_registry_open(%s): %d %s", path, rc, err.msg);
	assert_true(reg.created);
	forget(&reg);
}

/* Writes len bytes at off of the file at path. */
static void poke(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_return_code(fd, errno);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static bool root(void)
{
	return geteuid() == 0;
}

/*
 * Opens path and expects the refusal rc with a one-line reason that
 * names shown and contains each of the hints (NULL-terminated).
 */
static void expect_refused(const char *path, const char *shown, int want, ...)
{
	struct ps_reg_error err;
	const char *hint;
	va_list ap;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = ps_registry_open(&reg, path, &err);
	if (rc == 0)
		forget(&reg);
	if (rc != want)
		fail_msg("%s: got %d, want %d (%s)", path, rc, want, err.msg);
	fprintf(stderr, "# refused: %s\n", err.msg);
	assert_true(err.msg[0] != '\0');
	assert_null(strchr(err.msg, '\n'));
	assert_non_null(strstr(err.msg, shown));
	va_start(ap, want);
	while ((hint = va_arg(ap, const char *)) != NULL) {
		if (strstr(err.msg, hint) == NULL)
			fail_msg("'%s' does not say '%s'", err.msg, hint);
	}
	va_end(ap);
}

/* The folder holds exactly the names given (NULL-terminated). */
static void expect_dir(const char *dir, ...)
{
	const char *names[16];
	struct dirent *e;
	size_t n = 0, seen = 0;
	va_list ap;
	DIR *d;

	va_start(ap, dir);
	while (n < 16 && (names[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		bool known = false;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			known |= strcmp(e->d_name, names[i]) == 0;
		if (!known)
			fail_msg("unexpected file %s in %s", e->d_name, dir);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, n);
}

/* --------------------------------------------------------- header */

#define FIX "portshim gc --reset"

static void test_files_bad_magic(void **state)
{
	uint64_t v = 0x1122334455667788ull;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, magic), &v, sizeof(v));
	expect_refused(fx.path, fx.path, -EUCLEAN, "magic", FIX, NULL);
	/* A caller that does not want the reason gets the same refusal. */
	assert_int_equal(ps_registry_open(&reg, fx.path, NULL), -EUCLEAN);
}

static void test_files_other_version(void **state)
{
	uint32_t v = PS_REG_VERSION + 1;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, version), &v, sizeof(v));
	expect_refused(fx.path, fx.path, -EPROTO, "version", FIX, NULL);
}

/* PITFALLS 10: a 32-bit program's registry (word and mutex sizes). */
static void test_files_other_abi(void **state)
{
	uint32_t word = 4;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, abi_word), &word,
	     sizeof(word));
	expect_refused(fx.path, fx.path, -EPROTO, "32-bit", FIX, NULL);
}

static void test_files_other_mutex_size(void **state)
{
	uint32_t mutex = 32;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, abi_mutex), &mutex,
	     sizeof(mutex));
	expect_refused(fx.path, fx.path, -EPROTO, "mutex of 32 bytes", FIX,
		       NULL);
}

/* PITFALLS 9: a registry from before the last reboot. */
static void test_files_other_boot(void **state)
{
	char boot[40] = "00000000-1111-2222-3333-444444444444";

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, boot_id), boot,
	     sizeof(boot));
	expect_refused(fx.path, fx.path, -ESTALE, "reboot", FIX, NULL);
}

/* PITFALLS 11: a registry made in another PID namespace. */
static void test_files_other_pidns(void **state)
{
	uint64_t ns = 4026531836ull + 12345;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, pidns), &ns, sizeof(ns));
	expect_refused(fx.path, fx.path, -EXDEV, "PID namespace", FIX, NULL);
}

/*
 * The same for real: a process in a new PID namespace opening the
 * registry of ours is refused before it touches the mutex.
 */
static void test_files_real_pidns(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (!root())
		skip();
	make_registry(fx.path);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		pid_t inner;

		if (unshare(CLONE_NEWPID) != 0)
			_exit(77);
		inner = fork();
		if (inner < 0)
			_exit(2);
		if (inner == 0) {
			struct ps_reg_error err = { "" };
			int rc = ps_registry_open(&reg, fx.path, &err);

			if (getpid() != 1)
				_exit(3);
			fprintf(stderr, "# in a new PID namespace: %s\n",
				err.msg);
			_exit(rc == -EXDEV ? 0 : 4);
		}
		if (waitpid(inner, &status, 0) != inner)
			_exit(5);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 6);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_files_bad_layout(void **state)
{
	uint32_t v = 1234;

	(void)state;
	make_registry(fx.path);
	poke(fx.path, offsetof(struct ps_reg_header, hbuckets), &v, sizeof(v));
	expect_refused(fx.path, fx.path, -EUCLEAN, "layout", FIX, NULL);
}

/* ------------------------------------------------------------- size */

static void truncate_to(off_t size)
{
	assert_return_code(truncate(fx.path, size), errno);
}

static void test_files_truncated(void **state)
{
	(void)state;
	make_registry(fx.path);
	truncate_to((off_t)ps_registry_file_size() - 4096);
	expect_refused(fx.path, fx.path, -EUCLEAN, "truncated", FIX, NULL);
	truncate_to(100); /* shorter than a header */
	expect_refused(fx.path, fx.path, -EUCLEAN, "truncated", FIX, NULL);
}

static void test_files_zero_length(void **state)
{
	int fd;

	(void)state;
	fd = open(fx.path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_return_code(fd, errno);
	close(fd);
	expect_refused(fx.path, fx.path, -EUCLEAN, "0 bytes", FIX, NULL);
	/* Refused, not repaired or replaced. */
	{
		struct stat st;

		assert_return_code(stat(fx.path, &st), errno);
		assert_int_equal(st.st_size, 0);
	}
}

static void test_files_larger(void **state)
{
	(void)state;
	make_registry(fx.path);
	truncate_to((off_t)ps_registry_file_size() + 4096);
	expect_refused(fx.path, fx.path, -EUCLEAN, FIX, NULL);
}

/* Text where a registry should be: refused, and left alone. */
static void test_files_not_a_registry(void **state)
{
	static char junk[9000000];
	struct stat st;
	int fd;

	(void)state;
	memset(junk, 'x', sizeof(junk));
	fd = open(fx.path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_return_code(fd, errno);
	assert_int_equal(write(fd, junk, ps_registry_file_size()),
			 (ssize_t)ps_registry_file_size());
	close(fd);
	expect_refused(fx.path, fx.path, -EUCLEAN, "magic", FIX, NULL);
	assert_return_code(stat(fx.path, &st), errno);
	assert_int_equal(st.st_size, ps_registry_file_size());
	expect_dir(fx.dir, "registry", NULL);
}

/* ----------------------------------------------------- ownership, mode */

static void test_files_other_owner(void **state)
{
	(void)state;
	if (!root())
		skip();
	make_registry(fx.path);
	assert_return_code(chown(fx.path, 65534, 65534), errno);
	expect_refused(fx.path, fx.path, -EPERM, "uid 65534", "remove it",
		       NULL);
}

/* PITFALLS 14, security: a registry others could read or write. */
static void test_files_mode(void **state)
{
	static const mode_t modes[] = { 0660, 0606, 0640, 0604,
					0620, 0602, 0601, 0610 };

	(void)state;
	make_registry(fx.path);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char mode[8];

		assert_return_code(chmod(fx.path, modes[i]), errno);
		snprintf(mode, sizeof(mode), "%04o", (unsigned)modes[i]);
		expect_refused(fx.path, fx.path, -EPERM, "accessible to others",
			       mode, FIX, NULL);
	}
	/* Back to 0600: accepted again. */
	assert_return_code(chmod(fx.path, 0600), errno);
	assert_int_equal(ps_registry_open(&reg, fx.path, NULL), 0);
	assert_false(reg.created);
	forget(&reg);
}

static void test_files_symlink(void **state)
{
	char target[160], dangling[160];

	(void)state;
	snprintf(target, sizeof(target), "%s/real", fx.dir);
	make_registry(target);
	assert_return_code(symlink(target, fx.path), errno);
	expect_refused(fx.path, fx.path, -ELOOP, "symbolic link", "remove it",
		       NULL);

	/* A dangling symlink is not followed to create its target. */
	assert_return_code(unlink(fx.path), errno);
	snprintf(dangling, sizeof(dangling), "%s/elsewhere", fx.dir);
	assert_return_code(symlink(dangling, fx.path), errno);
	expect_refused(fx.path, fx.path, -ELOOP, "symbolic link", NULL);
	assert_int_equal(access(dangling, F_OK), -1);
	expect_dir(fx.dir, "registry", "real", NULL);
}

static void test_files_directory(void **state)
{
	(void)state;
	assert_return_code(mkdir(fx.path, 0700), errno);
	expect_refused(fx.path, fx.path, -EISDIR, "directory", "remove it",
		       NULL);
}

static void test_files_hard_link(void **state)
{
	char other[160];

	(void)state;
	make_registry(fx.path);
	snprintf(other, sizeof(other), "%s/other", fx.dir);
	assert_return_code(link(fx.path, other), errno);
	expect_refused(fx.path, fx.path, -EPERM, "hard links", FIX, NULL);
}

/* A FIFO at the path must neither hang the opener nor be accepted. */
static void test_files_fifo(void **state)
{
	(void)state;
	assert_return_code(mkfifo(fx.path, 0600), errno);
	alarm(10);
	expect_refused(fx.path, fx.path, -EINVAL, "not a regular file", NULL);
	alarm(0);
}

/* ------------------------------------------------ the state directory */

/* A uid nobody uses here, so /dev/shm/portshim-<uid> is ours to test. */
static uid_t test_uid(void)
{
	return (uid_t)(3000000 + getpid() % 100000);
}

/*
 * Runs ps_registry_open(NULL) as uid in a child. Returns the child's rc
 * (0 or the positive errno) and prints the reason.
 */
static int open_default_as(uid_t uid)
{
	int status;
	pid_t pid = fork();

	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_reg_error err = { "" };
		int rc;

		unsetenv("XDG_RUNTIME_DIR");
		if (setgid(uid) != 0 || setuid(uid) != 0)
			_exit(99);
		rc = ps_registry_open(&reg, NULL, &err);
		if (rc != 0)
			fprintf(stderr, "# refused: %s\n", err.msg);
		if (rc != 0 && (strchr(err.msg, '\n') != NULL ||
				strstr(err.msg, "/dev/shm/portshim-") == NULL))
			_exit(98);
		_exit(-rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/*
 * PITFALLS 16: the default registry lives in /dev/shm/portshim-<uid>,
 * created 0700; a folder there that is open to others, not ours, or a
 * symlink is refused, never repaired.
 */
static void test_files_state_dir(void **state)
{
	char sdir[64], sreg[96], other[96];
	uid_t uid = test_uid();
	struct stat st;

	(void)state;
	if (!root())
		skip();
	snprintf(sdir, sizeof(sdir), "/dev/shm/portshim-%u", (unsigned)uid);
	snprintf(sreg, sizeof(sreg), "%s/registry", sdir);
	snprintf(other, sizeof(other), "%s/elsewhere", fx.dir);
	remove_tree(sdir);

	/* Fresh: made 0700, owned by the user, registry 0600 inside. */
	assert_int_equal(open_default_as(uid), 0);
	assert_return_code(lstat(sdir, &st), errno);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, uid);
	assert_return_code(lstat(sreg, &st), errno);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_size, ps_registry_file_size());
	/* And opened again. */
	assert_int_equal(open_default_as(uid), 0);

	assert_return_code(chmod(sdir, 0755), errno);
	assert_int_equal(open_default_as(uid), EPERM);
	assert_return_code(chmod(sdir, 0770), errno);
	assert_int_equal(open_default_as(uid), EPERM);
	assert_return_code(stat(sdir, &st), errno);
	assert_int_equal(st.st_mode & 07777, 0770); /* not repaired */

	assert_return_code(chmod(sdir, 0700), errno);
	assert_return_code(chown(sdir, 0, 0), errno);
	assert_int_equal(open_default_as(uid), EPERM);

	/* Someone put a symlink to their folder at the name. */
	remove_tree(sdir);
	assert_return_code(mkdir(other, 0700), errno);
	assert_return_code(chown(other, uid, uid), errno);
	assert_return_code(symlink(other, sdir), errno);
	assert_int_equal(open_default_as(uid), ELOOP);
	expect_dir(other, NULL);
	assert_return_code(unlink(sdir), errno);

	/* A file at the name. */
	assert_int_equal(close(open(sdir, O_CREAT | O_WRONLY, 0600)), 0);
	assert_return_code(chown(sdir, uid, uid), errno);
	assert_int_equal(open_default_as(uid), ENOTDIR);
	remove_tree(sdir);
}

/* ------------------------------------------- changes after mapping */

/*
 * PITFALLS 15: someone shrinks the registry after we mapped it. The next
 * lock reports -EIO instead of letting the host program die of SIGBUS.
 */
static void test_files_shrunk_after_map(void **state)
{
	struct ps_reg_guard g;
	int fd;

	(void)state;
	assert_int_equal(ps_registry_open(&reg, fx.path, NULL), 0);
	assert_int_equal(ps_registry_lock(&reg, &g), 0);
	ps_registry_unlock(&reg, &g);

	fd = open(fx.path, O_RDWR);
	assert_return_code(fd, errno);
	assert_return_code(ftruncate(fd, (off_t)ps_registry_file_size() / 2),
			   errno);
	assert_int_equal(ps_registry_lock(&reg, &g), -EIO);
	assert_return_code(ftruncate(fd, 0), errno);
	assert_int_equal(ps_registry_lock(&reg, &g), -EIO);
	/* Still alive; the signal mask is back as it was. */
	{
		sigset_t cur;

		assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
		assert_false(sigismember(&cur, SIGINT));
	}
	close(fd);
	forget(&reg);
	/* And a newcomer refuses the file. */
	expect_refused(fx.path, fx.path, -EUCLEAN, FIX, NULL);
}

/*
 * The file shrinks while a process waits for the lock: the waiter gets
 * -EIO when it wakes, before it touches the table.
 */
static void test_files_shrunk_while_waiting(void **state)
{
	struct ps_reg_guard g;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(ps_registry_open(&reg, fx.path, NULL), 0);
	assert_int_equal(ps_registry_lock(&reg, &g), 0);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		static struct ps_registry mine;
		struct ps_reg_guard cg;
		int rc;

		if (ps_registry_open(&mine, fx.path, NULL) != 0)
			_exit(2);
		rc = ps_registry_lock(&mine, &cg);
		if (rc == 0) {
			/* Touches every lease: SIGBUS if it got this far. */
			ps_registry_check(&mine, NULL);
			_exit(3);
		}
		/*
		 * Not holding the lock, so unmapping is safe; it spares a
		 * memory checker's exit-time scan the pages past the end.
		 */
		munmap(mine.hdr, mine.size);
		munmap(reg.hdr, reg.size);
		_exit(rc == -EIO ? 0 : 4);
	}
	/*
	 * Once the child sleeps on the lock (glibc marks the lock word with
	 * FUTEX_WAITERS, futex(2), before a waiter's futex wait: the
	 * positive sign that it is past its first size check and blocked),
	 * shrink the file (the header page, which holds the mutex, stays).
	 */
	while (!(__atomic_load_n(&reg.hdr->lock.mutex.__data.__lock,
				 __ATOMIC_SEQ_CST) &
		 0x80000000u)) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			fail_msg("the child ended before it waited for the "
				 "lock");
		usleep(1000);
	}
	assert_return_code(truncate(fx.path, 8192), errno);
	ps_registry_unlock(&reg, &g);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the waiter died of signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(ps_registry_lock(&reg, &g), -EIO);
	forget(&reg);
}

/*
 * A umask that takes the owner's write bit away must not leave a
 * registry that only its creator can use.
 */
static void test_files_umask(void **state)
{
	char sub[160], path[200];
	uid_t uid = test_uid();
	int status;
	pid_t pid;

	(void)state;
	if (!root())
		skip();
	snprintf(sub, sizeof(sub), "%s/u", fx.dir);
	snprintf(path, sizeof(path), "%s/registry", sub);
	assert_return_code(mkdir(sub, 0700), errno);
	assert_return_code(chown(sub, uid, uid), errno);
	/* fx.dir is root's 0700 folder: let the user through. */
	assert_return_code(chmod(fx.dir, 0711), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		static struct ps_registry again;
		struct stat st;

		if (setgid(uid) != 0 || setuid(uid) != 0)
			_exit(99);
		umask(0277);
		if (ps_registry_open(&reg, path, NULL) != 0 || !reg.created)
			_exit(2);
		if (stat(path, &st) != 0 || (st.st_mode & 07777) != 0600)
			_exit(3);
		_exit(ps_registry_open(&again, path, NULL) == 0 ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A registry removed (or moved aside and replaced) after we mapped it. */
static void test_files_removed_after_map(void **state)
{
	static struct ps_registry old;
	struct ps_reg_guard g;

	(void)state;
	assert_int_equal(ps_registry_open(&old, fx.path, NULL), 0);
	assert_return_code(unlink(fx.path), errno);
	assert_int_equal(ps_registry_lock(&old, &g), -ESTALE);
	/* A new one is made; the old mapping stays refused. */
	make_registry(fx.path);
	assert_int_equal(ps_registry_lock(&old, &g), -ESTALE);
	forget(&old);
}

/*
 * PITFALLS 15: on a full tmpfs, creation fails with ENOSPC at once
 * (posix_fallocate) and leaves nothing behind, instead of a SIGBUS later.
 */
static void test_files_enospc(void **state)
{
	char mnt[160];
	int status;
	pid_t pid;

	(void)state;
	if (!root())
		skip();
	snprintf(mnt, sizeof(mnt), "%s/small", fx.dir);
	assert_return_code(mkdir(mnt, 0700), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_reg_error err = { "" };
		char path[200];
		int rc;

		if (unshare(CLONE_NEWNS) != 0 ||
		    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0700") != 0)
			_exit(77);
		snprintf(path, sizeof(path), "%s/registry", mnt);
		rc = ps_registry_open(&reg, path, &err);
		fprintf(stderr, "# small tmpfs: %s\n", err.msg);
		if (rc != -ENOSPC)
			_exit(2);
		if (strstr(err.msg, path) == NULL)
			_exit(3);
		{
			DIR *d = opendir(mnt);
			struct dirent *e;

			while (d != NULL && (e = readdir(d)) != NULL)
				if (e->d_name[0] != '.' ||
				    (e->d_name[1] != '\0' &&
				     strcmp(e->d_name, "..") != 0))
					_exit(4);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------ header check */

/* The pure header check on an image, as the fuzz target drives it. */
static void test_files_check_header(void **state)
{
	static unsigned char img[4096], bad[4096];
	struct ps_reg_header *h = (struct ps_reg_header *)bad;
	struct ps_reg_error err = { "" };
	uint64_t size = ps_registry_file_size();
	char boot[40];
	uint64_t ns;
	int fd;

	(void)state;
	make_registry(fx.path);
	fd = open(fx.path, O_RDONLY);
	assert_return_code(fd, errno);
	assert_int_equal(read(fd, img, sizeof(img)), sizeof(img));
	close(fd);
	memcpy(boot, ((struct ps_reg_header *)img)->boot_id, sizeof(boot));
	ns = ((struct ps_reg_header *)img)->pidns;

	assert_int_equal(ps_registry_check_header(img, sizeof(img), size, boot,
						  ns, &err),
			 0);
	assert_int_equal(
		ps_registry_check_header(img, sizeof(img), size, NULL, 0, NULL),
		0);
	assert_int_equal(
		ps_registry_check_header(img, 100, size, boot, ns, &err),
		-EUCLEAN);
	assert_int_equal(ps_registry_check_header(img, sizeof(img), size - 1,
						  boot, ns, &err),
			 -EUCLEAN);
	assert_int_equal(ps_registry_check_header(img, sizeof(img), size,
						  "another", ns, &err),
			 -ESTALE);
	assert_int_equal(ps_registry_check_header(img, sizeof(img), size, boot,
						  ns + 1, &err),
			 -EXDEV);
	memcpy(bad, img, sizeof(bad));
	memset(h->boot_id, 'a', sizeof(h->boot_id)); /* no NUL */
	assert_int_equal(
		ps_registry_check_header(bad, sizeof(bad), size, NULL, 0, &err),
		-EUCLEAN);
	/* A crafted boot id must not put a newline into the one line. */
	memcpy(bad, img, sizeof(bad));
	memcpy(h->boot_id, "evil\nline\033[2J", 14);
	assert_int_equal(ps_registry_check_header(bad, sizeof(bad), size,
						  "other", 0, &err),
			 -EUCLEAN);
	assert_null(strchr(err.msg, '\n'));
	assert_null(strchr(err.msg, '\033'));
	memcpy(bad, img, sizeof(bad));
	h->leases_off += 8;
	assert_int_equal(
		ps_registry_check_header(bad, sizeof(bad), size, NULL, 0, &err),
		-EUCLEAN);
	memcpy(bad, img, sizeof(bad));
	h->file_size = 1;
	assert_int_equal(
		ps_registry_check_header(bad, sizeof(bad), size, NULL, 0, &err),
		-EUCLEAN);
	memset(bad, 0, sizeof(bad));
	assert_int_equal(
		ps_registry_check_header(bad, sizeof(bad), size, NULL, 0, &err),
		-EUCLEAN);
	assert_non_null(strstr(err.msg, "magic"));
}

/* --------------------------------------------------- creation race */

/*
 * True under valgrind (scripts/test sets PS_UNDER_VALGRIND=1; valgrind's
 * own preload in LD_PRELOAD says so too): the slowest loops are then
 * shortened, the memory checks being the point of that run.
 */
static bool under_valgrind(void)
{
	const char *v = getenv("PS_UNDER_VALGRIND");
	const char *p = getenv("LD_PRELOAD");

	return (v != NULL && strcmp(v, "1") == 0) ||
	       (p != NULL && strstr(p, "vgpreload") != NULL);
}

#define RACERS 16
#define ROUNDS 10

struct race_result {
	int rc;
	int created;
	int check;
	ino_t ino;
	uint32_t nleases;
};

/*
 * PITFALLS 13: sixteen processes open a registry that does not exist,
 * released at once by a pipe barrier. Exactly one creates it; all get
 * the same, valid file; no temporary file is left.
 */
static void test_files_creation_race(void **state)
{
	unsigned creators_total = 0;
	int rounds = under_valgrind() ? 3 : ROUNDS;
	struct timespec t0, t1;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int round = 0; round < rounds; round++) {
		struct race_result res[RACERS];
		int barrier[2], out[2], created = 0;
		pid_t pids[RACERS];
		char path[160];
		struct stat st;

		snprintf(path, sizeof(path), "%s/race%d", fx.dir, round);
		assert_return_code(pipe(barrier), errno);
		assert_return_code(pipe(out), errno);
		for (int i = 0; i < RACERS; i++) {
			pids[i] = fork();
			assert_return_code(pids[i], errno);
			if (pids[i] == 0) {
				struct race_result r = { 0 };
				struct ps_reg_guard g;
				struct stat cst;
				char b;

				close(barrier[1]);
				close(out[0]);
				if (read(barrier[0], &b, 1) != 0)
					_exit(2);
				r.rc = ps_registry_open(&reg, path, NULL);
				if (r.rc == 0) {
					r.created = reg.created;
					fstat(reg.fd, &cst);
					r.ino = cst.st_ino;
					/*
					 * Opening validated the header; the
					 * whole table is checked by two of
					 * the racers (it is slow under
					 * valgrind).
					 */
					if (ps_registry_lock(&reg, &g) == 0) {
						if (i < 2)
							r.check =
								ps_registry_check(
									&reg,
									NULL);
						r.nleases = reg.hdr->nleases;
						ps_registry_unlock(&reg, &g);
					} else {
						r.check = -1;
					}
				}
				if (write(out[1], &r, sizeof(r)) !=
				    (ssize_t)sizeof(r))
					_exit(3);
				/* Unlocked: unmapping is safe, and spares a
				 * memory checker's exit-time scan. */
				if (r.rc == 0)
					munmap(reg.hdr, reg.size);
				_exit(0);
			}
		}
		close(barrier[0]);
		close(out[1]);
		close(barrier[1]); /* go */
		for (int i = 0; i < RACERS; i++)
			assert_int_equal(read(out[0], &res[i], sizeof(res[i])),
					 sizeof(res[i]));
		close(out[0]);
		for (int i = 0; i < RACERS; i++) {
			int status;

			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
		assert_return_code(stat(path, &st), errno);
		for (int i = 0; i < RACERS; i++) {
			assert_int_equal(res[i].rc, 0);
			assert_int_equal(res[i].check, 0);
			assert_int_equal(res[i].nleases, 0);
			assert_int_equal(res[i].ino, st.st_ino);
			created += res[i].created;
		}
		assert_int_equal(created, 1);
		creators_total += (unsigned)created;
		assert_int_equal(st.st_nlink, 1);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Nothing but the registries: no temporary file survived. */
	if (rounds == ROUNDS)
		expect_dir(fx.dir, "race0", "race1", "race2", "race3", "race4",
			   "race5", "race6", "race7", "race8", "race9", NULL);
	else
		expect_dir(fx.dir, "race0", "race1", "race2", NULL);
	fprintf(stderr,
		"# creation race: %d rounds x %d processes, %u "
		"creators, %.3f s\n",
		rounds, RACERS, creators_total,
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_files_bad_magic),
		T(test_files_other_version),
		T(test_files_other_abi),
		T(test_files_other_mutex_size),
		T(test_files_other_boot),
		T(test_files_other_pidns),
		T(test_files_real_pidns),
		T(test_files_bad_layout),
		T(test_files_truncated),
		T(test_files_zero_length),
		T(test_files_larger),
		T(test_files_not_a_registry),
		T(test_files_other_owner),
		T(test_files_mode),
		T(test_files_symlink),
		T(test_files_directory),
		T(test_files_hard_link),
		T(test_files_fifo),
		T(test_files_state_dir),
		T(test_files_shrunk_after_map),
		T(test_files_shrunk_while_waiting),
		T(test_files_umask),
		T(test_files_removed_after_map),
		T(test_files_enospc),
		T(test_files_check_header),
		T(test_files_creation_race),
#undef T
	};

	/* PS_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("PS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("PS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
