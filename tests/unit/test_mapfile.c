/* SPDX-License-Identifier: MIT */
/*
 * test_mapfile.c - the mapping file: exact text, round trip, the strict
 * reader, atomic replacement under a concurrent reader, symlinks planted
 * at the final and at the temporary name, and removal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "mapfile.h"

#define READS 500
#define BIG 400 /* entries: more than one 4096-byte chunk */

struct fixture {
	char dir[64];
	char path[256]; /* <dir>/g1.map */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/ps-test-mapfile.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/g1.map", f->dir);
	umask(022);
	*state = f;
	return 0;
}

/* Removes every entry of dir (no subdirectories are made), then dir. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(f->dir);

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
		if (unlink(p) < 0)
			rmdir(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void put_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	assert_return_code(fd, errno);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void get_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_return_code(fd, errno);
	n = read(fd, buf, len - 1);
	assert_return_code(n, errno);
	buf[n] = '\0';
	close(fd);
}

/* Counts the entries of dir whose name contains ".tmp.". */
static int count_temps(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	}
	closedir(d);
	return n;
}

/* n entries whose values all derive from n, so a reader can check them. */
static void make_entries(struct ps_map_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		e[i].proto = i % 2 ? PS_UDP : PS_TCP;
		e[i].vport = (uint16_t)(1000 + i);
		e[i].real = (uint16_t)(20000 + n + i);
		e[i].pid = (uint32_t)(4000000000u + n);
	}
}

static bool entries_match(const struct ps_map_entry *e, size_t n)
{
	struct ps_map_entry want[BIG];
	size_t i;

	make_entries(want, n);
	for (i = 0; i < n; i++) {
		if (e[i].proto != want[i].proto ||
		    e[i].vport != want[i].vport || e[i].real != want[i].real ||
		    e[i].pid != want[i].pid)
			return false;
	}
	return true;
}

static void test_mapfile_text(void **state)
{
	struct fixture *f = *state;
	const struct ps_map_entry ents[] = {
		{ PS_TCP, 8080, 24117, 4242 },
		{ PS_UDP, 5353, 24118, 4242 },
		{ PS_TCP, 65535, 1, 4294967295u },
	};
	char text[512];
	struct stat st;

	assert_int_equal(ps_mapfile_write(f->path, "g1", ents, 3), 0);
	get_file(f->path, text, sizeof(text));
	assert_string_equal(text, "# portshim map v1 group=g1\n"
				  "tcp 8080 24117 4242\n"
				  "udp 5353 24118 4242\n"
				  "tcp 65535 1 4294967295\n");
	assert_return_code(lstat(f->path, &st), errno);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(count_temps(f->dir), 0);

	/* No entries: only the header. */
	assert_int_equal(ps_mapfile_write(f->path, "g1", NULL, 0), 0);
	get_file(f->path, text, sizeof(text));
	assert_string_equal(text, "# portshim map v1 group=g1\n");
}

