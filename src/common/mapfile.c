/* placeholder */
typedef int ps_placeholder_mapfile;
