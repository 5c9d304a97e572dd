/*
 * session_powers.c: what a profile's session_methods withholds, made to hold
 * against the daemon.
 *
 * session_methods filters the X-Docker-Expose-Session-Grpc-Method list of a
 * session (call.c).  BuildKit consults that list (Caller.Supports) only for
 * file sync.  It calls Secrets.GetSecret, SSH.ForwardAgent and the Auth
 * methods on the session whatever the client advertised, and a client that
 * registered the provider answers.  So withholding a method from the list
 * withholds nothing by itself; what does is refusing the requests that make
 * the daemon call it:
 *
 *   power    session method(s)                  what makes the daemon call it
 *   secrets  /moby.buildkit.secrets.v1.Secrets/  Mount type SECRET (secretOpt), ExecOp
 *            GetSecret                          secretenv, git.authtokensecret and
 *                                               git.authheadersecret source attrs, a git
 *                                               build context (the Dockerfile frontend's
 *                                               llb.Git sets both auth attrs by default)
 *   ssh      /moby.sshforward.v1.SSH/           Mount type SSH (SSHOpt), git.mountsshsock,
 *            ForwardAgent                       an ssh git build context (git@, ssh://)
 *   auth     /moby.filesync.v1.Auth/Credentials every registry pull or push: not refusable
 *                                               short of refusing images; lint says so
 *
 * A power is granted when session_methods is absent, or when one of its
 * patterns matches the power's method.  The checks here run in addition to
 * llb.mounts (inspect_llb.c), also for a profile without "llb" rules, and
 * deny with rule "session_methods".  What stays out of reach is written in
 * deploy/policies/README.md ("What session_methods can guarantee").
 */
#include <stdio.h>
#include <string.h>

#include "policy/inspect_int.h"
#include "policy/session_powers.h"

static const char *const power_method[] = {
    [BG_POWER_SECRETS] = "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    [BG_POWER_SSH] = "/moby.sshforward.v1.SSH/ForwardAgent",
    [BG_POWER_AUTH] = "/moby.filesync.v1.Auth/Credentials",
};

static const char *const power_word[] = {
    [BG_POWER_SECRETS] = "secrets",
    [BG_POWER_SSH] = "SSH agent forwarding",
    [BG_POWER_AUTH] = "registry credentials",
};

const char *bg_power_method(enum bg_session_power w) { return power_method[w]; }

int bg_session_power(const struct bg_profile *p, enum bg_session_power w)
{
  if (p->session_methods_any)
    return 1;
  return bg_list_glob(&p->session_methods, power_method[w]);
}

static void deny_power(struct bg_ictx *c, enum bg_session_power w, const char *field, const char *what)
{
  bg_ictx_deny(c, BG_GRPC_PERMISSION_DENIED, "session_methods",
               "%s: %s makes the daemon call %s on the client's session, and profiles.%s.session_methods does not "
               "expose %s (%s)",
               field, what, power_method[w], c->p->name ? c->p->name : "?", power_word[w], bg_ictx_who(c));
}

void bg_powers_mount(struct bg_ictx *c, int type, const char *field)
{
  if (type == PB__MOUNT_TYPE__SECRET && !bg_session_power(c->p, BG_POWER_SECRETS))
    deny_power(c, BG_POWER_SECRETS, field, "a secret mount (or secretenv)");
  else if (type == PB__MOUNT_TYPE__SSH && !bg_session_power(c->p, BG_POWER_SSH))
    deny_power(c, BG_POWER_SSH, field, "an SSH mount");
}

void bg_powers_source_attr(struct bg_ictx *c, const char *key, const char *field)
{
  char what[80];
  snprintf(what, sizeof what, "source attr %.40s", key);
  if (strcmp(key, "git.mountsshsock") == 0 && !bg_session_power(c->p, BG_POWER_SSH))
    deny_power(c, BG_POWER_SSH, field, what);
  else if ((strcmp(key, "git.authtokensecret") == 0 || strcmp(key, "git.authheadersecret") == 0) &&
           !bg_session_power(c->p, BG_POWER_SECRETS))
    deny_power(c, BG_POWER_SECRETS, field, what);
}

static int has_prefix(const char *s, const char *pfx) { return strncmp(s, pfx, strlen(pfx)) == 0; }

/* Does a build-context value make the Dockerfile frontend build a git
 * source?  v0.8's detectGitContext (builder/build.go) says yes for git://,
 * git@ and github.com/ prefixes and for http(s) URLs ending in .git (before
 * an optional #fragment); v0.13's dockerui.DetectGitContext (gitutil.
 * ParseGitRef) adds ssh:// and scheme-less "host/path.git".  Named contexts
 * first take docker-image://, local:, input:, oci-layout:// and target:
 * values as what they say.  *ssh is set for the forms that reach the remote
 * over SSH.  The frontend does not trim values, neither does this. */
static int git_context(const char *v, int *ssh)
{
  static const char *const not_git[] = {"docker-image://", "local:", "input:", "oci-layout://", "target:"};
  for (size_t i = 0; i < sizeof not_git / sizeof *not_git; i++)
    if (has_prefix(v, not_git[i]))
      return 0;
  *ssh = has_prefix(v, "git@") || has_prefix(v, "ssh://");
  if (*ssh || has_prefix(v, "git://") || has_prefix(v, "github.com/"))
    return 1;
  size_t n = strcspn(v, "#?");
  return n >= 4 && memcmp(v + n - 4, ".git", 4) == 0;
}

/* Build contexts: "context" (every frontend version) and "context:<name>"
 * (named contexts, v0.10+).  Every entry is checked, not only the last one
 * the frontend reads: refusing a duplicate costs nothing legitimate. */
void bg_powers_frontend_attrs(struct bg_ictx *c, struct bg_smap m, const char *field)
{
  if (bg_session_power(c->p, BG_POWER_SECRETS) && bg_session_power(c->p, BG_POWER_SSH))
    return;
  char f[300], what[160];
  for (size_t i = 0; i < *m.n && !c->stop; i++) {
    const struct bg_kv_entry *e = (*m.v)[i];
    if (strcmp(e->key, "context") != 0 && strncmp(e->key, "context:", 8) != 0)
      continue;
    int ssh = 0;
    if (!git_context(e->value, &ssh))
      continue;
    snprintf(f, sizeof f, "%s[%.200s]", field, e->key);
    snprintf(what, sizeof what, "a git build context (%.100s)", e->value);
    if (!bg_session_power(c->p, BG_POWER_SECRETS))
      deny_power(c, BG_POWER_SECRETS, f, what);
    else if (ssh && !bg_session_power(c->p, BG_POWER_SSH))
      deny_power(c, BG_POWER_SSH, f, what);
  }
}
