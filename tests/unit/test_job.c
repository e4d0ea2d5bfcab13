/* SPDX-License-Identifier: MIT */
/*
 * test_job.c - the pieces of `run --per-job`, `--report` and the
 * once-per-run warnings that need no preload: which processes are job
 * runners, job group and mapping file names, the report's parser, the
 * once file (with racing processes), and which programs can tell that
 * they never bind.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "inspect.h"
#include "job.h"
#include "once.h"
#include "report.h"

static void test_job_runner_argv(void **state)
{
	char *make[] = { "make", "-j4", NULL };
	char *gmake[] = { "/usr/bin/gmake", NULL };
	char *ctest[] = { "/usr/bin/ctest", "-j4", NULL };
	char *xargs[] = { "xargs", "-P4", NULL };
	char *ninja[] = { "/usr/bin/ninja", NULL };
	char *parallel[] = { "/usr/bin/perl", "/usr/bin/parallel", "-j4",
			     NULL };
	char *sh[] = { "/bin/sh", "-c", "make", NULL };
	char *shscript[] = { "/bin/sh", "./run-tests.sh", NULL };
	char *cat[] = { "cat", "make", NULL };
	char *python[] = { "python3", "-m", "pytest", NULL };
	char *makefoo[] = { "/usr/bin/makefoo", NULL };

	(void)state;
	assert_true(ps_job_runner_argv(2, make));
	assert_true(ps_job_runner_argv(1, gmake));
	assert_true(ps_job_runner_argv(2, ctest));
	assert_true(ps_job_runner_argv(2, xargs));
	assert_true(ps_job_runner_argv(1, ninja));
	assert_true(ps_job_runner_argv(3, parallel));
	assert_false(ps_job_runner_argv(3, sh));
	assert_false(ps_job_runner_argv(2, shscript));
	/* An argument named like a runner is not a runner. */
	assert_false(ps_job_runner_argv(2, cat));
	assert_false(ps_job_runner_argv(3, python));
	assert_false(ps_job_runner_argv(1, makefoo));
	assert_false(ps_job_runner_argv(0, make));
}

static void test_job_group(void **state)
{
	char out[PS_GROUP_MAX + 1], base[PS_GROUP_MAX + 1];

	(void)state;
	assert_int_equal(ps_job_group("ps-42-0a0b0c0d", 0xdeadbeefu, out), 0);
	assert_string_equal(out, "ps-42-0a0b0c0d.jdeadbeef");
	assert_int_equal(strlen(".jdeadbeef"), PS_JOB_SUFFIX_LEN);
	memset(base, 'g', PS_GROUP_MAX - PS_JOB_SUFFIX_LEN);
	base[PS_GROUP_MAX - PS_JOB_SUFFIX_LEN] = '\0';
	assert_int_equal(ps_job_group(base, 1, out), 0);
	assert_int_equal(strlen(out), PS_GROUP_MAX);
	strcat(base, "g");
	assert_int_equal(ps_job_group(base, 1, out), -ENAMETOOLONG);
}

