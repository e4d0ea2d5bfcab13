/* SPDX-License-Identifier: MIT */
/*
 * pssv.c - a small server and client for the supervisor's tests, meant to
 * be linked statically (cc -static), so that no preload library can see
 * it: only `portshim run --supervise` can move its ports.
 *
 *   pssv serve [-r] PORT ID [COUNT]
 *       TCP server on 0.0.0.0:PORT; prints "port=P" (P from
 *       getsockname) once listening, then answers each connection with
 *       "ID\n" (COUNT connections, default: forever).
 *   pssv get [-r] [-n] [-6] [-a ADDR] PORT
 *       TCP client to 127.0.0.1:PORT (::1 with -6, the IPv4 address ADDR
 *       with -a): prints the line it
 *       reads, then "peer=P" (P from getpeername). -n: non-blocking
 *       connect (must give EINPROGRESS), then poll and SO_ERROR.
 *   pssv udp-serve PORT ID
 *       UDP server on 127.0.0.1:PORT; prints "port=P", answers every
 *       datagram with ID.
 *   pssv udp-get MODE PORT
 *       UDP client: sends to 127.0.0.1:PORT with MODE (sendto, sendmsg,
 *       sendmmsg or connect+send), prints the answer.
 *   pssv tcp-sendto PORT OTHER
 *       TCP client to 127.0.0.1:PORT that sends "x\n" with sendto()
 *       naming 127.0.0.1:OTHER and no MSG_FASTOPEN (the kernel ignores
 *       that address on a connected TCP socket); prints "sent" or the
 *       error, then the line the server sent.
 *   pssv files DIR COUNT STATUS
 *       writes, reads back, renames, stats and removes COUNT files in
 *       DIR; exits with STATUS if all went well, 99 otherwise.
 *   pssv hold PORT
 *       TCP listener on 127.0.0.1:PORT with a backlog of 0 that never
 *       accepts: the second connect to it blocks. Prints "port=P".
 *   pssv uring
 *       prints the errno name io_uring_setup fails with ("ok" if not).
 *   pssv deny NAME CMD [ARG]...
 *       runs CMD with the system call NAME (seccomp or pidfd_getfd)
 *       failing with ENOSYS, as on a kernel without it.
 *
 * -r makes bind and connect raw system calls (syscall(SYS_bind, ...)).
 * -m makes the serve and get sockets Multipath TCP (IPPROTO_MPTCP), as
 * Go 1.24's listeners are by default.
 * Exit status 0 on success; 1 with a message on stderr on failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

static int raw;

static void die(const char *what)
{
	fprintf(stderr, "pssv: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The protocol of serve's and get's sockets: TCP, or MPTCP with -m. */
static int stream_proto = IPPROTO_TCP;
/* get's IPv4 address (-a). */
static const char *get_addr = "127.0.0.1";

static int do_bind(int fd, const struct sockaddr *a, socklen_t l)
{
	if (raw)
		return (int)syscall(SYS_bind, fd, a, l);
	return bind(fd, a, l);
}

static int do_connect(int fd, const struct sockaddr *a, socklen_t l)
{
	if (raw)
		return (int)syscall(SYS_connect, fd, a, l);
	return connect(fd, a, l);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void v4(struct sockaddr_in *a, const char *host, unsigned port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, host, &a->sin_addr);
}

