/*
 * attrparse.h: attribute values read as their Go consumers read them
 * (attrparse.c).  Internal to policy/.
 */
#ifndef BG_ATTRPARSE_H
#define BG_ATTRPARSE_H

#include <jansson.h>
#include <stddef.h>

/* strings.TrimSpace on s[0..n): *s and *n narrowed in place. */
void bg_go_trimspace(const char **s, size_t *n);
/* The image a build-arg:BUILDKIT_SYNTAX value names, as the dockerfile
 * frontend reads it: strings.SplitN(strings.TrimSpace(v), " ", 2)[0].
 * Points into v; -1 when that is empty. */
int bg_go_syntax_ref(const char *v, size_t n, const char **ref, size_t *reflen);
/* 1 when the keys of |obj|, an object Go decodes into a struct, match its
 * fields the same way for Go and for bg_json_struct_get; 0 with *why set. */
int bg_json_struct_keys_ok(json_t *obj, const char **why);
/* The value Go assigns to struct field |field| (ASCII, case-insensitive),
 * for an object bg_json_struct_keys_ok accepted; NULL when absent. */
json_t *bg_json_struct_get(json_t *obj, const char *field);

#endif
