/* SPDX-License-Identifier: MIT */
/*
 * reglock.c - the registry's robust mutex, taken with a bounded wait.
 *
 * Why not pthread_mutex_lock: it waits forever. A holder stopped by
 * SIGSTOP or a debugger, a vfork() or raw clone() child killed inside
 * the lock (the kernel does not release a lock for a thread that has no
 * robust list, and such a child locks with its parent's thread id), or a
 * lock word overwritten with some live pid would each make every waiter
 * wait forever, with its signals blocked.
 *
 * Why slices: signals must be blocked while the lock is held (a handler
 * that binds would find its own thread holding it, PITFALLS 4), and the
 * mutex is taken with signals blocked so that no handler runs between
 * taking it and blocking them. So the wait is cut into slices of
 * PS_LOCK_SLICE_MS with pthread_mutex_clocklock, and the caller's own
 * mask is restored between slices: a pending SIGINT or SIGTERM is
 * delivered (and kills, or runs its handler) within one slice.
 *
 * Why "without progress": a busy registry can keep a waiter waiting
 * longer than the bound and still be healthy. Every taker bumps a
 * generation word in the header; the bound runs only while it stands
 * still, i.e. while one holder keeps the lock.
 *
 * Releasing a dead holder: the kernel releases a robust mutex of a dead
 * thread by rewriting its lock word to FUTEX_OWNER_DIED (keeping
 * FUTEX_WAITERS) and waking a waiter; the next locker then gets
 * EOWNERDEAD and repairs. We do the same, with one compare-and-swap on
 * the exact word read, for a word that names no live thread (a thread
 * that holds the lock is alive: every holder passed
 * ps_reglock_context_ok, so the word names the real holder) or a thread
 * of a process that does not map the registry (holding it needs the
 * mapping, which is never unmapped). Nothing is ever taken from a live
 * thread that maps the registry, stopped or not: the waiter gives up and
 * names it instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "reglock.h"

/* The longest stretch with signals blocked while waiting. */
#define PS_LOCK_SLICE_MS 20u
/* Slices without progress before the holder is looked at in /proc. */
#define LOOK_AFTER_SLICES 3u

/* glibc's markers in the owner field of a robust mutex. */
#define OWNER_INCONSISTENT INT_MAX
#define OWNER_NOTRECOVERABLE (INT_MAX - 1)

#if defined(__GLIBC__) && defined(__x86_64__)
#define HAVE_GLIBC_MUTEX_LAYOUT 1
#endif

int ps_reglock_init(pthread_mutex_t *m)
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

/* The lock word, where the kernel and glibc keep the holder's tid. */
static uint32_t *lock_word(const pthread_mutex_t *m)
{
	return (uint32_t *)(uintptr_t)m;
}

#ifdef HAVE_GLIBC_MUTEX_LAYOUT
/* The kind ps_reglock_init makes, computed once per process. */
static int reference_kind(void)
{
	static int kind = -1;
	int k = __atomic_load_n(&kind, __ATOMIC_RELAXED);
	pthread_mutex_t m;

	if (k >= 0)
		return k;
	memset(&m, 0, sizeof(m));
	if (ps_reglock_init(&m) != 0)
		return -1;
	k = m.__data.__kind;
	pthread_mutex_destroy(&m);
	__atomic_store_n(&kind, k, __ATOMIC_RELAXED);
	return k;
}
#endif

int ps_reglock_validate(const pthread_mutex_t *m, char *why, size_t len)
{
#ifdef HAVE_GLIBC_MUTEX_LAYOUT
	/*
	 * glibc dispatches on the kind: a kind with, say, the elision bit
	 * runs transactional-memory instructions (SIGILL on most CPUs), an
	 * unknown one returns EINVAL or worse. The kind never changes after
	 * initialisation, so anything but the exact value is garbage.
	 */
	int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
	int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
	int ref = reference_kind();

	if (ref >= 0 && kind != ref) {
		if (why != NULL)
			snprintf(why, len,
				 "its lock is corrupt (mutex kind "
				 "%#x, expected %#x)",
				 (unsigned)kind, (unsigned)ref);
		return -EUCLEAN;
	}
	if (owner == OWNER_NOTRECOVERABLE) {
		if (why != NULL)
			snprintf(why, len, "its lock is not recoverable");
		return -ENOTRECOVERABLE;
	}
	if (owner < 0 ||
	    (owner > (int)FUTEX_TID_MASK && owner != OWNER_INCONSISTENT)) {
		if (why != NULL)
			snprintf(why, len, "its lock is corrupt (owner %d)",
				 owner);
		return -EUCLEAN;
	}
#else
	(void)m;
	(void)why;
	(void)len;
#endif
	return 0;
}

/*
 * The thread id this thread has been checked with. Thread-local memory
 * is shared with a vfork() child and copied into a raw clone() child,
 * so it holds the parent's id there, never the child's own: the cache
 * cannot let such a child through.
 */
