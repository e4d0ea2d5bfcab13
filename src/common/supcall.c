/*
 * supcall.c - socket system calls carrying the supervisor's cookie.
 */
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supcall.h"

bool ps_supcall_parse(const char *text, uint64_t *cookie)
{
	uint64_t v = 0;
	int i;

	if (text == NULL)
		return false;
	for (i = 0; i < PS_SUPCALL_COOKIE_LEN; i++) {
		char c = text[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	if (text[i] != '\0' || v == 0)
		return false;
	*cookie = v;
	return true;
}

bool ps_supcall_supervised(void)
{
	uint64_t cookie;

	return ps_supcall_parse(secure_getenv(PS_SUPCALL_ENV), &cookie) &&
	       prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == SECCOMP_MODE_FILTER;
}

void ps_supcall_format(uint64_t cookie, char out[PS_SUPCALL_COOKIE_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = PS_SUPCALL_COOKIE_LEN - 1; i >= 0; i--) {
		out[i] = hex[cookie & 0xf];
		cookie >>= 4;
	}
	out[PS_SUPCALL_COOKIE_LEN] = '\0';
}

/*
 * The cookie always travels in the sixth argument; the unused ones in
 * between are zero.
 */
int ps_supcall_bind(uint64_t cookie, int fd, const struct sockaddr *addr,
		    socklen_t len)
{
	return (int)syscall(SYS_bind, fd, addr, len, 0, 0, cookie);
}

int ps_supcall_connect(uint64_t cookie, int fd, const struct sockaddr *addr,
		       socklen_t len)
{
	return (int)syscall(SYS_connect, fd, addr, len, 0, 0, cookie);
}

int ps_supcall_getsockname(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len)
{
	return (int)syscall(SYS_getsockname, fd, addr, len, 0, 0, cookie);
}

int ps_supcall_getpeername(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len)
{
	return (int)syscall(SYS_getpeername, fd, addr, len, 0, 0, cookie);
}

ssize_t ps_supcall_sendmsg(uint64_t cookie, int fd, const struct msghdr *msg,
			   int flags)
{
	return syscall(SYS_sendmsg, fd, msg, flags, 0, 0, cookie);
}

int ps_supcall_sendmmsg(uint64_t cookie, int fd, struct mmsghdr *vec,
			unsigned int vlen, int flags)
{
	return (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags, 0, cookie);
}

ssize_t ps_supcall_sendto(uint64_t cookie, int fd, const void *buf,
			  size_t len, int flags, const struct sockaddr *addr,
			  socklen_t addrlen)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	if (addr != NULL) {
		msg.msg_name = (void *)addr;
		msg.msg_namelen = addrlen;
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	return ps_supcall_sendmsg(cookie, fd, &msg, flags);
}