static void test_mapfile_round_trip(void **state)
{
	struct fixture *f = *state;
	struct ps_map_entry ents[BIG], got[BIG];
	char group[PS_GROUP_MAX + 1];
	char longgroup[PS_GROUP_MAX + 1];
	size_t n = 0;

	make_entries(ents, BIG);
	memset(longgroup, 'G', PS_GROUP_MAX);
	longgroup[PS_GROUP_MAX] = '\0';
	assert_int_equal(ps_mapfile_write(f->path, longgroup, ents, BIG), 0);
	assert_int_equal(ps_mapfile_read(f->path, group, got, BIG, &n), 0);
	assert_int_equal(n, BIG);
	assert_string_equal(group, longgroup);
	assert_memory_equal(got, ents, sizeof(ents));

	/* Fewer slots than entries: the count is still the file's. */
	memset(got, 0, sizeof(got));
	assert_int_equal(ps_mapfile_read(f->path, NULL, got, 2, &n), 0);
	assert_int_equal(n, BIG);
	assert_memory_equal(got, ents, 2 * sizeof(ents[0]));
	assert_int_equal(got[2].vport, 0);
	assert_int_equal(ps_mapfile_read(f->path, NULL, NULL, 0, &n), 0);
	assert_int_equal(n, BIG);

	/* A relative path works too. */
	assert_return_code(chdir(f->dir), errno);
	assert_int_equal(ps_mapfile_write("rel.map", "g.2-x_y", ents, 1), 0);
	assert_int_equal(ps_mapfile_read("rel.map", group, got, BIG, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(group, "g.2-x_y");
	assert_return_code(chdir("/"), errno);
}

static void test_mapfile_write_rejects(void **state)
{
	struct fixture *f = *state;
	struct ps_map_entry e = { PS_TCP, 8080, 24117, 1 };
	struct stat st;
	char toolong[PS_GROUP_MAX + 2];
	char dirpath[300];

	memset(toolong, 'g', PS_GROUP_MAX + 1);
	toolong[PS_GROUP_MAX + 1] = '\0';
	assert_int_equal(ps_mapfile_write(f->path, "", &e, 1), -EINVAL);
	assert_int_equal(ps_mapfile_write(f->path, NULL, &e, 1), -EINVAL);
	assert_int_equal(ps_mapfile_write(f->path, "a b", &e, 1), -EINVAL);
	assert_int_equal(ps_mapfile_write(f->path, "a\nb", &e, 1), -EINVAL);
	assert_int_equal(ps_mapfile_write(f->path, toolong, &e, 1), -EINVAL);
	e.vport = 0;
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), -EINVAL);
	e.vport = 1;
	e.real = 0;
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), -EINVAL);
	e.real = 1;
	e.proto = (enum ps_proto)7;
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), -EINVAL);
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(count_temps(f->dir), 0);

	/*
	 * The rename fails (a directory holds the name): the error comes
	 * back and the temp file is gone.
	 */
	e.proto = PS_TCP;
	snprintf(dirpath, sizeof(dirpath), "%s/isdir", f->dir);
	assert_return_code(mkdir(dirpath, 0700), errno);
	assert_int_equal(ps_mapfile_write(dirpath, "g1", &e, 1), -EISDIR);
	assert_int_equal(count_temps(f->dir), 0);

	/* The folder does not exist. */
	snprintf(dirpath, sizeof(dirpath), "%s/none/g1.map", f->dir);
	assert_int_equal(ps_mapfile_write(dirpath, "g1", &e, 1), -ENOENT);
}

