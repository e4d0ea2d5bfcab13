/* SPDX-License-Identifier: MIT */
/*
 * reglock.h - the registry's robust mutex, taken with a bounded wait.
 *
 * One job: get the process-shared robust mutex that guards the registry
 * without ever waiting forever and without trusting bytes that any
 * process of the user can scribble on. It checks that the caller can
 * hold a robust mutex at all (a vfork() child or a raw clone() child has
 * no robust-futex list, so its death would leave the lock held forever),
 * validates the mutex's glibc layout before calling into pthread, waits
 * in short slices so that pending signals are delivered between them,
 * names the holder when it gives up, and releases a lock whose holder
 * cannot be holding it (no such thread, or a thread of a process that
 * does not map the registry) the way the kernel does for a dead holder.
 */
#ifndef PS_REGLOCK_H
#define PS_REGLOCK_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long a waiter waits while nobody gets the lock, by default. */
#define PS_LOCK_TIMEOUT_DEFAULT_MS 10000u
/* The longest PORTSHIM_LOCK_TIMEOUT accepted, in seconds. */
#define PS_LOCK_TIMEOUT_MAX_S 86400u

/* What the lock word says about who holds the lock. */
enum ps_holder_kind {
	PS_HOLDER_NONE = 0, /* nobody (or it changed while looking) */
	PS_HOLDER_RUNNING,  /* a live thread that maps the registry */
	PS_HOLDER_STOPPED,  /* the same, stopped (SIGSTOP, debugger) */
	PS_HOLDER_GONE,	    /* no such thread, or a zombie */
	PS_HOLDER_STRANGER, /* a live thread that does not map it */
};

struct ps_lock_holder {
	enum ps_holder_kind kind;
	uint32_t word; /* the lock word as it was read */
	pid_t tid;     /* the thread the lock word names */
	pid_t pid;     /* its process (0: unknown) */
	char state;    /* /proc state letter, 0 if unknown */
	char comm[17]; /* its command name (16 chars max) */
};

/*
 * Initialises m as the registry's mutex: process-shared, robust,
 * error-checking. Returns 0 or -errno (-ENOTSUP where robust futexes
 * are unavailable).
 */
int ps_reglock_init(pthread_mutex_t *m);

/*
 * Checks what can be checked of a mutex image before any pthread call
 * touches it: on glibc/x86_64, that its kind is exactly what
 * ps_reglock_init makes and that its owner field is a thread id or one
 * of glibc's two markers (inconsistent, not recoverable). Returns 0,
 * -EUCLEAN (garbage: why says what) or -ENOTRECOVERABLE.
 */
int ps_reglock_validate(const pthread_mutex_t *m, char *why, size_t len);

/*
 * True if this thread may take a robust mutex: the kernel has a robust
 * list for it and glibc's idea of its thread id is its real one. False
 * in a vfork() child and in a raw clone() child (both would lock with
 * the parent's thread id, and the kernel would not release the lock if
 * they died). One gettid() on the fast path.
 */
bool ps_reglock_context_ok(void);

/*
 * Takes m with signals blocked (the caller has blocked them and passes
 * the mask to restore between slices in oldmask). Waits in slices of at
 * most PS_LOCK_SLICE_MS, delivering pending signals between them, and
 * gives up with -ETIMEDOUT after timeout_ms without any process taking
 * the lock (progress is *gen, bumped by every taker). A holder that is
 * gone or a stranger is released as the kernel releases a dead robust
 * holder. ok(arg) is called before each slice (the file checks); its
 * error ends the wait. Returns 0, EOWNERDEAD (positive: the caller
 * repairs), or -errno; on -ETIMEDOUT, *h names the holder.
 */
int ps_reglock_acquire(pthread_mutex_t *m, const uint64_t *gen,
		       const sigset_t *oldmask, uint32_t timeout_ms, dev_t dev,
		       ino_t ino, int (*ok)(void *), void *arg,
		       struct ps_lock_holder *h);

/*
 * Looks at who the lock word of m names: describes it in *h. dev/ino
 * identify the registry file (a holder must map it).
 */
void ps_reglock_holder(const pthread_mutex_t *m, dev_t dev, ino_t ino,
		       struct ps_lock_holder *h);

/*
 * Marks the lock's holder dead, as the kernel does when a robust holder
 * dies: only if the lock word still is h->word and h is GONE or a
 * STRANGER. The next taker then gets EOWNERDEAD and repairs. Returns 0
 * or -EAGAIN (the word changed, or the holder is not one to release).
 */
int ps_reglock_release_dead(pthread_mutex_t *m, const struct ps_lock_holder *h);

/* "pid 123 (sleep), stopped" and the like, for messages. */
void ps_reglock_describe(const struct ps_lock_holder *h, char *buf, size_t len);

/*
 * Parses a PORTSHIM_LOCK_TIMEOUT value: seconds, with up to three
 * decimals ("10", "0.25"), more than 0 and at most
 * PS_LOCK_TIMEOUT_MAX_S. Returns 0 and *ms, or -EINVAL.
 */
int ps_reglock_timeout_parse(const char *text, uint32_t *ms);

#endif
