/* SPDX-License-Identifier: MIT */
/*
 * statedir.h - the per-user state directory that holds the registry and
 * the default mapping files: /dev/shm/portshim-<uid>/, or
 * $XDG_RUNTIME_DIR/portshim/ when /dev/shm is unusable or another user
 * took that name first.
 *
 * The directory is created 0700 and then verified through an
 * O_DIRECTORY|O_NOFOLLOW descriptor: a directory, owned by geteuid(), no
 * group or other permission bits. Files in it are opened relative to that
 * descriptor (openat), so nobody can swap a path component underneath us.
 */
#ifndef PS_STATEDIR_H
#define PS_STATEDIR_H

#include <stddef.h>

/*
 * Opens (creating if needed) and verifies the state directory. On success
 * returns a directory descriptor (O_CLOEXEC) and writes its path into
 * path (len bytes), and into why either "" or, when another user holds
 * /dev/shm/portshim-<uid> and $XDG_RUNTIME_DIR/portshim is used instead,
 * a one-line notice saying so. On failure returns -errno and writes a
 * one-line reason naming the path and what to do into why.
 * getenv_fn supplies XDG_RUNTIME_DIR (NULL means no fallback).
 */
int ps_statedir_open(const char *(*getenv_fn)(const char *), char *path,
		     size_t len, char *why, size_t whylen);

/*
 * Verifies an already open directory descriptor: directory, owned by
 * geteuid(), mode without group/other bits. Returns 0 or -EPERM/-ENOTDIR
 * with a reason in why (naming path).
 */
int ps_statedir_verify(int dirfd, const char *path, char *why, size_t whylen);

/*
 * Splits path into its directory and base name and opens the directory
 * (O_DIRECTORY|O_CLOEXEC, following symlinks in the directory part only
 * as the user wrote it). Returns the descriptor and points *base into
 * path, or -errno. Used for user-given files (PORTSHIM_REGISTRY,
 * PORTSHIM_MAP_FILE) so the final component is handled with openat.
 */
int ps_open_parent(const char *path, const char **base);

#endif