static void test_mapfile_strict_reader(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"",
		"\n",
		"# portshim map v1 group=g1",
		"# portshim map v2 group=g1\n",
		"# portshim map v1 group=\n",
		"# portshim map v1 group=g 1\n",
		"# portshim map v1 group=g1 \n",
		"#  portshim map v1 group=g1\n",
		"tcp 8080 24117 1\n",
		"# portshim map v1 group=g1\ntcp 8080 24117 1",
		"# portshim map v1 group=g1\ntcp 8080 24117\n",
		"# portshim map v1 group=g1\ntcp 8080 24117 1 2\n",
		"# portshim map v1 group=g1\ntcp  8080 24117 1\n",
		"# portshim map v1 group=g1\ntcp 8080 24117 1 \n",
		"# portshim map v1 group=g1\ntcp 8080 24117 1\r\n",
		"# portshim map v1 group=g1\nsctp 8080 24117 1\n",
		"# portshim map v1 group=g1\nTCP 8080 24117 1\n",
		"# portshim map v1 group=g1\ntcp 0 24117 1\n",
		"# portshim map v1 group=g1\ntcp 8080 0 1\n",
		"# portshim map v1 group=g1\ntcp 65536 24117 1\n",
		"# portshim map v1 group=g1\ntcp -1 24117 1\n",
		"# portshim map v1 group=g1\ntcp +80 24117 1\n",
		"# portshim map v1 group=g1\ntcp 80 24117 4294967296\n",
		"# portshim map v1 group=g1\ntcp 80 24117 x\n",
		"# portshim map v1 group=g1\n\n",
		"# portshim map v1 group=g1\n# comment\n",
		"# portshim map v1 group=g1\n# portshim map v1 group=g1\n",
	};
	/* A NUL inside a line (the strings above cannot hold one). */
	static const char nul[] = "# portshim map v1 group=g1\n"
				  "tcp 80 2\0 1\n";
	char longline[300];
	struct ps_map_entry e[4];
	char group[PS_GROUP_MAX + 1];
	size_t i, n;
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file(f->path, bad[i]);
		n = 99;
		if (ps_mapfile_read(f->path, group, e, 4, &n) != -EBADMSG)
			fail_msg("accepted file %zu: '%s'", i, bad[i]);
		assert_int_equal(n, 0);
	}
	fd = open(f->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_return_code(fd, errno);
	assert_int_equal(write(fd, nul, sizeof(nul) - 1),
			 (ssize_t)sizeof(nul) - 1);
	close(fd);
	assert_int_equal(ps_mapfile_read(f->path, group, e, 4, &n), -EBADMSG);

	memset(longline, '1', sizeof(longline) - 2);
	memcpy(longline, "# portshim map v1 group=g1\ntcp ", 31);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	put_file(f->path, longline);
	assert_int_equal(ps_mapfile_read(f->path, group, e, 4, &n), -EBADMSG);

	/* Good one. */
	put_file(f->path, "# portshim map v1 group=g1\nudp 53 20001 0\n");
	assert_int_equal(ps_mapfile_read(f->path, group, e, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(group, "g1");
	assert_int_equal(e[0].proto, PS_UDP);
	assert_int_equal(e[0].vport, 53);
	assert_int_equal(e[0].real, 20001);
	assert_int_equal(e[0].pid, 0);

	assert_int_equal(ps_mapfile_read(f->dir, group, e, 4, &n), -EISDIR);
	unlink(f->path);
	assert_int_equal(ps_mapfile_read(f->path, group, e, 4, &n), -ENOENT);
	assert_return_code(mkfifo(f->path, 0600), errno);
	assert_int_equal(ps_mapfile_read(f->path, group, e, 4, &n), -EINVAL);
}

/*
 * A forked reader polls the file at least READS times, and until it has
 * seen both versions, while the parent keeps replacing it with a small
 * and a large (multi-chunk) version. Every read must see one complete
 * version: never a missing, empty or cut file.
 */
static void test_mapfile_atomic_replace(void **state)
{
	struct fixture *f = *state;
	struct ps_map_entry small[1], big[BIG];
	int status, writes = 0;
	pid_t pid, done;

	make_entries(small, 1);
	make_entries(big, BIG);
	assert_int_equal(ps_mapfile_write(f->path, "g1", small, 1), 0);

	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_map_entry got[BIG];
		char group[PS_GROUP_MAX + 1];
		int i, rc, bad = 0, sawbig = 0, sawsmall = 0;
		size_t n;

		for (i = 0; i < 100 * READS; i++) {
			if (i >= READS && sawbig && sawsmall)
				break;
			n = 0;
			rc = ps_mapfile_read(f->path, group, got, BIG, &n);
			if (rc != 0 || strcmp(group, "g1") != 0 ||
			    (n != 1 && n != BIG) || !entries_match(got, n))
				bad++;
			sawbig += n == BIG;
			sawsmall += n == 1;
		}
		/* Exit 0: all good; 1: bad reads; 2: never saw a change. */
		_exit(bad ? 1 : !sawbig || !sawsmall ? 2 : 0);
	}
	do {
		if (writes++ % 2)
			assert_int_equal(
				ps_mapfile_write(f->path, "g1", small, 1), 0);
		else
			assert_int_equal(
				ps_mapfile_write(f->path, "g1", big, BIG), 0);
		done = waitpid(pid, &status, WNOHANG);
		assert_return_code(done, errno);
	} while (done == 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_temps(f->dir), 0);
}

static void test_mapfile_replaces_symlink(void **state)
{
	struct fixture *f = *state;
	const struct ps_map_entry e = { PS_TCP, 8080, 24117, 1 };
	char victim[300], text[256];
	struct stat st;

	snprintf(victim, sizeof(victim), "%s/victim", f->dir);
	put_file(victim, "precious\n");
	assert_return_code(symlink(victim, f->path), errno);

	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), 0);
	assert_return_code(lstat(f->path, &st), errno);
	assert_true(S_ISREG(st.st_mode));
	get_file(victim, text, sizeof(text));
	assert_string_equal(text, "precious\n");
	get_file(f->path, text, sizeof(text));
	assert_string_equal(text,
			    "# portshim map v1 group=g1\ntcp 8080 24117 1\n");
}