static void test_job_base_map(void **state)
{
	char out[PATH_MAX];

	(void)state;
	/* The base group: its own file. */
	assert_int_equal(
		ps_job_base_map("/d/g.map", "g", "g", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/g.map");
	/* A job's file, "<stem>.jXXXXXXXX.map", gives the base's back. */
	assert_int_equal(ps_job_base_map("/d/g.j0000abcd.map", "g.j0000abcd",
					 "g", out, sizeof(out)),
			 0);
	assert_string_equal(out, "/d/g.map");
	/* A --map without ".map": the suffix is appended. */
	assert_int_equal(ps_job_base_map("/d/m.txt.j0000abcd", "g.j0000abcd",
					 "g", out, sizeof(out)),
			 0);
	assert_string_equal(out, "/d/m.txt");
	/* A file that does not follow the rule is kept. */
	assert_int_equal(ps_job_base_map("/d/other", "g.j0000abcd", "g", out,
					 sizeof(out)),
			 0);
	assert_string_equal(out, "/d/other");
	assert_int_equal(ps_job_base_map("/d/g.map", "g", "g", out, 4),
			 -ENAMETOOLONG);
}

static void test_report_parse(void **state)
{
	static uint8_t flags[PS_NPROTO][65536];
	static const char text[] = "bind tcp 8080\n"
				   "connect tcp 8080\n"
				   "bind udp 5353\n"
				   "connect tcp 5432\n"
				   "bind tcp 8080\n"  /* twice: counted once */
				   "bind tcp 0\n"     /* no port 0 */
				   "bind tcp 70000\n" /* out of range */
				   "bind sctp 9\n"    /* unknown protocol */
				   "listen tcp 9\n"   /* unknown kind */
				   "bind tcp 81 extra\n" /* trailing words */
				   "bind tcp 82";	 /* cut short */

	(void)state;
	memset(flags, 0, sizeof(flags));
	assert_int_equal(ps_report_parse(text, sizeof(text) - 1, flags), 5);
	assert_int_equal(flags[PS_TCP][8080],
			 PS_REPORT_F_BOUND | PS_REPORT_F_CONNECTED);
	assert_int_equal(flags[PS_UDP][5353], PS_REPORT_F_BOUND);
	assert_int_equal(flags[PS_TCP][5432], PS_REPORT_F_CONNECTED);
	assert_int_equal(flags[PS_TCP][9], 0);
	assert_int_equal(flags[PS_TCP][81], 0);
	assert_int_equal(flags[PS_TCP][82], 0);
	assert_int_equal(flags[PS_UDP][8080], 0);
}

static void test_once_claim(void **state)
{
	char dir[] = "/tmp/ps-test-once.XXXXXX", path[PATH_MAX];
	char buf[4096];
	int fd, i, status, firsts = 0;
	ssize_t n;
	pid_t pids[8];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/run.warned", dir);
	/* Never created here. */
	assert_int_equal(ps_once_claim(path, "env /bin/x"), -ENOENT);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_return_code(fd, errno);
	close(fd);
	assert_int_equal(ps_once_claim(path, "env /bin/x"), 1);
	assert_int_equal(ps_once_claim(path, "env /bin/x"), 0);
	/* A prefix, or a longer key, is another key. */
	assert_int_equal(ps_once_claim(path, "env /bin/"), 1);
	assert_int_equal(ps_once_claim(path, "env /bin/xy"), 1);
	assert_int_equal(ps_once_claim(path, "bin /bin/x"), 1);
	assert_int_equal(ps_once_claim(path, "env /bin/x"), 0);
	/* A key with a newline cannot be stored: say it every time. */
	assert_int_equal(ps_once_claim(path, "a\nb"), 1);
	assert_int_equal(ps_once_claim(path, "a\nb"), 1);

	/* Eight processes race for one new key: exactly one wins. */
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		assert_return_code(pids[i], errno);
		if (pids[i] == 0)
			_exit(ps_once_claim(path, "env /usr/bin/race") == 1 ?
				      1 :
				      0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		firsts += WEXITSTATUS(status);
	}
	assert_int_equal(firsts, 1);
	fd = open(path, O_RDONLY);
	assert_return_code(fd, errno);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "env /bin/x\nenv /bin/\nenv /bin/xy\n"
				 "bin /bin/x\nenv /usr/bin/race\n");
	unlink(path);
	rmdir(dir);
}

static void test_inspect_harmless(void **state)
{
	(void)state;
	/* coreutils' true and false need libc only and import nothing
	 * that makes a socket or starts a program. */
	if (access("/bin/true", X_OK) == 0)
		assert_true(ps_inspect_harmless(AT_FDCWD, "/bin/true"));
	if (access("/bin/false", X_OK) == 0)
		assert_true(ps_inspect_harmless(AT_FDCWD, "/bin/false"));
	/* A shell starts programs; python3 loads modules. */
	assert_false(ps_inspect_harmless(AT_FDCWD, "/bin/sh"));
	if (access("/usr/bin/python3", X_OK) == 0)
		assert_false(ps_inspect_harmless(AT_FDCWD, "/usr/bin/python3"));
	/* A script cannot tell; nor can a missing file. */
	if (access("/usr/bin/parallel", R_OK) == 0)
		assert_false(
			ps_inspect_harmless(AT_FDCWD, "/usr/bin/parallel"));
	assert_false(ps_inspect_harmless(AT_FDCWD, "/nonexistent/prog"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_runner_argv),
		cmocka_unit_test(test_job_group),
		cmocka_unit_test(test_job_base_map),
		cmocka_unit_test(test_report_parse),
		cmocka_unit_test(test_once_claim),
		cmocka_unit_test(test_inspect_harmless),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
