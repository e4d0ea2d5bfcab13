/* SPDX-License-Identifier: MIT */
/*
 * test_statedir.c - the per-user state directory: creation, refusal of
 * anything another user could have planted, the XDG_RUNTIME_DIR fallback,
 * and ps_open_parent.
 *
 * ps_statedir_open always uses /dev/shm/portshim-<euid>. So that these
 * tests never touch a real user's directory, nor race with another run of
 * themselves, they call it in a child that has switched to a uid of its
 * own (100000 + the test's pid); switching needs root, so without root
 * those tests are skipped and only the descriptor-based checks run.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "statedir.h"

#define NOBODY 65534

struct fixture {
	uid_t uid;	    /* the uid the child runs as */
	char shm[PATH_MAX]; /* /dev/shm/portshim-<uid> */
	char tmp[64];	    /* a private temp dir */
};

/* What the child saw, sent back through a pipe. */
struct result {
	int rc;
	mode_t mode;
	uid_t owner;
	char path[PATH_MAX];
	char why[512];
};

static const char *g_xdg;

static const char *fake_getenv(const char *name)
{
	if (strcmp(name, "XDG_RUNTIME_DIR") == 0)
		return g_xdg;
	return NULL;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Removes whatever is at path: a file, a symlink, or a directory tree. */
static void remove_any(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->uid = (uid_t)(100000 + getpid());
	snprintf(f->shm, sizeof(f->shm), "/dev/shm/portshim-%u",
		 (unsigned)f->uid);
	remove_any(f->shm);
	strcpy(f->tmp, "/tmp/ps-test-statedir.XXXXXX");
	if (mkdtemp(f->tmp) == NULL) {
		free(f);
		return -1;
	}
	/* The child, under another uid, must be able to reach into it. */
	chmod(f->tmp, 0755);
	g_xdg = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	remove_any(f->shm);
	remove_any(f->tmp);
	free(f);
	return 0;
}

static void need_root(void)
{
	if (geteuid() != 0) {
		print_message("needs root to run as a private uid\n");
		skip();
	}
}

/* Makes a directory owned by uid with the given mode. */
static void make_dir(const char *path, uid_t uid, mode_t mode)
{
	assert_return_code(mkdir(path, 0700), errno);
	assert_return_code(chown(path, uid, uid), errno);
	assert_return_code(chmod(path, mode), errno);
}

/*
 * Calls ps_statedir_open in a child running as f->uid with the given
 * umask; with ro_shm, in a private mount namespace where /dev/shm is a
 * read-only tmpfs. Skips the test if the namespace cannot be made.
 */
static void open_as(struct fixture *f, mode_t mask, bool ro_shm,
		    struct result *r)
{
	int p[2], status;
	pid_t pid;

	assert_return_code(pipe2(p, O_CLOEXEC), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct result res;
		struct stat st;
		int fd;

		memset(&res, 0, sizeof(res));
		close(p[0]);
		if (ro_shm &&
		    (unshare(CLONE_NEWNS) < 0 ||
		     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		     mount("tmpfs", "/dev/shm", "tmpfs", MS_RDONLY,
			   "size=64k") < 0))
			_exit(77);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(f->uid, f->uid, f->uid) < 0 ||
		    setresuid(f->uid, f->uid, f->uid) < 0)
			_exit(3);
		umask(mask);
		fd = ps_statedir_open(fake_getenv, res.path, sizeof(res.path),
				      res.why, sizeof(res.why));
		res.rc = fd < 0 ? fd : 0;
		if (fd >= 0 && fstat(fd, &st) == 0) {
			res.mode = st.st_mode;
			res.owner = st.st_uid;
		}
		if (write(p[1], &res, sizeof(res)) != sizeof(res))
			_exit(4);
		_exit(0);
	}
	close(p[1]);
	memset(r, 0, sizeof(*r));
	assert_return_code(read(p[0], r, sizeof(*r)), errno);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("cannot make a mount namespace here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_statedir_creates_private_dir(void **state)
{
	struct fixture *f = *state;
	struct result r;
	struct stat st;

	need_root();
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.path, f->shm);
	assert_true(S_ISDIR(r.mode));
	assert_int_equal(r.mode & 07777, 0700);
	assert_int_equal(r.owner, f->uid);
	assert_return_code(lstat(f->shm, &st), errno);
	assert_true(S_ISDIR(st.st_mode));

	/* It exists now: opened again, unchanged. */
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.path, f->shm);
	assert_int_equal(r.mode & 07777, 0700);
}

/* A umask that takes the owner's bits still gives a usable 0700. */
static void test_statedir_creates_despite_umask(void **state)
{
	struct fixture *f = *state;
	struct result r;

	need_root();
	open_as(f, 0777, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.mode & 07777, 0700);
}

