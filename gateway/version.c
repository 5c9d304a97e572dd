/*
 * version.c: `buildgate version`.
 *
 * What a bug report needs: buildgate's version, the git revision it was built
 * from (the Makefile writes it into build/gen/bg_revision.h; "unknown" when
 * the tree was not a git checkout), and each library's version.  Libraries
 * are shared objects that Debian upgrades underneath the binary, so the
 * version printed is the one the library reports at run time; when it differs
 * from the headers buildgate was compiled against, both are shown.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <protobuf-c/protobuf-c.h>
#include <seccomp.h>
#include <zlib.h>

#include "bg_revision.h"
#include "gateway/version.h"

int gw_cmd_version(void);

static void lib(const char *name, const char *running, const char *built)
{
  if (strcmp(running, built) == 0)
    printf("  %-11s %s\n", name, running);
  else
    printf("  %-11s %s (built against %s)\n", name, running, built);
}

int gw_cmd_version(void)
{
  char seccomp_run[32], seccomp_built[32];
  const struct scmp_version *sv = seccomp_version();
  snprintf(seccomp_run, sizeof seccomp_run, "%u.%u.%u", sv ? sv->major : 0, sv ? sv->minor : 0, sv ? sv->micro : 0);
  snprintf(seccomp_built, sizeof seccomp_built, "%u.%u.%u", SCMP_VER_MAJOR, SCMP_VER_MINOR, SCMP_VER_MICRO);
  const nghttp2_info *nv = nghttp2_version(0);

  printf("buildgate %s\n", BG_VERSION);
  printf("revision: %s\n", BG_GIT_REVISION);
  printf("libraries:\n");
  lib("libevent", event_get_version(), LIBEVENT_VERSION);
  lib("nghttp2", nv ? nv->version_str : "?", NGHTTP2_VERSION);
  lib("OpenSSL", OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
  lib("protobuf-c", protobuf_c_version(), PROTOBUF_C_VERSION);
  lib("jansson", jansson_version_str(), JANSSON_VERSION);
  lib("libseccomp", seccomp_run, seccomp_built);
  lib("zlib", zlibVersion(), ZLIB_VERSION);
  return 0;
}
