/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - log lines: format, levels, truncation, errno, and lines
 * from many processes at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define NCHILDREN 8
#define NLINES 300

struct fixture {
	char dir[64];
	char path[PATH_MAX];
};

static int setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/ps-test-log.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	*state = f;
	return 0;
}

static int teardown_dir(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];

	ps_log_setup(PS_LOG_ERROR, NULL);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s/target", f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/link", f->dir);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Reads a whole (small or large) file into a fresh NUL-terminated buffer. */
static char *slurp(const char *path, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	assert_non_null(buf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_return_code(fd, errno);
	for (;;) {
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		assert_return_code(n, errno);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

static void test_log_format(void **state)
{
	struct fixture *f = *state;
	char want[256];
	struct stat st;
	char *got;

	ps_log_setup(PS_LOG_ERROR, f->path);
	assert_int_equal(ps_log_level(), PS_LOG_ERROR);
	ps_log_write(PS_LOG_ERROR, "fn", "bind tcp %s -> %d group=%s",
		     "0.0.0.0:8080", 24117, "g1");
	/* Above the level: not written. */
	ps_log_write(PS_LOG_INFO, "fn", "not shown");
	PS_DEBUG("not shown either");

	snprintf(want, sizeof(want),
		 "portshim[%d]: bind tcp 0.0.0.0:8080 -> 24117 group=g1\n",
		 (int)getpid());
	got = slurp(f->path, NULL);
	assert_string_equal(got, want);
	free(got);

	assert_return_code(stat(f->path, &st), errno);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_log_debug_adds_function(void **state)
{
	struct fixture *f = *state;
	char want[256];
	char *got;

	ps_log_setup(PS_LOG_DEBUG, f->path);
	assert_int_equal(ps_log_level(), PS_LOG_DEBUG);
	PS_DEBUG("x=%d", 1);
	PS_INFO("y=%d", 2);
	snprintf(want, sizeof(want),
		 "portshim[%d]: x=1 (test_log_debug_adds_function)\n"
		 "portshim[%d]: y=2 (test_log_debug_adds_function)\n",
		 (int)getpid(), (int)getpid());
	got = slurp(f->path, NULL);
	assert_string_equal(got, want);
	free(got);
}

static void test_log_level_none(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	ps_log_setup(PS_LOG_NONE, f->path);
	PS_ERROR("nothing");
	ps_log_write(PS_LOG_ERROR, "fn", "nothing");
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_log_newlines_replaced(void **state)
{
	struct fixture *f = *state;
	char want[128];
	char *got;

	ps_log_setup(PS_LOG_ERROR, f->path);
	ps_log_write(PS_LOG_ERROR, "fn", "a\nb\r\nc%s", "\nd\n");
	snprintf(want, sizeof(want), "portshim[%d]: a b  c d \n",
		 (int)getpid());
	got = slurp(f->path, NULL);
	assert_string_equal(got, want);
	free(got);
}

static void test_log_truncated(void **state)
{
	struct fixture *f = *state;
	char longmsg[2 * PS_LOG_LINE_MAX];
	size_t len;
	char *got;

	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';

	ps_log_setup(PS_LOG_DEBUG, f->path);
	ps_log_write(PS_LOG_ERROR, "fn", "%s", longmsg);
	got = slurp(f->path, &len);
	assert_int_equal(len, PS_LOG_LINE_MAX);
	assert_memory_equal(got + len - 4, "...\n", 4);
	assert_int_equal(strchr(got, '\n') - got, PS_LOG_LINE_MAX - 1);
	assert_true(strncmp(got, "portshim[", 9) == 0);
	free(got);
}

static void test_log_errno_preserved(void **state)
{
	struct fixture *f = *state;
	char bad[PATH_MAX], want[128];
	char *got;

	ps_log_setup(PS_LOG_INFO, f->path);
	errno = EADDRINUSE;
	ps_log_write(PS_LOG_ERROR, "fn", "written");
	assert_int_equal(errno, EADDRINUSE);
	errno = ECONNREFUSED;
	PS_DEBUG("filtered");
	assert_int_equal(errno, ECONNREFUSED);

	/* The file cannot be opened: the line is dropped, errno stays. */
	snprintf(bad, sizeof(bad), "%s/missing/log", f->dir);
	ps_log_setup(PS_LOG_INFO, bad);
	errno = EINPROGRESS;
	PS_ERROR("dropped");
	assert_int_equal(errno, EINPROGRESS);

	/* "%m" reports the caller's errno. */
	ps_log_setup(PS_LOG_ERROR, f->path);
	unlink(f->path);
	errno = EACCES;
	PS_ERROR("%m");
	assert_int_equal(errno, EACCES);
	snprintf(want, sizeof(want), "portshim[%d]: %s\n", (int)getpid(),
		 strerror(EACCES));
	got = slurp(f->path, NULL);
	assert_string_equal(got, want);
	free(got);
}

static void test_log_symlink_not_followed(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX], link[PATH_MAX];
	struct stat st;

	snprintf(target, sizeof(target), "%s/target", f->dir);
	snprintf(link, sizeof(link), "%s/link", f->dir);
	assert_return_code(symlink(target, link), errno);
	ps_log_setup(PS_LOG_ERROR, link);
	PS_ERROR("must not reach the target");
	assert_int_equal(stat(target, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_log_stderr(void **state)
{
	struct fixture *f = *state;
	char want[128];
	int fd, saved;
	char *got;

	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_return_code(fd, errno);
	saved = dup(STDERR_FILENO);
	assert_return_code(saved, errno);
	assert_return_code(dup2(fd, STDERR_FILENO), errno);
	ps_log_setup(PS_LOG_ERROR, "");
	PS_ERROR("to stderr");
	assert_return_code(dup2(saved, STDERR_FILENO), errno);
	close(saved);
	close(fd);

	snprintf(want, sizeof(want), "portshim[%d]: to stderr\n",
		 (int)getpid());
	got = slurp(f->path, NULL);
	assert_string_equal(got, want);
	free(got);
}

/*
 * Each child writes NLINES lines of varying length whose body is a
 * repetition of one letter, so any interleaving shows up as a line whose
 * letters differ, whose length does not match, or as a count off.
 */
static void child_writes(int c)
{
	char body[PS_LOG_LINE_MAX];
	int i, n;

	for (i = 0; i < NLINES; i++) {
		n = 1 + (i * 37 + c * 11) % 400;
		memset(body, 'a' + c, (size_t)n);
		body[n] = '\0';
		ps_log_write(PS_LOG_ERROR, "fn", "c%d i%d n%d %s", c, i, n,
			     body);
	}
}

static void test_log_concurrent_lines_intact(void **state)
{
	struct fixture *f = *state;
	int counts[NCHILDREN] = { 0 };
	pid_t pids[NCHILDREN];
	char *got, *line, *save = NULL;
	int c, status, total = 0;

	ps_log_setup(PS_LOG_ERROR, f->path);
	for (c = 0; c < NCHILDREN; c++) {
		pids[c] = fork();
		assert_return_code(pids[c], errno);
		if (pids[c] == 0) {
			child_writes(c);
			_exit(0);
		}
	}
	for (c = 0; c < NCHILDREN; c++) {
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	got = slurp(f->path, NULL);
	for (line = strtok_r(got, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		int pid, cc, i, n, off = 0;
		size_t k;

		assert_int_equal(sscanf(line, "portshim[%d]: c%d i%d n%d %n",
					&pid, &cc, &i, &n, &off),
				 4);
		assert_true(off > 0);
		assert_in_range(cc, 0, NCHILDREN - 1);
		assert_int_equal(pid, pids[cc]);
		assert_int_equal(i, counts[cc]);
		assert_int_equal(strlen(line + off), (size_t)n);
		for (k = 0; k < (size_t)n; k++)
			assert_int_equal(line[off + k], 'a' + cc);
		counts[cc]++;
		total++;
	}
	free(got);
	for (c = 0; c < NCHILDREN; c++)
		assert_int_equal(counts[c], NLINES);
	assert_int_equal(total, NCHILDREN * NLINES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_format, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_debug_adds_function,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_level_none, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_newlines_replaced,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_truncated, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_errno_preserved,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_symlink_not_followed,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_stderr, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(
			test_log_concurrent_lines_intact, setup_dir,
			teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