/*
 * Learns the counter the writer will use next: watches the directory
 * while one write creates its temp file, and reads the name it used.
 */
static unsigned next_counter(struct fixture *f)
{
	const struct ps_map_entry e = { PS_TCP, 8080, 24117, 1 };
	char buf[4096] __attribute__((aligned(8)));
	char prefix[64];
	unsigned counter = 0;
	bool found = false;
	ssize_t n, off;
	int in;

	snprintf(prefix, sizeof(prefix), ".g1.map.tmp.%d.", (int)getpid());
	in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	assert_return_code(in, errno);
	assert_return_code(inotify_add_watch(in, f->dir, IN_CREATE), errno);
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), 0);
	n = read(in, buf, sizeof(buf));
	assert_return_code(n, errno);
	for (off = 0; off < n;) {
		struct inotify_event *ev = (struct inotify_event *)(buf + off);

		if (ev->len > 0 &&
		    strncmp(ev->name, prefix, strlen(prefix)) == 0) {
			counter = (unsigned)strtoul(ev->name + strlen(prefix),
						    NULL, 10);
			found = true;
		}
		off += (ssize_t)(sizeof(*ev) + ev->len);
	}
	close(in);
	assert_true(found);
	return counter + 1;
}

static void test_mapfile_temp_symlink_not_followed(void **state)
{
	struct fixture *f = *state;
	const struct ps_map_entry e = { PS_UDP, 53, 20053, 7 };
	char victim[300], link[300], text[256];
	unsigned c, k;
	struct stat st;

	snprintf(victim, sizeof(victim), "%s/victim", f->dir);
	put_file(victim, "precious\n");

	/* The next three temp names are symlinks to the victim. */
	c = next_counter(f);
	for (k = 0; k < 3; k++) {
		snprintf(link, sizeof(link), "%s/.g1.map.tmp.%d.%u", f->dir,
			 (int)getpid(), c + k);
		assert_return_code(symlink(victim, link), errno);
	}
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), 0);
	get_file(victim, text, sizeof(text));
	assert_string_equal(text, "precious\n");
	get_file(f->path, text, sizeof(text));
	assert_string_equal(text,
			    "# portshim map v1 group=g1\nudp 53 20053 7\n");
	for (k = 0; k < 3; k++) {
		snprintf(link, sizeof(link), "%s/.g1.map.tmp.%d.%u", f->dir,
			 (int)getpid(), c + k);
		assert_return_code(lstat(link, &st), errno);
		assert_true(S_ISLNK(st.st_mode));
		unlink(link);
	}

	/* Every name it may try is taken: it gives up, nothing written. */
	c = next_counter(f);
	for (k = 0; k < 64; k++) {
		snprintf(link, sizeof(link), "%s/.g1.map.tmp.%d.%u", f->dir,
			 (int)getpid(), c + k);
		assert_return_code(symlink(victim, link), errno);
	}
	assert_int_equal(ps_mapfile_write(f->path, "g9", &e, 1), -EEXIST);
	get_file(victim, text, sizeof(text));
	assert_string_equal(text, "precious\n");
	get_file(f->path, text, sizeof(text));
	assert_string_equal(text,
			    "# portshim map v1 group=g1\ntcp 8080 24117 1\n");
}

