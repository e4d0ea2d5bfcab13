/* SPDX-License-Identifier: MIT */
/*
 * handoff.h - the registry handed down to a group's processes that run
 * as another user.
 *
 * A root `portshim run` keeps its registry descriptor open across exec in
 * CMD and names it in PORTSHIM_REGISTRY_FD as "FD:DEV:INO:UID" (the
 * descriptor, the file's device and inode, its owner). A process of the
 * group that runs as a uid other than UID (a child started through
 * runuser, su or setpriv; a server that switched user before its first
 * bind) maps the registry through that descriptor instead of opening a
 * registry of its own. Handing down the descriptor is the owner's act:
 * nobody else gets write access to the registry, and a descriptor that
 * was closed or replaced is refused, never swapped for another file.
 */
#ifndef PS_HANDOFF_H
#define PS_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PS_HANDOFF_ENV "PORTSHIM_REGISTRY_FD"

struct ps_handoff {
	int fd;
	uint64_t dev, ino;
	uid_t uid;
};

/* Parses "FD:DEV:INO:UID". Returns 0, or -EINVAL (NULL text included). */
int ps_handoff_parse(const char *text, struct ps_handoff *h);

/* Formats the hand-down of descriptor fd into out. Returns 0 or -errno. */
int ps_handoff_format(int fd, char *out, size_t len);

/*
 * Checks that h->fd is still the file it names: 0, -EBADF (closed), or
 * -ESTALE (the number now refers to another file).
 */
int ps_handoff_check(const struct ps_handoff *h);

#endif