static void test_statedir_refuses_open_mode(void **state)
{
	struct fixture *f = *state;
	char want[PATH_MAX + 32];
	struct result r;
	struct stat st;

	need_root();
	make_dir(f->shm, f->uid, 0755);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, -EPERM);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, "mode 0755"));
	snprintf(want, sizeof(want), "chmod 700 %s", f->shm);
	assert_non_null(strstr(r.why, want));
	assert_null(strchr(r.why, '\n'));
	/* Not repaired behind the user's back. */
	assert_return_code(stat(f->shm, &st), errno);
	assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_statedir_refuses_symlink(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX];
	struct result r;
	struct stat st;

	need_root();
	/* A perfectly good-looking directory, but behind a symlink. */
	snprintf(target, sizeof(target), "%s/target", f->tmp);
	make_dir(target, f->uid, 0700);
	assert_return_code(symlink(target, f->shm), errno);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, -ELOOP);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, "symbolic link"));
	assert_return_code(lstat(f->shm, &st), errno);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_statedir_refuses_file(void **state)
{
	struct fixture *f = *state;
	struct result r;
	int fd;

	need_root();
	fd = open(f->shm, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_return_code(fd, errno);
	close(fd);
	assert_return_code(chown(f->shm, f->uid, f->uid), errno);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, -ENOTDIR);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, "not a directory"));
}

static void test_statedir_refuses_foreign_owner(void **state)
{
	struct fixture *f = *state;
	struct result r;

	need_root();
	make_dir(f->shm, NOBODY, 0700);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, -EPERM);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, "owned by uid 65534"));

	/* Owned by root (whoever made it) is just as foreign. */
	remove_any(f->shm);
	make_dir(f->shm, 0, 0700);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, -EPERM);
	assert_non_null(strstr(r.why, "owned by uid 0"));
}

/*
 * Another user's directory, symlink or file at /dev/shm/portshim-<uid>
 * (anyone can create there): $XDG_RUNTIME_DIR/portshim is used instead,
 * with a one-line notice naming the squatter; what they made is left
 * alone.
 */
static void test_statedir_squatted_falls_back(void **state)
{
	struct fixture *f = *state;
	char run[256], want[PATH_MAX], target[PATH_MAX];
	struct result r;
	struct stat st;
	int fd;

	need_root();
	snprintf(run, sizeof(run), "%s/run", f->tmp);
	make_dir(run, f->uid, 0700);
	snprintf(want, sizeof(want), "%s/portshim", run);
	g_xdg = run;

	for (int kind = 0; kind < 3; kind++) {
		remove_any(f->shm);
		if (kind == 0) {
			make_dir(f->shm, NOBODY, 0700);
		} else if (kind == 1) {
			snprintf(target, sizeof(target), "%s/target", f->tmp);
			remove_any(target);
			make_dir(target, f->uid, 0700);
			assert_return_code(symlink(target, f->shm), errno);
			assert_return_code(lchown(f->shm, NOBODY, NOBODY),
					   errno);
		} else {
			fd = open(f->shm,
				  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  0600);
			assert_return_code(fd, errno);
			close(fd);
			assert_return_code(chown(f->shm, NOBODY, NOBODY),
					   errno);
		}
		open_as(f, 022, false, &r);
		assert_int_equal(r.rc, 0);
		assert_string_equal(r.path, want);
		assert_int_equal(r.owner, f->uid);
		assert_int_equal(r.mode & 07777, 0700);
		assert_non_null(strstr(r.why, f->shm));
		assert_non_null(strstr(r.why, "belongs to uid 65534"));
		assert_non_null(strstr(r.why, want));
		assert_null(strchr(r.why, '\n'));
		assert_return_code(lstat(f->shm, &st), errno);
		assert_int_equal(st.st_uid, NOBODY);
	}

	/* The first choice, when it is ours, says nothing. */
	remove_any(f->shm);
	open_as(f, 022, false, &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.path, f->shm);
	assert_string_equal(r.why, "");
}

static void test_statedir_falls_back_to_xdg(void **state)
{
	struct fixture *f = *state;
	char run[256], want[PATH_MAX];
	struct result r;
	struct stat st;

	need_root();
	snprintf(run, sizeof(run), "%s/run", f->tmp);
	make_dir(run, f->uid, 0700);
	g_xdg = run;
	open_as(f, 022, true, &r);
	snprintf(want, sizeof(want), "%s/portshim", run);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.path, want);
	assert_int_equal(r.mode & 07777, 0700);
	assert_int_equal(r.owner, f->uid);
	assert_return_code(stat(want, &st), errno);
	assert_true(S_ISDIR(st.st_mode));

	/* No XDG_RUNTIME_DIR: a refusal that says what to set. */
	g_xdg = NULL;
	open_as(f, 022, true, &r);
	assert_int_equal(r.rc, -EROFS);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, "XDG_RUNTIME_DIR"));

	/* XDG_RUNTIME_DIR that does not exist: both places are named. */
	snprintf(want, sizeof(want), "%s/missing", f->tmp);
	g_xdg = want;
	open_as(f, 022, true, &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_non_null(strstr(r.why, f->shm));
	assert_non_null(strstr(r.why, want));
}

