/*
 * session_powers.h: session powers (secrets, SSH, registry auth) that a
 * profile's session_methods withholds, enforced on the requests that make the
 * daemon call them (session_powers.c).  Internal to policy/.
 */
#ifndef BG_SESSION_POWERS_H
#define BG_SESSION_POWERS_H

#include "policy/profile.h"

enum bg_session_power { BG_POWER_SECRETS = 0, BG_POWER_SSH = 1, BG_POWER_AUTH = 2 };

/* 1 when session_methods is absent or one of its patterns matches the
 * power's session method. */
int bg_session_power(const struct bg_profile *p, enum bg_session_power w);
/* "/moby.buildkit.secrets.v1.Secrets/GetSecret", ... */
const char *bg_power_method(enum bg_session_power w);

struct bg_ictx;
struct bg_smap;
/* Deny (rule "session_methods") what would make the daemon use a withheld
 * power: a mount of |type| (pb.MountType; secretenv counts as SECRET), an
 * LLB source attr |key|, a git build context in frontend attrs |m|. */
void bg_powers_mount(struct bg_ictx *c, int type, const char *field);
void bg_powers_source_attr(struct bg_ictx *c, const char *key, const char *field);
void bg_powers_frontend_attrs(struct bg_ictx *c, struct bg_smap m, const char *field);

#endif
