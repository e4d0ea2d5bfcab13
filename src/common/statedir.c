/* SPDX-License-Identifier: MIT */
/*
 * statedir.c - the per-user state directory.
 *
 * /dev/shm is world-writable, so the name /dev/shm/portshim-<uid> can be
 * taken by anyone before us: as a symlink to their own directory, as a
 * directory they own, or as one we own but left open to others. The
 * directory is therefore opened without following a symlink and then
 * checked through the descriptor (fstat), and every file in it is opened
 * relative to that descriptor. A directory that fails the checks is
 * refused with a message saying what to do; it is never repaired behind
 * the user's back (a chmod would hide that something else made it).
 * One that another user owns (whatever it is) was put there by them: it
 * cannot be ours to fix, so $XDG_RUNTIME_DIR/portshim is used instead,
 * and the caller is told so.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statedir.h"

#define SHM_BASE "/dev/shm/portshim-"
#define XDG_LEAF "/portshim"

/*
 * The text of an errno value. strerror() may go through gettext, which
 * can allocate; strerrordesc_np() (glibc 2.32) returns a constant string.
 */
static const char *errtext(int err)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
	const char *s = strerrordesc_np(err);

	return s != NULL ? s : "unknown error";
#else
	return strerror(err);
#endif
}

/* Writes a one-line reason into why, when the caller gave room for it. */
static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

