/* SPDX-License-Identifier: MIT */
/*
 * cmd_gc.c - `portshim gc [--dry-run] [--reset]`: reclaims the leases of
 * dead holders, or moves a refused registry aside and starts a fresh one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "claims.h"
#include "cli.h"
#include "mapfile.h"
#include "registry.h"
#include "statedir.h"

static const char gc_help[] =
	"Usage: portshim gc [--dry-run] [--reset]\n"
	"Free the leases whose holder process is gone or whose time ran out, and\n"
	"print one line for each, then how many. Also remove what killed runs\n"
	"left next to the registry (temporary mapping files of dead writers,\n"
	"mapping files of groups with no lease and no live process), one line\n"
	"each, and this user's port claims that no lease needs.\n"
	"\n"
	"  -n, --dry-run     only print what would be freed or moved\n"
	"  -r, --reset       if the registry is refused (corrupt, truncated, of\n"
	"                    another version or owner), say why and what it\n"
	"                    holds, move it aside to registry.broken.<time>\n"
	"                    and create a fresh one; a registry that opens is\n"
	"                    kept, and only its dead leases are freed\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 done, 1 the registry cannot be used, 2 bad usage.\n";

struct gc_freed {
	struct ps_lease lease;
	uint16_t real;
};

struct gc_list {
	struct gc_freed *v;
	size_t n, cap;
	bool oom;
};

/*
 * Called by ps_registry_gc under the lock: only copies the lease out.
 * Printing waits until the lock is released (stdout may be a pipe that
 * blocks, and everyone else waits for the lock meanwhile).
 */
static void gc_note(void *arg, const struct ps_lease *l, uint16_t real)
{
	struct gc_list *list = arg;
	struct gc_freed *v;
	size_t cap;

	if (list->n == list->cap) {
		cap = list->cap ? list->cap * 2 : 64;
		v = realloc(list->v, cap * sizeof(*v));
		if (v == NULL) {
			list->oom = true;
			return;
		}
		list->v = v;
		list->cap = cap;
	}
	list->v[list->n].lease = *l;
	list->v[list->n].real = real;
	list->n++;
}

/* "freed tcp 8080 -> 24117 group=G (holder pid 123 is gone)". */
static void gc_print(const struct gc_freed *f, bool dry_run, uint64_t now)
{
	const struct ps_lease *l = &f->lease;
	const char *verb = dry_run ? "would free" : "freed";
	char why[64], gtext[PS_CLI_GROUP_TEXT];

	if (ps_lease_expired(l, now))
		snprintf(why, sizeof(why), "expired");
	else
		snprintf(why, sizeof(why), "holder pid %u is gone",
			 l->holder.pid);
	if (l->kind == PS_KIND_PICK) {
		printf("%s pick port %u%s%s (%s)\n", verb, f->real,
		       l->group[0] != '\0' ? " group=" : "",
		       ps_cli_group_text(l->group, gtext), why);
		return;
	}
	printf("%s %s %u -> %u group=%s (%s)\n", verb,
	       l->protos != 0 ? ps_cli_protos_name(l->protos) : "port",
	       l->vport, f->real, ps_cli_group_text(l->group, gtext), why);
}

/* ps_claims_sweep: does the registry lease port? (lock held) */
static bool gc_leased(void *arg, uint16_t port)
{
	return ps_registry_at(arg, port) != NULL;
}

/* ps_registry_each_group: counts. */
static void gc_count(void *arg, struct ps_lease *l)
{
	(void)l;
	++*(size_t *)arg;
}

/* The files gc removed (or would), for printing after the lock. */
struct gc_files {
	char (*v)[PATH_MAX + 128];
	size_t n, cap;
};

