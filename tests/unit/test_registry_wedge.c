/* SPDX-License-Identifier: MIT */
/*
 * test_registry_wedge.c - nothing a process does or suffers wedges the
 * registry's lock for the others.
 *
 * Real processes each time: a raw clone() child and a vfork() child that
 * try to take the lock (refused: they have no robust list); a raw clone
 * child that takes the mutex behind the registry's back, as an older
 * program would, and is killed inside with its parent gone (the lock
 * word names a dead thread the kernel never released); a holder stopped
 * with SIGSTOP (a waiter gives up, names it, and stays killable while it
 * waits); a lock word naming a live process that does not map the
 * registry; garbage in the mutex's kind (refused before pthread sees
 * it, never SIGILL); a file shrunk while a reader reads (an error, never
 * SIGBUS).
 *
 * Every waiter runs in a child of the test with a small bound
 * (PORTSHIM_LOCK_TIMEOUT); the test waits for its answer with a generous
 * hang guard, so that a regression fails instead of hanging the suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

#include "fixture.h"

static struct fixture fx = { .name = "ps-wedge" };

/* The hang guard: the longest a child may take to answer, in seconds. */
#define GUARD_S 120

/*
 * Waits for pid (a child of the test) to end, for at most GUARD_S; kills
 * it and fails the test if it does not. Returns its wait status.
 */