static int serve(unsigned port, const char *id, long count)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, c, one = 1;
	char line[256];

	fd = socket(AF_INET, SOCK_STREAM, stream_proto);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	v4(&a, "0.0.0.0", port);
	if (do_bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	if (listen(fd, 64) != 0)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		die("getsockname");
	printf("port=%u\n", port_of(&ss));
	fflush(stdout);
	snprintf(line, sizeof(line), "%s\n", id);
	for (long i = 0; count < 0 || i < count; i++) {
		c = accept(fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		if (write(c, line, strlen(line)) < 0)
			die("write");
		close(c);
	}
	close(fd);
	return 0;
}

static int get(unsigned port, int nonblock, int six)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, plen = sizeof(peer);
	int fd, err = 0, rc;
	char buf[256];
	ssize_t n;

	memset(&ss, 0, sizeof(ss));
	if (six) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((unsigned short)port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		v4((struct sockaddr_in *)&ss, get_addr, port);
		len = sizeof(struct sockaddr_in);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0),
		    stream_proto);
	if (fd < 0)
		die("socket");
	rc = do_connect(fd, (struct sockaddr *)&ss, len);
	if (nonblock) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (rc == 0 || errno != EINPROGRESS) {
			fprintf(stderr,
				"pssv: non-blocking connect gave %d "
				"(%s), not EINPROGRESS\n",
				rc, rc ? strerror(errno) : "success");
			return 1;
		}
		if (poll(&p, 1, 10000) != 1)
			die("poll");
		len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			die("getsockopt");
		if (err != 0) {
			errno = err;
			die("connect (SO_ERROR)");
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	} else if (rc != 0) {
		die("connect");
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		die("read");
	buf[n] = '\0';
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		die("getpeername");
	printf("%speer=%u\n", buf, port_of(&peer));
	close(fd);
	return 0;
}

static int tcp_sendto(unsigned port, unsigned other)
{
	struct sockaddr_in srv, oth;
	char buf[256];
	ssize_t n;
	int fd;

	v4(&srv, "127.0.0.1", port);
	v4(&oth, "127.0.0.1", other);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (do_connect(fd, (struct sockaddr *)&srv, sizeof(srv)) != 0)
		die("connect");
	if (sendto(fd, "x\n", 2, 0, (struct sockaddr *)&oth, sizeof(oth)) == 2)
		printf("sent\n");
	else
		printf("sendto: %s\n", strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		die("read");
	buf[n] = '\0';
	printf("%s", buf);
	close(fd);
	return 0;
}

static int udp_serve(unsigned port, const char *id)
{
	struct sockaddr_in a;
	struct sockaddr_storage from, ss;
	socklen_t flen, len = sizeof(ss);
	char buf[512];
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	v4(&a, "127.0.0.1", port);
	if (do_bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		die("getsockname");
	printf("port=%u\n", port_of(&ss));
	fflush(stdout);
	for (;;) {
		flen = sizeof(from);
		if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
			     &flen) < 0) {
			if (errno == EINTR)
				continue;
			die("recvfrom");
		}
		if (sendto(fd, id, strlen(id), 0, (struct sockaddr *)&from,
			   flen) < 0)
			die("sendto");
	}
	return 0;
}

static int udp_get(const char *mode, unsigned port)
{
	struct sockaddr_in a;
	struct iovec iov = { (void *)"ping", 4 };
	struct msghdr m;
	struct mmsghdr mm;
	struct pollfd p;
	char buf[512];
	ssize_t n;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	v4(&a, "127.0.0.1", port);
	memset(&m, 0, sizeof(m));
	m.msg_name = &a;
	m.msg_namelen = sizeof(a);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (strcmp(mode, "sendto") == 0) {
		n = sendto(fd, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a));
	} else if (strcmp(mode, "sendmsg") == 0) {
		n = sendmsg(fd, &m, 0);
	} else if (strcmp(mode, "sendmmsg") == 0) {
		memset(&mm, 0, sizeof(mm));
		mm.msg_hdr = m;
		n = sendmmsg(fd, &mm, 1, 0);
		if (n == 1 && mm.msg_len != 4) {
			fprintf(stderr, "pssv: sendmmsg msg_len %u\n",
				mm.msg_len);
			return 1;
		}
	} else {
		if (do_connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
			die("connect");
		n = send(fd, "ping", 4, 0);
	}
	if (n < 0)
		die(mode);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1) {
		fprintf(stderr, "pssv: no answer\n");
		return 1;
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		die("recv");
	buf[n] = '\0';
	printf("%s\n", buf);
	return 0;
}

