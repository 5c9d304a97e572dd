/*
 * unit_env.c: linked into every unit binary (see the Makefile), never a test
 * of its own.  The tests name their fixtures relative to tests/unit
 * ("../fixtures/grpc/...", "../../deploy/policies/..."), so before main()
 * runs the binary moves there, in the source tree it was built from
 * (BG_SRCDIR, set by the Makefile).  A binary run by hand from any directory
 * then finds the same files as `make unit` does.  When that tree is gone the
 * binary stops at once with the reason and a non-zero status: a run that
 * cannot read its fixtures must never look like a pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BG_SRCDIR
#error "BG_SRCDIR must name the source tree (the Makefile passes -DBG_SRCDIR=\"$(CURDIR)\")"
#endif

__attribute__((constructor)) static void bg_unit_enter_srcdir(void)
{
  static const char dir[] = BG_SRCDIR "/tests/unit";
  if (chdir(dir) != 0) {
    fprintf(stderr, "unit test setup: cannot enter %s (%s): the fixtures are read from there\n", dir,
            strerror(errno));
    exit(2);
  }
  if (access("../fixtures", R_OK | X_OK) != 0) {
    fprintf(stderr, "unit test setup: no fixtures under %s/../fixtures (%s)\n", dir, strerror(errno));
    exit(2);
  }
}