static void test_mapfile_remove(void **state)
{
	struct fixture *f = *state;
	const struct ps_map_entry e = { PS_TCP, 8080, 24117, 1 };
	char victim[300], text[256];
	struct stat st;
	size_t n;

	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), 0);
	assert_int_equal(ps_mapfile_remove(f->path), 0);
	assert_int_equal(ps_mapfile_read(f->path, NULL, NULL, 0, &n), -ENOENT);
	assert_int_equal(ps_mapfile_remove(f->path), -ENOENT);

	/* A symlink is removed, not what it points to. */
	snprintf(victim, sizeof(victim), "%s/victim", f->dir);
	put_file(victim, "precious\n");
	assert_return_code(symlink(victim, f->path), errno);
	assert_int_equal(ps_mapfile_remove(f->path), 0);
	assert_int_equal(lstat(f->path, &st), -1);
	get_file(victim, text, sizeof(text));
	assert_string_equal(text, "precious\n");

	/* A directory is left alone. */
	assert_return_code(mkdir(f->path, 0700), errno);
	assert_int_equal(ps_mapfile_remove(f->path), -EISDIR);
	assert_return_code(stat(f->path, &st), errno);
	assert_true(S_ISDIR(st.st_mode));
	assert_return_code(rmdir(f->path), errno);
}

/*
 * Another user's mapping file is never believed, and a run cannot claim
 * a name another user holds (as root: chown makes the other user's
 * files; a file of root's own is trusted by everyone).
 */
static void test_mapfile_foreign_owner(void **state)
{
	struct fixture *f = *state;
	const struct ps_map_entry e = { PS_TCP, 8080, 24117, 1 };
	struct ps_map_entry got;
	char group[PS_GROUP_MAX + 1];
	uid_t owner = 0;
	size_t n;

	/* Claim: made when absent (an empty mapping), kept when ours. */
	assert_int_equal(ps_mapfile_claim(f->path, "g1", &owner), 0);
	assert_int_equal(ps_mapfile_read(f->path, group, NULL, 0, &n), 0);
	assert_string_equal(group, "g1");
	assert_int_equal(n, 0);
	assert_int_equal(ps_mapfile_write(f->path, "g1", &e, 1), 0);
	assert_int_equal(ps_mapfile_claim(f->path, "g1", &owner), 0);
	assert_int_equal(ps_mapfile_read(f->path, NULL, &got, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got.real, 24117);

	/* A folder others may write to, without the sticky bit: refused. */
	assert_return_code(chmod(f->dir, 0777), errno);
	assert_int_equal(ps_mapfile_claim(f->path, "g1", &owner), -EACCES);
	assert_return_code(chmod(f->dir, 01777), errno);
	assert_int_equal(ps_mapfile_claim(f->path, "g1", &owner), 0);

	if (geteuid() != 0) {
		assert_return_code(chmod(f->dir, 0700), errno);
		skip();
	}
	/* Another user's file: neither read nor claimed. */
	assert_return_code(chown(f->path, 65534, 65534), errno);
	assert_int_equal(ps_mapfile_read(f->path, NULL, &got, 1, &n), -EPERM);
	assert_int_equal(ps_mapfile_claim(f->path, "g1", &owner), -EPERM);
	assert_int_equal(owner, 65534);
	assert_return_code(chmod(f->dir, 0700), errno);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mapfile_text),
		T(test_mapfile_round_trip),
		T(test_mapfile_write_rejects),
		T(test_mapfile_strict_reader),
		T(test_mapfile_atomic_replace),
		T(test_mapfile_replaces_symlink),
		T(test_mapfile_temp_symlink_not_followed),
		T(test_mapfile_remove),
		T(test_mapfile_foreign_owner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
