/*
 * test_policy_check.c: `buildgate check` (gateway/cmd_check.c): exit codes
 * and output for a valid file, an invalid one (FILE:LINE:COL: error), and the
 * offline evaluation of captured messages.
 * Fixture paths are relative to tests/unit (unit_env.c goes there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

int gw_cmd_check(int argc, char **argv);

static char out[65536];

/* Run gw_cmd_check with stdout captured into |out|. */
static int run(char **argv)
{
  int argc = 0;
  while (argv[argc])
    argc++;
  fflush(stdout);
  char tmpl[] = "/tmp/bgcheckXXXXXX";
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  int saved = dup(1);
  dup2(fd, 1);
  int rc = gw_cmd_check(argc, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, out, sizeof out - 1);
  out[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(tmpl);
  return rc;
}

static void test_valid_and_invalid(void **state)
{
  char *ok[] = {"check", "--policy", "../../deploy/policies/multi-tenant.json", NULL};
  assert_int_equal(run(ok), 0);
  assert_string_equal(out, "ok\n");
  char *def[] = {"check", NULL};
  assert_int_equal(run(def), 0);

  const char *bad = "/tmp/bg-check-bad.json";
  FILE *f = fopen(bad, "w");
  fputs("{\n  \"profiles\": {\n    \"b\": {\"methods\": [\"@stabel\"]}\n  }\n}\n", f);
  fclose(f);
  char *b[] = {"check", "--policy", (char *)bad, NULL};
  assert_int_equal(run(b), 1);
  assert_non_null(strstr(out, "/tmp/bg-check-bad.json:3:23: profiles.b.methods[0]: unknown method class"));
  unlink(bad);

  char *missing[] = {"check", "--policy", "/nonexistent/policy.json", NULL};
  assert_int_equal(run(missing), 1);
  char *usage[] = {"check", "--frobnicate", NULL};
  assert_int_equal(run(usage), 1);
  char *half[] = {"check", "--tenant", "ci", NULL};
  assert_int_equal(run(half), 1);
}

static void test_evaluate(void **state)
{
  char *deny[] = {"check", "--policy", "../../deploy/policies/multi-tenant.json", "--tenant", "ci", "--method",
                  "/moby.buildkit.v1.Control/Solve", "--message", "../fixtures/policy/control-solve-entitlement.bin",
                  NULL};
  assert_int_equal(run(deny), 2);
  assert_non_null(strstr(out, "decision: deny"));
  assert_non_null(strstr(out, "grpc_status: 7"));

  const char *o = "/tmp/bg-check-out.bin";
  unlink(o);
  /* the profile has a source policy: what it means depends on the backend */
  char *nofacts[] = {"check", "--policy", "../../deploy/policies/multi-tenant.json", "--tenant", "ci", "--method",
                     "/moby.buildkit.v1.Control/Solve", "--message", "../fixtures/policy/control-solve-local.bin",
                     NULL};
  assert_int_equal(run(nofacts), 2);
  assert_non_null(strstr(out, "backend facts: needed and unknown"));
  assert_non_null(strstr(out, "grpc_status: 14"));
  char *old[] = {"check", "--policy", "../../deploy/policies/multi-tenant.json", "--tenant", "ci", "--method",
                 "/moby.buildkit.v1.Control/Solve", "--message", "../fixtures/policy/control-solve-local.bin",
                 "--backend-version", "none", NULL};
  assert_int_equal(run(old), 2);
  assert_non_null(strstr(out, "grpc_status: 9"));
  char *rw[] = {"check", "--policy", "../../deploy/policies/multi-tenant.json", "--tenant", "ci", "--method",
                "/moby.buildkit.v1.Control/Solve", "--message", "../fixtures/policy/control-solve-local.bin", "--out",
                (char *)o, "--backend-version", "v0.13.2", NULL};
  assert_int_equal(run(rw), 0);
  assert_non_null(strstr(out, "decision: rewrite"));
  assert_non_null(strstr(out, "rewrite: Ref:"));
  assert_non_null(strstr(out, "bytes written to /tmp/bg-check-out.bin"));
  FILE *f = fopen(o, "rb");
  assert_non_null(f);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(n > 85);
  assert_non_null(memmem(buf, n, "ci.", 3));
  unlink(o);

  char *method[] = {"check", "--tenant", "local", "--method", "/moby.buildkit.v1.Control/Prune", NULL};
  assert_int_equal(run(method), 2);
  assert_non_null(strstr(out, "profiles.local.methods"));
  char *allowed[] = {"check", "--tenant", "local", "--method", "/moby.buildkit.v1.Control/Solve", "--message",
                     "../fixtures/policy/control-solve-local.bin", NULL};
  assert_int_equal(run(allowed), 0);
  assert_non_null(strstr(out, "decision: allow"));
  assert_non_null(strstr(out, "message: forwarded unchanged"));
  char *notenant[] = {"check", "--tenant", "nobody", "--method", "/moby.buildkit.v1.Control/Solve", NULL};
  assert_int_equal(run(notenant), 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_and_invalid),
      cmocka_unit_test(test_evaluate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