static __thread pid_t checked_tid __attribute__((tls_model("initial-exec")));

bool ps_reglock_context_ok(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	void *head = NULL;
	size_t hlen = 0;

	if (tid == checked_tid)
		return true;
	/* The kernel's robust list: NULL in vfork and raw clone children. */
	if (syscall(SYS_get_robust_list, 0, &head, &hlen) != 0 || head == NULL)
		return false;
#ifdef HAVE_GLIBC_MUTEX_LAYOUT
	{
		/*
		 * glibc writes its cached thread id into a mutex's owner
		 * field: a private mutex shows it without a system call. It
		 * is the parent's in a raw clone child that registered a
		 * robust list of its own.
		 */
		pthread_mutex_t probe = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
		int owner;

		if (pthread_mutex_lock(&probe) != 0)
			return false;
		owner = probe.__data.__owner;
		pthread_mutex_unlock(&probe);
		if (owner != tid)
			return false;
	}
#endif
	checked_tid = tid;
	return true;
}

/* ------------------------------------------------------------ holder */

/* True if /proc is this PID namespace's (its ids are ours). */
static bool proc_is_ours(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strtol(buf, NULL, 10) == (long)getpid();
}

/* Reads /proc/TID/status: Name, State, Tgid. Returns 0, -ENOENT, -errno. */
static int read_status(pid_t tid, struct ps_lock_holder *h)
{
	char path[64], buf[2048];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH ? -ENOENT : -errno;
	buf[n] = '\0';
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl != NULL)
			*nl = '\0';
		if (strncmp(line, "Name:\t", 6) == 0) {
			/* Only what a shell would show: no escapes. */
			size_t k = 0;

			for (const char *c = line + 6;
			     *c && k < sizeof(h->comm) - 1; c++)
				h->comm[k++] =
					(*c >= 0x20 && *c < 0x7f) ? *c : '?';
			h->comm[k] = '\0';
		} else if (strncmp(line, "State:\t", 7) == 0) {
			h->state = line[7];
		} else if (strncmp(line, "Tgid:\t", 6) == 0) {
			h->pid = (pid_t)strtol(line + 6, NULL, 10);
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return 0;
}

/*
 * True if process tid maps the file dev/ino, or if that cannot be told
 * (another user's process, a non-dumpable one): never a false "no".
 */
static bool maps_file(pid_t tid, dev_t dev, ino_t ino)
{
	char path[64], buf[4096], want[64];
	size_t have = 0, wlen;
	bool found = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	/* "start-end perms offset MAJ:MIN inode path": match " MAJ:MIN
	 * inode " (the kernel prints the device as %02x:%02x). */
	snprintf(want, sizeof(want), " %02x:%02x %lu ", major(dev), minor(dev),
		 (unsigned long)ino);
	wlen = strlen(want);
	for (;;) {
		char *line, *nl;

		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0) {
			found = true; /* cannot tell */
			break;
		}
		have += (size_t)n;
		buf[have] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if (strstr(line, want) != NULL) {
				found = true;
				break;
			}
			line = nl + 1;
		}
		if (found || n == 0)
			break;
		/* Keep the partial line; a line longer than the buffer
		 * (a long path) loses its head, not its device field. */
		have = strlen(line);
		if (have > wlen + 64) {
			memmove(buf, line + have - (wlen + 64), wlen + 64);
			have = wlen + 64;
		} else {
			memmove(buf, line, have);
		}
	}
	close(fd);
	return found;
}

void ps_reglock_holder(const pthread_mutex_t *m, dev_t dev, ino_t ino,
		       struct ps_lock_holder *h)
{
	uint32_t w = __atomic_load_n(lock_word(m), __ATOMIC_ACQUIRE);
	int rc;

	memset(h, 0, sizeof(*h));
	h->word = w;
	h->tid = (pid_t)(w & FUTEX_TID_MASK);
	if (h->tid == 0) {
		h->kind = PS_HOLDER_NONE;
		return;
	}
	h->kind = PS_HOLDER_RUNNING;
	/* A /proc of another namespace would name other processes. */
	if (!proc_is_ours())
		return;
	rc = read_status(h->tid, h);
	if (rc == -ENOENT || h->state == 'Z' || h->state == 'X') {
		/* A thread with a robust list that died had its lock
		 * released before it became a zombie: this one had none. */
		h->kind = PS_HOLDER_GONE;
		return;
	}
	if (rc != 0)
		return;
	if (!maps_file(h->tid, dev, ino))
		h->kind = PS_HOLDER_STRANGER;
	else if (h->state == 'T' || h->state == 't')
		h->kind = PS_HOLDER_STOPPED;
}

