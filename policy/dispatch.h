/*
 * dispatch.h: which message inspectors (inspect.h) read which messages.
 * Internal to policy/; call.c is its one user.
 */
#ifndef BG_DISPATCH_H
#define BG_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "policy/inspect.h"
#include "policy/policy_int.h"

typedef int (*bg_inspector_fn)(struct bg_inspect *r, const uint8_t *msg, size_t len);

struct bg_inspector_row {
  enum bg_mkind kind;                         /* the call's method (methods.c) */
  int response;                               /* 0: client messages, 1: backend messages */
  int (*when)(const struct bg_profile *prof); /* NULL: always, else only when it returns 1 */
  bg_inspector_fn fn;
};

/* The table, in order.  A message goes through every row that matches its
 * call's kind, its direction and the profile, in table order; the caller
 * stops at the first denial, drop or wait for backend facts.  A method with no
 * matching row is not inspected at all (its messages are not even parsed). */
const struct bg_inspector_row *bg_inspectors(size_t *n);

#endif
