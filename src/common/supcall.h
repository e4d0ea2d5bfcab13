/* SPDX-License-Identifier: MIT */
/*
 * supcall.h - socket system calls that the seccomp supervisor lets
 * through.
 *
 * Under `portshim run --supervise`, the kernel stops every bind, connect,
 * getsockname, getpeername, sendmsg and sendmmsg of the supervised
 * processes and asks the supervisor what to do, and sendto too when it
 * names a destination. Some of those calls are portshim's own: the
 * preload library binding a rewritten port, or the supervisor itself
 * performing a call on a target's socket when it is supervised by an
 * outer supervisor. Intercepting them again would rewrite a port twice.
 *
 * So portshim's own calls carry a cookie: a random 64-bit value, chosen
 * by the supervisor and handed to its processes in PORTSHIM_SUPERVISED,
 * passed in the sixth argument register, which none of these calls uses.
 * The filter lets a call with the cookie through without a notification.
 * The kernel ignores the extra argument, so a cookie call behaves
 * exactly like the plain one, supervised or not. sendto uses all six
 * registers; its cookie form is the equivalent sendmsg.
 *
 * The cookie is not a security boundary: the supervisor rewrites ports
 * for programs that cooperate without knowing it, it does not confine
 * them.
 *
 * Every function here is a raw system call: no allocation, no lock, safe
 * in a signal handler and after fork. They return what the libc call
 * returns (-1 with errno set on failure).
 */
#ifndef PS_SUPCALL_H
#define PS_SUPCALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The variable that hands the cookie to supervised processes. */
#define PS_SUPCALL_ENV "PORTSHIM_SUPERVISED"

/* The cookie's text: exactly 16 lower-case hexadecimal digits. */
#define PS_SUPCALL_COOKIE_LEN 16

/*
 * Parses a cookie (exactly 16 hexadecimal digits, not all zero). Returns
 * true and stores it in *cookie, or false for anything else.
 */
bool ps_supcall_parse(const char *text, uint64_t *cookie);

/*
 * The cookie in PORTSHIM_SUPERVISED (read with secure_getenv): true with
 * *cookie, false if the variable is absent or not a cookie.
 */
bool ps_supcall_env_cookie(uint64_t *cookie);

/*
 * True if this process runs under a portshim supervisor: PORTSHIM_SUPERVISED
 * holds a cookie (read with secure_getenv) and a seccomp filter is in
 * force. Then static, Go and musl programs it execs are seen too (and,
 * under no_new_privs, set-id bits and file capabilities do not apply).
 */
bool ps_supcall_supervised(void);

/* Formats cookie as 16 lower-case hexadecimal digits and a NUL. */
void ps_supcall_format(uint64_t cookie, char out[PS_SUPCALL_COOKIE_LEN + 1]);

/*
 * A system call with up to four arguments, made directly rather than
 * through libc's syscall(): portshim's own processes may have the
 * preload library, which interposes syscall(). Returns what syscall()
 * returns (-1 with errno set on failure).
 */
long ps_supcall_direct(long nr, long a1, long a2, long a3, long a4);

int ps_supcall_bind(uint64_t cookie, int fd, const struct sockaddr *addr,
		    socklen_t len);
int ps_supcall_connect(uint64_t cookie, int fd, const struct sockaddr *addr,
		       socklen_t len);
int ps_supcall_getsockname(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len);
int ps_supcall_getpeername(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len);
ssize_t ps_supcall_sendmsg(uint64_t cookie, int fd, const struct msghdr *msg,
			   int flags);
int ps_supcall_sendmmsg(uint64_t cookie, int fd, struct mmsghdr *vec,
			unsigned int vlen, int flags);

/*
 * sendto as the equivalent sendmsg (one buffer, the destination as
 * msg_name), which has a free register for the cookie. A NULL addr gives
 * a sendmsg without a name, exactly like sendto's.
 */
ssize_t ps_supcall_sendto(uint64_t cookie, int fd, const void *buf, size_t len,
			  int flags, const struct sockaddr *addr,
			  socklen_t addrlen);

#endif