int ps_reglock_release_dead(pthread_mutex_t *m, const struct ps_lock_holder *h)
{
	uint32_t expect = h->word;
	uint32_t dead = (h->word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;

	/*
	 * A word with the waiters bit and no owner (left by a process
	 * killed inside the C library's lock or unlock path with no robust
	 * list to finish it) can never be taken: glibc only takes a word
	 * of 0 or one marked dead. Nobody holds it; what its last holder
	 * left is unknown, so it is marked dead too: the next taker
	 * repairs the table.
	 */
	if (h->kind == PS_HOLDER_NONE && h->word != 0 &&
	    (h->word & (FUTEX_TID_MASK | FUTEX_OWNER_DIED)) == 0)
		dead = h->word | FUTEX_OWNER_DIED;
	else if ((h->kind != PS_HOLDER_GONE && h->kind != PS_HOLDER_STRANGER) ||
		 h->tid == 0 || (h->word & FUTEX_OWNER_DIED))
		return -EAGAIN;
	if (!__atomic_compare_exchange_n(lock_word(m), &expect, dead, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return -EAGAIN;
	/* Every waiter retries (the kernel wakes one; ours poll anyway). */
	syscall(SYS_futex, lock_word(m), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	return 0;
}

void ps_reglock_describe(const struct ps_lock_holder *h, char *buf, size_t len)
{
	char who[96];
	const char *state;

	if (h->pid != 0 && h->pid != h->tid)
		snprintf(who, sizeof(who), "thread %d of pid %d (%s)",
			 (int)h->tid, (int)h->pid, h->comm);
	else if (h->comm[0] != '\0')
		snprintf(who, sizeof(who), "pid %d (%s)", (int)h->tid, h->comm);
	else
		snprintf(who, sizeof(who), "pid %d", (int)h->tid);
	switch (h->kind) {
	case PS_HOLDER_STOPPED:
		state = h->state == 't' ? ", stopped by a debugger" :
					  ", stopped (SIGSTOP or a freezer)";
		break;
	case PS_HOLDER_GONE:
		state = ", which is gone";
		break;
	case PS_HOLDER_STRANGER:
		state = ", which does not map the registry";
		break;
	case PS_HOLDER_RUNNING:
		state = h->state == 'D' ? ", in an uninterruptible wait" :
					  ", running";
		break;
	default:
		snprintf(buf, len, "nobody it can name (lock word %#x)",
			 (unsigned)h->word);
		return;
	}
	snprintf(buf, len, "%s%s", who, state);
}

/* ----------------------------------------------------------- acquire */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ps_reglock_acquire(pthread_mutex_t *m, const uint64_t *gen,
		       const sigset_t *oldmask, uint32_t timeout_ms, dev_t dev,
		       ino_t ino, int (*ok)(void *), void *arg,
		       struct ps_lock_holder *h)
{
	uint64_t g0 = __atomic_load_n(gen, __ATOMIC_RELAXED);
	uint64_t t0 = mono_ms();
	unsigned stuck = 0;
	sigset_t all;
	int rc;

	memset(h, 0, sizeof(*h));
	sigfillset(&all);
	rc = pthread_mutex_trylock(m);
	while (rc == EBUSY || rc == ETIMEDOUT) {
		struct timespec until;
		uint64_t g, now;

		if (rc == ETIMEDOUT) {
			g = __atomic_load_n(gen, __ATOMIC_RELAXED);
			now = mono_ms();
			if (g != g0) {
				g0 = g;
				t0 = now;
				stuck = 0;
			} else if (++stuck >= LOOK_AFTER_SLICES) {
				ps_reglock_holder(m, dev, ino, h);
				if (ps_reglock_release_dead(m, h) == 0) {
					t0 = now;
					stuck = 0;
				} else if (now - t0 >= timeout_ms) {
					return -ETIMEDOUT;
				}
			}
		}
		/* Pending signals are delivered here, never in the lock. */
		pthread_sigmask(SIG_SETMASK, oldmask, NULL);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
		if (ok != NULL && (rc = ok(arg)) != 0)
			return rc;
		if ((rc = ps_reglock_validate(m, NULL, 0)) != 0)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)PS_LOCK_SLICE_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &until);
	}
	if (rc == 0 || rc == EOWNERDEAD)
		return rc;
	return -rc;
}

int ps_reglock_timeout_parse(const char *text, uint32_t *ms)
{
	unsigned long s = 0, frac = 0, scale = 100;
	const char *p = text;

	if (text == NULL || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		s = s * 10 + (unsigned long)(*p - '0');
		if (s > PS_LOCK_TIMEOUT_MAX_S)
			return -EINVAL;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale == 0)
				return -EINVAL; /* below a millisecond */
			frac += (unsigned long)(*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0' || (s == 0 && frac == 0) ||
	    s * 1000 + frac > PS_LOCK_TIMEOUT_MAX_S * 1000ul)
		return -EINVAL;
	*ms = (uint32_t)(s * 1000 + frac);
	return 0;
}