static int wait_guarded(pid_t pid, const char *what)
{
	int status;

	for (int i = 0; i < GUARD_S * 100; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		assert_return_code(r, errno);
		if (r == pid)
			return status;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("%s did not end within %d s: the lock wedged it", what,
		 GUARD_S);
	return -1;
}

/* The lock word of the registry's mutex. */
static uint32_t *word(void)
{
	return (uint32_t *)(void *)&fx.reg.hdr->lock.mutex;
}

/*
 * Forks a waiter: opens the registry with a bound of bound_s, takes the
 * lock, and writes "rc tid-named-in-the-message" as text to the pipe.
 * Returns its pid; the answer is read by read_answer.
 */
static pid_t start_waiter(const char *bound_s, int *rfd)
{
	int p[2];
	pid_t pid;

	assert_return_code(pipe(p), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		static struct ps_registry mine;
		struct ps_reg_guard g;
		char why[320], out[400];
		int rc, n;

		close(p[0]);
		setenv("PORTSHIM_LOCK_TIMEOUT", bound_s, 1);
		if (ps_registry_open(&mine, fx.path, NULL) != 0)
			_exit(2);
		rc = ps_registry_lock(&mine, &g);
		if (rc == 0)
			ps_registry_unlock(&mine, &g);
		n = snprintf(
			out, sizeof(out), "%d %s\n", rc,
			ps_registry_strerror(&mine, &g, rc, why, sizeof(why)));
		if (write(p[1], out, (size_t)n) != n)
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* Reads a waiter's answer (guarded); returns its rc, the text in msg. */
static int read_answer(pid_t pid, int rfd, char *msg, size_t len)
{
	struct pollfd pf = { .fd = rfd, .events = POLLIN };
	ssize_t n;
	int rc = 1, status;

	if (poll(&pf, 1, GUARD_S * 1000) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("the waiter did not give up within %d s", GUARD_S);
	}
	n = read(rfd, msg, len - 1);
	assert_true(n > 0);
	msg[n] = '\0';
	close(rfd);
	status = wait_guarded(pid, "the waiter");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(sscanf(msg, "%d", &rc), 1);
	return rc;
}

/* ------------------------------------------- children without a list */

/* What a raw clone child reports through its pipe. */
static int clone_pipe = -1;

static int try_lock_child(void *arg)
{
	static struct ps_registry mine;
	struct ps_reg_guard g;
	int rc;

	(void)arg;
	if (ps_registry_open(&mine, fx.path, NULL) != 0)
		_exit(2);
	rc = ps_registry_lock(&mine, &g);
	if (rc == 0) {
		/* Held by a child that has no robust list: report and wait
		 * to be killed, as an unlucky child would be. */
		if (write(clone_pipe, "L", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	if (write(clone_pipe, rc == -ENOLCK ? "R" : "?", 1) != 1)
		_exit(3);
	_exit(0);
}

/*
 * A raw clone() child: like fork() to the kernel, but glibc did not
 * register a robust list for it and still believes it is its parent.
 */
static pid_t raw_clone(void)
{
	return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

/*
 * PITFALLS 34: a raw clone child asks for the lock. It is refused; had
 * it got the lock and been killed inside, with its parent gone, the lock
 * word would name a dead thread that the kernel never released.
 */
static void test_wedge_raw_clone_refused(void **state)
{
	struct ps_reg_guard g;
	int p[2], q[2];
	char b = 0;
	pid_t parent, child;

	(void)state;
	/* p: the parent says the child's pid; q: the child answers. */
	assert_return_code(pipe(p), errno);
	assert_return_code(pipe(q), errno);
	parent = fork();
	assert_return_code(parent, errno);
	if (parent == 0) {
		/* The parent: makes the child, reports, waits to be killed. */
		close(p[0]);
		close(q[0]);
		clone_pipe = q[1];
		child = raw_clone();
		if (child == 0)
			try_lock_child(NULL);
		if (child < 0)
			_exit(5);
		if (write(p[1], &child, sizeof(child)) != sizeof(child))
			_exit(6);
		for (;;)
			pause();
	}
	close(p[1]);
	close(q[1]);
	assert_int_equal(read(p[0], &child, sizeof(child)), sizeof(child));
	assert_int_equal(read(q[0], &b, 1), 1);
	close(p[0]);
	close(q[0]);
	/* Kill the child (wherever it is), then its parent; reap both. */
	kill(child, SIGKILL);
	fx_kill(parent);
	wait_guarded(child, "the raw clone child");
	assert_int_equal(b, 'R');
	/* And the lock is free for everyone. */
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * The same for a vfork() child: it shares its parent's memory. It
 * answers by its exit status (valgrind runs a vfork child as a fork).
 */
static void test_wedge_vfork_refused(void **state)
{
	struct ps_reg_guard g;
	int status;
	pid_t pid;

	(void)state;
	pid = vfork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_reg_guard cg;
		int rc = ps_registry_lock(&fx.reg, &cg);

		if (rc == 0)
			raise(SIGKILL); /* killed inside the lock */
		_exit(rc == -ENOLCK ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the vfork child got the lock (and died in it)");
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent (its thread id would be in the lock word) locks. */
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * An older program's raw clone child takes the mutex itself (no check),
 * and is killed inside after its parent is gone: the word names a thread
 * that does not exist and the kernel marked nothing. The next locker
 * releases it as the kernel would have, and repairs.
 */
static void test_wedge_dead_unmarked_holder(void **state)
{
	struct ps_reg_guard g;
	uint32_t rec = fx.reg.hdr->recoveries;
	int p[2], status;
	char b = 0;
	pid_t parent, child = 0;
	int rfd;
	char msg[400];

	(void)state;
	assert_return_code(pipe(p), errno);
	parent = fork();
	assert_return_code(parent, errno);
	if (parent == 0) {
		int q[2];

		close(p[0]);
		if (pipe(q) != 0)
			_exit(2);
		child = raw_clone();
		if (child == 0) {
			int rc = pthread_mutex_lock(&fx.reg.hdr->lock.mutex);

			if (write(q[1], rc == 0 ? "L" : "?", 1) != 1)
				_exit(3);
			for (;;)
				pause();
		}
		/* The child's answer, then its pid and the answer. */
		if (child < 0 || read(q[0], &b, 1) != 1 ||
		    write(p[1], &child, sizeof(child)) != sizeof(child) ||
		    write(p[1], &b, 1) != 1)
			_exit(6);
		_exit(0); /* the parent is gone at once */
	}
	close(p[1]);
	assert_int_equal(read(p[0], &child, sizeof(child)), sizeof(child));
	assert_int_equal(read(p[0], &b, 1), 1);
	close(p[0]);
	if (b != 'L') {
		kill(child, SIGKILL);
		fail_msg("the raw clone child did not get the mutex");
	}
	/* Killed inside the lock; reparented to the test (a subreaper). */
	assert_return_code(kill(child, SIGKILL), errno);
	status = wait_guarded(parent, "the parent");
	assert_true(WIFEXITED(status));
	wait_guarded(child, "the raw clone child");
	/* The word names the parent's thread id, which is gone. */
	assert_int_equal(*word() & FUTEX_TID_MASK, (uint32_t)parent);

	/* A waiter in another process gets the lock and repairs. */
	pid_t w = start_waiter("5", &rfd);

	assert_int_equal(read_answer(w, rfd, msg, sizeof(msg)), 0);
	assert_int_equal(fx.reg.hdr->recoveries, rec + 1);
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	fx_check(&fx.reg);
	ps_registry_unlock(&fx.reg, &g);
}

/* ------------------------------------------------- a stopped holder */

/* An fx_holder_fn: takes the lock, says so, and waits (holding it). */
static int hold(void *arg, int ready)
{
	static struct ps_registry mine;
	struct ps_reg_guard g;

	(void)arg;
	if (ps_registry_open(&mine, fx.path, NULL) != 0 ||
	    ps_registry_lock(&mine, &g) != 0)
		return 2;
	if (write(ready, "x", 1) != 1)
		return 3;
	return 0;
}

/*
 * A holder stopped with SIGSTOP: a waiter gives up after its bound with
 * one line that names the holder's pid, command and state.
 */
static void test_wedge_stopped_holder_named(void **state)
{
	char b, msg[400], want[64];
	pid_t holder, w;
	int rfd, rc;

	(void)state;
	holder = fx_holder(hold, NULL, &b, 1);
	assert_return_code(kill(holder, SIGSTOP), errno);
	w = start_waiter("0.3", &rfd);
	rc = read_answer(w, rfd, msg, sizeof(msg));
	assert_int_equal(rc, -ETIMEDOUT);
	snprintf(want, sizeof(want), "pid %d (", (int)holder);
	if (strstr(msg, want) == NULL || strstr(msg, "stopped") == NULL)
		fail_msg("the line does not name the stopped holder %d: %s",
			 (int)holder, msg);
	fprintf(stderr, "# %s", msg);
	fx_kill(holder);
	/* The holder's death released the lock: it is free again. */
	w = start_waiter("5", &rfd);
	assert_int_equal(read_answer(w, rfd, msg, sizeof(msg)), 0);
}

/*
 * While it waits, a waiter is killable: SIGTERM ends it (the default
 * action), once it is surely waiting (the mutex's waiters bit is set).
 */
static void test_wedge_waiter_killable(void **state)
{
	char b, msg[400];
	pid_t holder, w;
	int rfd, status, i;

	(void)state;
	holder = fx_holder(hold, NULL, &b, 1);
	assert_return_code(kill(holder, SIGSTOP), errno);
	w = start_waiter("600", &rfd);
	for (i = 0;
	     i < GUARD_S * 1000 &&
	     !(__atomic_load_n(word(), __ATOMIC_ACQUIRE) & FUTEX_WAITERS);
	     i++)
		usleep(1000);
	assert_true(*word() & FUTEX_WAITERS);
	assert_return_code(kill(w, SIGTERM), errno);
	status = wait_guarded(w, "the waiter after SIGTERM");
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	close(rfd);
	(void)msg;
	fx_kill(holder);
}

/* ---------------------------------------------------- garbage words */

/*
 * The lock word names a live process that does not map the registry (a
 * corrupted word): it cannot be holding it, so it is released. A word
 * naming a live process that maps it is not taken: the waiter gives up
 * and names it.
 */
static void test_wedge_word_names_stranger(void **state)
{
	struct ps_reg_guard g;
	char msg[400], want[64], b;
	pid_t sleeper, mapper, w;
	int rfd;

	(void)state;
	sleeper = fork();
	assert_return_code(sleeper, errno);
	if (sleeper == 0) {
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	/* Once it runs sleep, it no longer maps anything of ours. */
	for (int i = 0; i < GUARD_S * 1000; i++) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)sleeper);
		f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strcmp(comm, "sleep\n") == 0)
			break;
		usleep(1000);
	}
	*word() = (uint32_t)sleeper;
	w = start_waiter("5", &rfd);
	assert_int_equal(read_answer(w, rfd, msg, sizeof(msg)), 0);
	assert_int_equal(kill(sleeper, 0), 0); /* nobody touched it */
	fx_kill(sleeper);

	/* A process that maps it (a fork of ours) is never overruled. */
	mapper = fx_holder(NULL, NULL, &b, 0);
	*word() = (uint32_t)mapper;
	w = start_waiter("0.3", &rfd);
	assert_int_equal(read_answer(w, rfd, msg, sizeof(msg)), -ETIMEDOUT);
	snprintf(want, sizeof(want), "pid %d", (int)mapper);
	assert_non_null(strstr(msg, want));
	*word() = 0;
	fx_kill(mapper);
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * Garbage in the mutex's kind: refused with a clear error before any
 * pthread call (glibc would run elision instructions: SIGILL), by the
 * lock and by a newcomer's open.
 */
static void test_wedge_garbage_kind(void **state)
{
	static const int kinds[] = { 0x100, 0x41414141, 0x3, -1 };
	struct ps_reg_error err = { "" };
	int *kind = &fx.reg.hdr->lock.mutex.__data.__kind;
	int good = *kind;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int status, rc = 0;
		pid_t pid;

		*kind = kinds[i];
		pid = fork();
		assert_return_code(pid, errno);
		if (pid == 0) {
			static struct ps_registry mine;
			struct ps_reg_guard g;

			setenv("PORTSHIM_LOCK_TIMEOUT", "1", 1);
			rc = ps_registry_open(&mine, fx.path, NULL);
			if (rc != -EUCLEAN)
				_exit(10);
			/* Through the mapping inherited from the test. */
			rc = ps_registry_lock(&fx.reg, &g);
			_exit(rc == -EUCLEAN ? 0 : 11);
		}
		status = wait_guarded(pid, "a locker of a garbage mutex");
		if (WIFSIGNALED(status))
			fail_msg("kind %#x killed the locker with signal %d",
				 (unsigned)kinds[i], WTERMSIG(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		(void)rc;
	}
	assert_int_equal(
		ps_registry_open(&(struct ps_registry){ 0 }, fx.path, &err),
		-EUCLEAN);
	assert_non_null(strstr(err.msg, "lock is corrupt"));
	*kind = good;
}

/* ------------------------------------------------------ a shrunk file */

/*
 * PITFALLS 32: a reader that reads the table without the lock, while the
 * file is shrunk and grown again under it, gets errors and never SIGBUS.
 */
static void test_wedge_shrink_under_reader(void **state)
{
	struct ps_reg_guard g;
	uint16_t real;
	int p[2], status, fd;
	unsigned long cycles = 0;
	char b;
	pid_t reader;

	(void)state;
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	for (int i = 0; i < 64; i++) {
		struct ps_lease t =
			fx_lease("g", (uint16_t)(8000 + i), &fx.self);

		assert_int_equal(ps_registry_alloc(&fx.reg, &t, 20000, 29999,
						   NULL, NULL, NULL, &real),
				 0);
	}
	ps_registry_unlock(&fx.reg, &g);
	assert_return_code(pipe(p), errno);
	reader = fork();
	assert_return_code(reader, errno);
	if (reader == 0) {
		char stop[200];
		unsigned long eio = 0;

		close(p[0]);
		/* Not cmocka's handler: a SIGBUS must end the reader. */
		signal(SIGBUS, SIG_DFL);
		snprintf(stop, sizeof(stop), "%s/stop", fx.dir);
		if (write(p[1], "r", 1) != 1)
			_exit(3);
		/* Until the parent says stop, after its shrinks. */
		while (access(stop, F_OK) != 0) {
			for (int k = 0; k < 64; k++) {
				uint16_t v, r2;

				eio += ps_registry_peek(&fx.reg, "g",
							(uint16_t)(8000 + k),
							&r2) == -EIO;
				eio += ps_registry_peek_at(
					       &fx.reg, "g",
					       (uint16_t)(20000 + k),
					       &v) == -EIO;
			}
		}
		_exit(eio > 0 ? 0 : 4);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &b, 1), 1);
	fd = open(fx.path, O_RDWR);
	assert_return_code(fd, errno);
	for (cycles = 0; cycles < 2000; cycles++) {
		assert_return_code(ftruncate(fd, 4096), errno);
		sched_yield();
		assert_return_code(
			ftruncate(fd, (off_t)ps_registry_file_size()), errno);
		sched_yield();
	}
	{
		char stop[200];

		snprintf(stop, sizeof(stop), "%s/stop", fx.dir);
		close(open(stop, O_CREAT | O_WRONLY, 0600));
	}
	status = wait_guarded(reader, "the reader");
	close(p[0]);
	close(fd);
	if (WIFSIGNALED(status))
		fail_msg("the reader died of signal %d after the file was "
			 "shrunk under it",
			 WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fprintf(stderr,
		"# shrink: %lu shrink/grow cycles under a reader, "
		"no signal\n",
		cycles);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) \
	cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &fx)
		T(test_wedge_raw_clone_refused),
		T(test_wedge_vfork_refused),
		T(test_wedge_dead_unmarked_holder),
		T(test_wedge_stopped_holder_named),
		T(test_wedge_waiter_killable),
		T(test_wedge_word_names_stranger),
		T(test_wedge_garbage_kind),
		T(test_wedge_shrink_under_reader),
#undef T
	};

	if (getenv("PS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("PS_TEST_FILTER"));
	/* Orphaned raw clone children come back to the test, to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
