/* SPDX-License-Identifier: MIT */
/*
 * mapfile.h - the group's mapping file (DESIGN.md "Mapping file"):
 *
 *   # portshim map v1 group=g1
 *   tcp 8080 24117 4242
 *   udp 5353 24118 4242
 *
 * Rewritten by write-to-temp-and-rename in the same folder, so a reader
 * never sees half a file. The temp file is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (a pre-placed symlink or file there is never
 * followed or reused), and rename() replaces a symlink at the final path
 * rather than following it.
 */
#ifndef PS_MAPFILE_H
#define PS_MAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "portspec.h"

struct ps_map_entry {
	enum ps_proto proto;
	uint16_t vport;
	uint16_t real;
	uint32_t pid;
};

/* The first line of a mapping file, before the group's name. */
#define PS_MAP_HEADER "# portshim map v1 group="

/*
 * Writes the mapping of group atomically to path. Entries are written in
 * the order given. No allocation (the text is built in a bounded stack
 * buffer and written in chunks). Returns 0 or -errno.
 */
int ps_mapfile_write(const char *path, const char *group,
		     const struct ps_map_entry *ents, size_t n);

/*
 * Parses a mapping file. Fills up to max entries, sets *n to the number
 * of entries in the file and copies the group name into group
 * (PS_GROUP_MAX + 1 bytes) when non-NULL. Returns 0, -errno on I/O
 * errors, -EPERM for a file ps_mapfile_trusted refuses, or -EBADMSG for
 * a malformed file.
 */
int ps_mapfile_read(const char *path, char *group, struct ps_map_entry *ents,
		    size_t max, size_t *n);

/*
 * Makes sure the mapping file at path is ours before a run starts, so
 * that no other user can put one there later (DESIGN.md: a reader must
 * never get another user's ports). In a folder others may write to, the
 * first to create a name owns it, and in a sticky folder (/tmp) only its
 * owner can replace or remove it: so path is created (empty mapping of
 * group) if absent, and kept as it is if it is a regular file of ours
 * (a run joining the group keeps its mapping). Returns 0, or:
 *   -EPERM   the file exists and another user owns it (*owner set), or
 *            it is not a regular file or symlink of ours;
 *   -EACCES  the folder can be written by others and is not sticky: any
 *            of them could replace the file at any time;
 *   -errno   the folder cannot be opened, or the file not created.
 */
int ps_mapfile_claim(const char *path, const char *group, uid_t *owner);

/*
 * True if a mapping file with these attributes may be believed: a
 * regular file owned by the reader's effective user or by root (another
 * user's file can say anything).
 */
bool ps_mapfile_trusted(const struct stat *st);

/* Removes the mapping file (and nothing else). Returns 0 or -errno. */
int ps_mapfile_remove(const char *path);

#endif
