/* placeholder */
typedef int ps_placeholder_cmd_gc;
