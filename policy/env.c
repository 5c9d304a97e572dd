/*
 * env.c: the policy's only windows on the outside world that are not its
 * inputs: a clock and a random source (policy.h, struct bg_env).  They are
 * reached through the policy (or, for an inspection, struct bg_inspect), so a
 * test can fix both and compare audit lines and generated refs byte for byte.
 */
#include <sys/random.h>

#include "policy/policy_int.h"

static int system_now(void *arg, clockid_t which, struct timespec *ts)
{
  (void)arg;
  return clock_gettime(which, ts);
}

static int system_random(void *arg, uint8_t *buf, size_t n)
{
  (void)arg;
  /* Refs are short (25 bytes): getrandom answers them in one call once the
   * pool is initialised, and a short read is treated as failure. */
  return getrandom(buf, n, 0) == (ssize_t)n ? 0 : -1;
}

const struct bg_env bg_env_system = {system_now, system_random, NULL};

void bg_policy_set_env(struct bg_policy *p, const struct bg_env *env)
{
  if (p)
    p->env = env;
}

const struct bg_env *bg_policy_env(const struct bg_policy *p)
{
  return p && p->env ? p->env : &bg_env_system;
}
