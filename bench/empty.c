/* SPDX-License-Identifier: MIT */
/*
 * empty.c - a preloaded library that does nothing: the baseline of the
 * start-up row of scripts/bench (what preloading any library costs).
 */
void ps_bench_empty(void);

void ps_bench_empty(void)
{
}