static void test_statedir_verify(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX], file[PATH_MAX], why[512];
	int fd, ffd;

	snprintf(dir, sizeof(dir), "%s/d", f->tmp);
	assert_return_code(mkdir(dir, 0700), errno);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_return_code(fd, errno);
	assert_int_equal(ps_statedir_verify(fd, dir, why, sizeof(why)), 0);

	assert_return_code(chmod(dir, 0750), errno);
	assert_int_equal(ps_statedir_verify(fd, dir, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "mode 0750"));
	assert_non_null(strstr(why, dir));
	assert_return_code(chmod(dir, 0701), errno);
	assert_int_equal(ps_statedir_verify(fd, dir, why, sizeof(why)), -EPERM);
	/* No room for a reason is fine too. */
	assert_int_equal(ps_statedir_verify(fd, dir, NULL, 0), -EPERM);
	assert_return_code(chmod(dir, 0700), errno);

	if (geteuid() == 0) {
		assert_return_code(chown(dir, NOBODY, NOBODY), errno);
		assert_int_equal(ps_statedir_verify(fd, dir, why, sizeof(why)),
				 -EPERM);
		assert_non_null(strstr(why, "owned by uid 65534"));
	}
	close(fd);

	snprintf(file, sizeof(file), "%s/f", f->tmp);
	ffd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_return_code(ffd, errno);
	assert_int_equal(ps_statedir_verify(ffd, file, why, sizeof(why)),
			 -ENOTDIR);
	assert_non_null(strstr(why, "not a directory"));
	close(ffd);
}

/* True if fd refers to the directory at path. */
static bool same_dir(int fd, const char *path)
{
	struct stat a, b;

	assert_return_code(fstat(fd, &a), errno);
	assert_return_code(stat(path, &b), errno);
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void test_open_parent(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], sub[256], link[256];
	const char *base = NULL;
	int fd;

	snprintf(sub, sizeof(sub), "%s/sub", f->tmp);
	assert_return_code(mkdir(sub, 0700), errno);

	snprintf(path, sizeof(path), "%s/g1.map", sub);
	fd = ps_open_parent(path, &base);
	assert_return_code(fd, -fd);
	assert_string_equal(base, "g1.map");
	assert_ptr_equal(base, path + strlen(sub) + 1);
	assert_true(same_dir(fd, sub));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* A symlink in the directory part is followed, as written. */
	snprintf(link, sizeof(link), "%s/link", f->tmp);
	assert_return_code(symlink(sub, link), errno);
	snprintf(path, sizeof(path), "%s/x", link);
	fd = ps_open_parent(path, &base);
	assert_return_code(fd, -fd);
	assert_string_equal(base, "x");
	assert_true(same_dir(fd, sub));
	close(fd);

	fd = ps_open_parent("plain", &base);
	assert_return_code(fd, -fd);
	assert_string_equal(base, "plain");
	assert_true(same_dir(fd, "."));
	close(fd);

	fd = ps_open_parent("/top", &base);
	assert_return_code(fd, -fd);
	assert_string_equal(base, "top");
	assert_true(same_dir(fd, "/"));
	close(fd);

	assert_int_equal(ps_open_parent("", &base), -ENOENT);
	assert_int_equal(ps_open_parent(NULL, &base), -ENOENT);
	snprintf(path, sizeof(path), "%s/", sub);
	assert_int_equal(ps_open_parent(path, &base), -EISDIR);
	snprintf(path, sizeof(path), "%s/..", sub);
	assert_int_equal(ps_open_parent(path, &base), -EISDIR);
	snprintf(path, sizeof(path), "%s/missing/x", f->tmp);
	assert_int_equal(ps_open_parent(path, &base), -ENOENT);
	snprintf(path, sizeof(path), "%s/f", f->tmp);
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	snprintf(path, sizeof(path), "%s/f/x", f->tmp);
	assert_int_equal(ps_open_parent(path, &base), -ENOTDIR);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_statedir_creates_private_dir),
		T(test_statedir_creates_despite_umask),
		T(test_statedir_refuses_open_mode),
		T(test_statedir_refuses_symlink),
		T(test_statedir_refuses_file),
		T(test_statedir_refuses_foreign_owner),
		T(test_statedir_squatted_falls_back),
		T(test_statedir_falls_back_to_xdg),
		T(test_statedir_verify),
		T(test_open_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
