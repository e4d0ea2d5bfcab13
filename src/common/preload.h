/* SPDX-License-Identifier: MIT */
/*
 * preload.h - reading an LD_PRELOAD list: entries separated by spaces
 * and colons, as the dynamic loader reads it. No allocation: the exec
 * wrappers use it in vfork children.
 */
#ifndef PS_PRELOAD_H
#define PS_PRELOAD_H

#include <stddef.h>

/*
 * The first entry of list (the value, without "LD_PRELOAD=") that is path
 * exactly or, with base not NULL, whose last component is base ("base" or
 * ".../base"): returns its length and points *at to it; 0 if none.
 */
size_t ps_preload_find(const char *list, const char *path, const char *base,
		       const char **at);

#endif