static void gc_file_note(struct gc_files *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void gc_file_note(struct gc_files *fs, const char *fmt, ...)
{
	va_list ap;
	void *v;

	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 16;

		v = realloc(fs->v, cap * sizeof(*fs->v));
		if (v == NULL)
			return;
		fs->v = v;
		fs->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(fs->v[fs->n++], sizeof(fs->v[0]), fmt, ap);
	va_end(ap);
}

/* True if process pid runs (exists and is not a zombie). */
static bool gc_pid_runs(long pid)
{
	char path[64], buf[512], *rp;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	rp = strrchr(buf, ')');
	return rp == NULL || rp[1] != ' ' || rp[2] != 'Z';
}

/* True if s[0..n) is all decimal digits (n > 0). */
static bool gc_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * A temporary mapping file left by a writer that died before renaming
 * it (mapfile.c): ".<name>.tmp.<pid>.<n>" whose pid no longer runs.
 * Sets *pid.
 */
static bool gc_dead_temp(const char *name, long *pid)
{
	const char *t = strstr(name, ".tmp."), *dot;

	if (name[0] != '.' || t == NULL || t == name)
		return false;
	/* The last ".tmp." is the writer's: the name may hold one too. */
	for (const char *u; (u = strstr(t + 1, ".tmp.")) != NULL;)
		t = u;
	dot = strchr(t + 5, '.');
	if (dot == NULL || !gc_digits(t + 5, (size_t)(dot - t - 5)) ||
	    !gc_digits(dot + 1, strlen(dot + 1)))
		return false;
	*pid = strtol(t + 5, NULL, 10);
	return *pid > 0 && !gc_pid_runs(*pid);
}

/*
 * A mapping file of a dead group: "<group>.map" whose header names that
 * group, which has no lease left in the registry, and none of whose
 * makers still runs.
 */
static bool gc_dead_map(struct ps_registry *reg, const char *dir,
			const char *name, char *group)
{
	struct ps_map_entry ents[64];
	char path[PATH_MAX];
	size_t len = strlen(name), n = 0, leases = 0;

	if (len <= 4 || strcmp(name + len - 4, ".map") != 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
		    sizeof(path))
		return false;
	if (ps_mapfile_read(path, group, ents, 64, &n) < 0 ||
	    strlen(group) != len - 4 || strncmp(group, name, len - 4) != 0)
		return false;
	ps_registry_each_group(reg, group, gc_count, &leases);
	if (leases != 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (gc_pid_runs((long)ents[i].pid))
			return false;
	return true;
}

/*
 * With the lock held: removes what killed writers and dead groups left
 * in the registry's folder (temporary mapping files, mapping files of
 * groups that have no lease and no live maker), and the user's claims
 * that deny for nothing (claims.h). The lock keeps a group from leasing
 * and publishing while its file is judged.
 */
static void gc_files(struct ps_registry *reg, bool dry_run, struct gc_files *fs)
{
	char dir[PATH_MAX], group[PS_GROUP_MAX + 1];
	const char *base, *verb = dry_run ? "would remove" : "removed";
	struct dirent *de;
	struct stat st;
	long pid;
	int dirfd;
	DIR *d;

	ps_claims_sweep(reg, gc_leased, reg, dry_run, NULL, NULL);
	dirfd = ps_open_parent(reg->path, &base);
	if (dirfd < 0)
		return;
	if (base == reg->path)
		snprintf(dir, sizeof(dir), ".");
	else if (base == reg->path + 1)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(base - reg->path - 1),
			 reg->path);
	d = fdopendir(dirfd);
	if (d == NULL) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (gc_dead_temp(de->d_name, &pid))
			gc_file_note(fs,
				     "%s temporary mapping file %s/%s "
				     "(writer pid %ld is gone)",
				     verb, dir, de->d_name, pid);
		else if (gc_dead_map(reg, dir, de->d_name, group))
			gc_file_note(fs,
				     "%s mapping file %s/%s (group %s has "
				     "no lease and no live process)",
				     verb, dir, de->d_name, group);
		else
			continue;
		if (!dry_run)
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

static int gc_collect(bool dry_run)
{
	struct gc_list list = { NULL, 0, 0, false };
	struct gc_files files = { NULL, 0, 0 };
	struct ps_registry reg;
	struct ps_reg_guard guard;
	uint64_t now;
	size_t n, i;

	if (ps_cli_open_registry(&reg) < 0) {
		ps_cli_error("'portshim gc --reset' replaces a refused "
			     "registry");
		return PS_EXIT_NOTFOUND;
	}
	if (ps_cli_lock_registry(&reg, &guard) < 0)
		return PS_EXIT_NOTFOUND;
	n = ps_registry_gc(&reg, dry_run, gc_note, &list);
	gc_files(&reg, dry_run, &files);
	ps_registry_unlock(&reg, &guard);

	now = ps_boot_ns();
	for (i = 0; i < list.n; i++)
		gc_print(&list.v[i], dry_run, now);
	if (list.oom)
		printf("(%zu more not shown: out of memory)\n", n - list.n);
	for (i = 0; i < files.n; i++)
		printf("%s\n", files.v[i]);
	free(files.v);
	printf("%s %zu lease%s\n", dry_run ? "would free" : "freed", n,
	       n == 1 ? "" : "s");
	free(list.v);
	return PS_EXIT_OK;
}

/* A state directory that fails verification is not something a reset
 * may paper over: it is reported, not replaced. */
int ps_cli_registry_file(char *path, size_t len)
{
	const char *p = ps_cli_registry_path();
	char dir[PATH_MAX], why[512];
	int fd;

	if (p != NULL) {
		if ((size_t)snprintf(path, len, "%s", p) >= len) {
			ps_cli_error("PORTSHIM_REGISTRY is too long");
			return PS_EXIT_NOTFOUND;
		}
		return 0;
	}
	fd = ps_statedir_open(ps_cli_getenv, dir, sizeof(dir), why,
			      sizeof(why));
	if (fd < 0) {
		ps_cli_error("%s", why);
		return PS_EXIT_NOTFOUND;
	}
	close(fd);
	if ((size_t)snprintf(path, len, "%s/registry", dir) >= len) {
		ps_cli_error("the state directory's path is too long");
		return PS_EXIT_NOTFOUND;
	}
	return 0;
}

/*
 * Renames base (in dirfd) to "<base>.broken.<unix time>" without ever
 * replacing an existing file. Returns 0 or -errno; the new name is in
 * aside.
 */
static int gc_move_aside(int dirfd, const char *base, char *aside, size_t len)
{
	struct stat st;

	if ((size_t)snprintf(aside, len, "%s.broken.%lld", base,
			     (long long)time(NULL)) >= len)
		return -ENAMETOOLONG;
#ifdef HAVE_RENAMEAT2
	if (renameat2(dirfd, base, dirfd, aside, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -errno;
#endif
	/* Without RENAME_NOREPLACE (old kernels, some file systems) the check
	 * and the rename are two steps; the name holds the time, so only a
	 * second reset in the same second could meet it. */
	if (fstatat(dirfd, aside, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (renameat(dirfd, base, dirfd, aside) < 0)
		return -errno;
	return 0;
}

/* The reason without its advice to run `gc --reset`: we are running it. */
static void gc_print_reason(const char *msg)
{
	static const char advice[] = "; run 'portshim gc --reset'";
	size_t n = strlen(msg), a = sizeof(advice) - 1;

	if (n >= a && strcmp(msg + n - a, advice) == 0)
		n -= a;
	printf("refused: %.*s\n", (int)n, msg);
}

/*
 * Says what the refused file holds, read with pread (never mapped: the
 * file may be short, and a mapping past its end would raise SIGBUS):
 * its size and, when it looks like a registry of this layout, its
 * version, creation time and how many leases of which groups it holds.
 */
static void gc_print_found(int dirfd, const char *base)
{
	struct ps_reg_header hdr;
	struct ps_lease chunk[256];
	char when[64], groups[256] = "", gtext[PS_CLI_GROUP_TEXT];
	uint64_t off, end, n = 0;
	size_t i, k, got;
	struct stat st;
	struct tm tm;
	time_t t;
	ssize_t r;
	int fd;

	fd = openat(dirfd, base,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("found: a file that cannot be read (%s)\n",
		       strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		printf("found: not a regular file\n");
		goto out;
	}
	r = pread(fd, &hdr, sizeof(hdr), 0);
	if (r != (ssize_t)sizeof(hdr) || hdr.magic != PS_REG_MAGIC) {
		printf("found: %lld bytes, uid %u, mode %04o, without a "
		       "registry's header\n",
		       (long long)st.st_size, (unsigned)st.st_uid,
		       (unsigned)(st.st_mode & 07777));
		goto out;
	}
	t = (time_t)(hdr.created_ns / 1000000000u);
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	printf("found: %lld bytes, uid %u, mode %04o, layout version %u, "
	       "created %s, %u lease%s in its header, %u lock "
	       "recover%s\n",
	       (long long)st.st_size, (unsigned)st.st_uid,
	       (unsigned)(st.st_mode & 07777), hdr.version, when, hdr.nleases,
	       hdr.nleases == 1 ? "" : "s", hdr.recoveries,
	       hdr.recoveries == 1 ? "y" : "ies");
	/* The lease table, if the header's offsets fit in the file. */
	end = hdr.leases_off + (uint64_t)PS_REG_NPORTS * sizeof(chunk[0]);
	if (hdr.version != PS_REG_VERSION || hdr.leases_off == 0 ||
	    end < hdr.leases_off || end > (uint64_t)st.st_size)
		goto out;
	for (off = hdr.leases_off; off < end; off += got) {
		r = pread(fd, chunk, sizeof(chunk), (off_t)off);
		if (r <= 0)
			break;
		got = (size_t)r - (size_t)r % sizeof(chunk[0]);
		if (got == 0)
			break;
		for (i = 0; i < got / sizeof(chunk[0]); i++) {
			if (chunk[i].state != PS_LEASE_USED)
				continue;
			n++;
			ps_cli_group_text(chunk[i].group, gtext);
			k = strlen(groups);
			/* A few distinct group names, enough to recognise. */
			if (gtext[0] == '\0' || strstr(groups, gtext) != NULL ||
			    k + strlen(gtext) + 8 > sizeof(groups))
				continue;
			snprintf(groups + k, sizeof(groups) - k, "%s%s",
				 k ? ", " : "", gtext);
		}
	}
	printf("found: %llu lease%s in its table%s%s\n", (unsigned long long)n,
	       n == 1 ? "" : "s", groups[0] ? ", of groups " : "", groups);
out:
	if (fd >= 0)
		close(fd);
}

static int gc_reset(bool dry_run)
{
	char path[PATH_MAX], aside[NAME_MAX + 1];
	struct ps_reg_error err = { "" };
	struct ps_registry reg;
	const char *base;
	struct stat st;
	int rc, dirfd;

	rc = ps_cli_registry_file(path, sizeof(path));
	if (rc != 0)
		return rc;
	rc = ps_registry_open(&reg, path, &err);
	if (rc == 0) {
		/* Nothing to rebuild: what is left to do is a plain gc. */
		printf("the registry %s opens fine; nothing to reset\n", path);
		return gc_collect(dry_run);
	}
	gc_print_reason(err.msg[0] != '\0' ? err.msg : strerror(-rc));

	dirfd = ps_open_parent(path, &base);
	if (dirfd < 0) {
		ps_cli_error("cannot open the folder of %s: %s", path,
			     strerror(-dirfd));
		return PS_EXIT_NOTFOUND;
	}
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		/* Nothing is there to move: the problem is elsewhere (the
		 * folder, the disk), and creating again would fail again. */
		ps_cli_error("%s: %s; nothing to move aside", path,
			     strerror(errno));
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	gc_print_found(dirfd, base);
	if (dry_run) {
		printf("would move %s aside to %s.broken.<time> and create "
		       "a fresh registry\n",
		       path, base);
		rc = PS_EXIT_OK;
		goto out;
	}
	rc = gc_move_aside(dirfd, base, aside, sizeof(aside));
	if (rc < 0) {
		ps_cli_error("cannot move %s aside: %s", path, strerror(-rc));
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	printf("moved the refused registry %s aside to %s\n", path, aside);

	/* Another process may create the new registry first; the opener
	 * handles that race and opens the winner's. */
	err.msg[0] = '\0';
	rc = ps_registry_open(&reg, path, &err);
	if (rc < 0) {
		ps_cli_error("%s",
			     err.msg[0] != '\0' ? err.msg : strerror(-rc));
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	printf("created a fresh registry %s\n", path);
	rc = PS_EXIT_OK;
out:
	close(dirfd);
	return rc;
}

int ps_cli_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "reset", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry_run = false, reset = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nrh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry_run = true;
			break;
		case 'r':
			reset = true;
			break;
		case 'h':
			return ps_cli_help(gc_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		return ps_cli_usage_error("gc: unexpected argument '%s'",
					  argv[optind]);
	return reset ? gc_reset(dry_run) : gc_collect(dry_run);
}