static int files(const char *dir, long count, int status)
{
	char path[4096], path2[4096], buf[8192], back[8192];
	struct stat st;
	int fd;

	for (long i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		snprintf(path2, sizeof(path2), "%s/g%ld", dir, i);
		memset(buf, (int)('a' + i % 26), sizeof(buf));
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) ||
		    fsync(fd) != 0 || close(fd) != 0)
			goto fail;
		if (rename(path, path2) != 0 || stat(path2, &st) != 0 ||
		    st.st_size != sizeof(buf))
			goto fail;
		fd = open(path2, O_RDONLY);
		if (fd < 0 || read(fd, back, sizeof(back)) != sizeof(back) ||
		    close(fd) != 0 || memcmp(buf, back, sizeof(buf)) != 0)
			goto fail;
		if (unlink(path2) != 0)
			goto fail;
	}
	return status;
fail:
	fprintf(stderr, "pssv: files: %s: %s\n", path, strerror(errno));
	return 99;
}

static int hold(unsigned port)
{
	struct sockaddr_in a;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	v4(&a, "127.0.0.1", port);
	if (do_bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("bind");
	if (listen(fd, 0) != 0)
		die("listen");
	printf("port=%u\n", port);
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

static int uring(void)
{
	char params[120];

	memset(params, 0, sizeof(params));
	if (syscall(SYS_io_uring_setup, 1, params) >= 0) {
		printf("ok\n");
		return 0;
	}
	printf("%s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
	return 0;
}

static int deny(const char *name, char **cmd)
{
	long nr = strcmp(name, "seccomp") == 0	   ? SYS_seccomp :
		  strcmp(name, "pidfd_getfd") == 0 ? SYS_pidfd_getfd :
						     -1;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { 4, f };

	if (nr < 0) {
		fprintf(stderr, "pssv: deny: unknown call %s\n", name);
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		die("seccomp");
	execvp(cmd[0], cmd);
	die(cmd[0]);
	return 1;
}

int main(int argc, char **argv)
{
	int nonblock = 0, six = 0, i = 2;

	if (argc < 2)
		goto usage;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-r") == 0)
			raw = 1;
		else if (strcmp(argv[i], "-n") == 0)
			nonblock = 1;
		else if (strcmp(argv[i], "-6") == 0)
			six = 1;
		else if (strcmp(argv[i], "-m") == 0)
			stream_proto = IPPROTO_MPTCP;
		else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc)
			get_addr = argv[++i];
		else
			goto usage;
	}
	argv += i;
	argc -= i;
	if (strcmp(argv[-i + 1], "serve") == 0 && argc >= 2)
		return serve((unsigned)atoi(argv[0]), argv[1],
			     argc > 2 ? atol(argv[2]) : -1);
	if (strcmp(argv[-i + 1], "get") == 0 && argc == 1)
		return get((unsigned)atoi(argv[0]), nonblock, six);
	if (strcmp(argv[-i + 1], "udp-serve") == 0 && argc == 2)
		return udp_serve((unsigned)atoi(argv[0]), argv[1]);
	if (strcmp(argv[-i + 1], "udp-get") == 0 && argc == 2)
		return udp_get(argv[0], (unsigned)atoi(argv[1]));
	if (strcmp(argv[-i + 1], "tcp-sendto") == 0 && argc == 2)
		return tcp_sendto((unsigned)atoi(argv[0]),
				  (unsigned)atoi(argv[1]));
	if (strcmp(argv[-i + 1], "files") == 0 && argc == 3)
		return files(argv[0], atol(argv[1]), atoi(argv[2]));
	if (strcmp(argv[-i + 1], "hold") == 0 && argc == 1)
		return hold((unsigned)atoi(argv[0]));
	if (strcmp(argv[-i + 1], "uring") == 0 && argc == 0)
		return uring();
	if (strcmp(argv[-i + 1], "deny") == 0 && argc >= 2)
		return deny(argv[0], argv + 1);
usage:
	fprintf(stderr, "usage: pssv serve|get|tcp-sendto|udp-serve|udp-get|"
			"files|hold|uring|deny ...\n");
	return 2;
}
