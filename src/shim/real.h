/*
 * real.h - the real libc functions behind the interposed names.
 *
 * Resolved with dlsym(RTLD_NEXT) once, under pthread_once, from the
 * library constructor and lazily from the first call (another library's
 * constructor may call connect() before ours has run). A lookup that
 * fails, or returns our own function, falls back to the raw system call,
 * so the host program is never left without bind() or connect().
 */
#ifndef PS_REAL_H
#define PS_REAL_H

#include <sys/socket.h>
#include <sys/types.h>

struct ps_real {
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
};

/* Filled by ps_real_resolve; read-only afterwards. */
extern struct ps_real ps_real_fns;

/*
 * dlsym(RTLD_NEXT, name), rejecting a result equal to ours (our own
 * interposed definition); returns fallback then. For files that keep
 * their own small table of real symbols.
 */
void *ps_real_lookup(const char *name, void *ours, void *fallback);

/* Resolves the table (idempotent, thread-safe). */
void ps_real_resolve(void);

static inline const struct ps_real *ps_real(void)
{
	if (__builtin_expect(ps_real_fns.bind == NULL, 0))
		ps_real_resolve();
	return &ps_real_fns;
}

#endif