int ps_statedir_verify(int dirfd, const char *path, char *why, size_t whylen)
{
	struct stat st;
	uid_t euid = geteuid();

	if (fstat(dirfd, &st) < 0) {
		int err = errno;

		say(why, whylen, "cannot check %s: %s", path, errtext(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(why, whylen, "%s is not a directory; remove it: rm %s",
		    path, path);
		return -ENOTDIR;
	}
	if (st.st_uid != euid) {
		say(why, whylen,
		    "%s is owned by uid %u, not by you (uid %u); have it "
		    "removed (rm -r %s) or set PORTSHIM_REGISTRY to a file "
		    "in a directory you own",
		    path, (unsigned)st.st_uid, (unsigned)euid, path);
		return -EPERM;
	}
	if ((st.st_mode & 077) != 0) {
		say(why, whylen,
		    "%s is group/world accessible (mode %04o); fix with: "
		    "chmod 700 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/*
 * Opens the directory at path without following a symlink there and
 * verifies it. Returns the descriptor or -errno with a reason in why.
 *
 * The checks are made on an O_PATH descriptor, which needs no permission
 * on the directory itself: a directory that another user made 0700 is
 * then reported as theirs rather than as "permission denied". Only after
 * the checks is it opened for real, through that descriptor, so the
 * directory checked is the directory returned.
 */
static int open_verified(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int pfd, rc;

	pfd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		rc = -errno;
		/*
		 * O_DIRECTORY|O_NOFOLLOW gives ENOTDIR for a symlink as well
		 * as for a file; lstat tells the user which one it is.
		 */
		if ((rc == -ENOTDIR || rc == -ELOOP) && lstat(path, &st) == 0 &&
		    S_ISLNK(st.st_mode)) {
			say(why, whylen,
			    "%s is a symbolic link, not a "
			    "directory; remove it: rm %s",
			    path, path);
			rc = -ELOOP;
		} else if (rc == -ENOTDIR || rc == -ELOOP) {
			say(why, whylen,
			    "%s is not a directory; remove it: "
			    "rm %s",
			    path, path);
			rc = -ENOTDIR;
		} else {
			say(why, whylen, "cannot open %s: %s", path,
			    errtext(-rc));
		}
		goto out;
	}
	rc = ps_statedir_verify(pfd, path, why, whylen);
	if (rc < 0)
		goto out;
	rc = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rc < 0) {
		rc = -errno;
		say(why, whylen, "cannot open %s: %s; fix with: chmod 700 %s",
		    path, errtext(-rc), path);
	}
out:
	if (pfd >= 0)
		close(pfd);
	return rc;
}

/*
 * Makes (if needed) and opens the directory at path. Sets *unusable when
 * the directory could not even be created, the case in which the next
 * candidate is tried; a directory that exists but fails the checks is a
 * refusal, never a reason to go elsewhere. Returns the descriptor or
 * -errno with a reason in why.
 */
static int try_dir(const char *path, bool *unusable, char *why, size_t whylen)
{
	*unusable = false;
	if (mkdir(path, 0700) == 0) {
		/*
		 * A umask such as 0777 can take the owner's own bits away
		 * from the directory we just made. Setting 0700 by path is
		 * safe here: nobody else can replace our fresh entry (/dev/shm
		 * is sticky, XDG_RUNTIME_DIR is the user's own). If it fails,
		 * opening the directory below says so. Directories that
		 * already existed are never changed.
		 */
		chmod(path, 0700);
	} else if (errno != EEXIST) {
		int err = errno;

		*unusable = true;
		say(why, whylen, "cannot create %s: %s", path, errtext(err));
		return -err;
	}
	return open_verified(path, why, whylen);
}

/*
 * True if what is at path (not followed) belongs to another user: made
 * by someone else in a folder anyone may create in. *owner is set.
 */
static bool squatted(const char *path, uid_t *owner)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return false;
	*owner = st.st_uid;
	return st.st_uid != geteuid();
}

int ps_statedir_open(const char *(*getenv_fn)(const char *), char *path,
		     size_t len, char *why, size_t whylen)
{
	char shm[sizeof(SHM_BASE) + 16];
	char xdg[PATH_MAX];
	const char *chosen = shm, *runtime = NULL;
	bool unusable, was_squatted;
	uid_t squatter = 0;
	int fd, n, shm_err;

	snprintf(shm, sizeof(shm), SHM_BASE "%u", (unsigned)geteuid());
	say(why, whylen, "%s", "");
	fd = try_dir(shm, &unusable, why, whylen);
	if (fd >= 0 || !(unusable || squatted(shm, &squatter)))
		goto out;

	/*
	 * /dev/shm is missing, read-only, full or not ours to write; or
	 * another user took our name there first (anyone can create in
	 * /dev/shm): that is never ours to use or to remove, so the user's
	 * own runtime directory is used instead.
	 */
	shm_err = -fd;
	if (getenv_fn != NULL)
		runtime = getenv_fn("XDG_RUNTIME_DIR");
	if (runtime == NULL || runtime[0] != '/') {
		/* A squatted name: why already says what is there. */
		if (unusable)
			say(why, whylen,
			    "cannot create %s: %s, and "
			    "XDG_RUNTIME_DIR is not set to a directory; set "
			    "it, or set PORTSHIM_REGISTRY to a file in a "
			    "private directory",
			    shm, errtext(shm_err));
		goto out;
	}
	n = snprintf(xdg, sizeof(xdg), "%s" XDG_LEAF, runtime);
	if (n < 0 || (size_t)n >= sizeof(xdg)) {
		fd = -ENAMETOOLONG;
		say(why, whylen, "XDG_RUNTIME_DIR is too long");
		goto out;
	}
	chosen = xdg;
	was_squatted = !unusable;
	fd = try_dir(xdg, &unusable, why, whylen);
	if (fd < 0 && unusable)
		say(why, whylen, "cannot create %s (%s) nor %s (%s)", shm,
		    was_squatted ? "another user's" : errtext(shm_err), xdg,
		    errtext(-fd));
	else if (fd >= 0 && was_squatted)
		say(why, whylen,
		    "%s belongs to uid %u, not to you (uid %u): "
		    "using %s instead",
		    shm, (unsigned)squatter, (unsigned)geteuid(), xdg);
out:
	if (fd >= 0 && path != NULL) {
		if (strlen(chosen) >= len) {
			close(fd);
			fd = -ENAMETOOLONG;
			say(why, whylen, "no room for the path %s", chosen);
		} else {
			memcpy(path, chosen, strlen(chosen) + 1);
		}
	}
	return fd;
}

int ps_open_parent(const char *path, const char **base)
{
	char dir[PATH_MAX];
	const char *slash, *name;
	size_t dlen;
	int fd;

	if (path == NULL || path[0] == '\0')
		return -ENOENT;
	slash = strrchr(path, '/');
	name = slash != NULL ? slash + 1 : path;
	/* "dir/", "." and ".." name directories, not files in one. */
	if (name[0] == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EISDIR;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;

	if (slash == NULL) {
		memcpy(dir, ".", 2);
	} else if (slash == path) {
		memcpy(dir, "/", 2);
	} else {
		dlen = (size_t)(slash - path);
		if (dlen >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*base = name;
	return fd;
}
