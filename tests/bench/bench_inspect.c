/*
 * bench_inspect.c: time bg_inspect_control_solve over Definitions of 100,
 * 1,000 and 10,000 ops (source / exec / file mix, each exec and file op
 * depending on the previous op) with a restrictive profile (every LLB rule
 * evaluated) and print the median milliseconds per evaluation.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. -Ibuild/gen tests/bench/bench_inspect.c build/libbuildgate.a \
 *      $(pkg-config --cflags --libs libprotobuf-c jansson openssl) -o build/bench_inspect
 *   build/bench_inspect [iterations]
 */
#include <openssl/evp.h>
#include <time.h>

#include "tests/unit/inspect_helpers.h"

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void digest(const ProtobufCBinaryData *d, char out[72])
{
  unsigned char md[32];
  unsigned int l;
  EVP_Digest(d->data, d->len, md, &l, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static uint8_t *build(size_t nops, size_t *len, int session)
{
  ProtobufCBinaryData *ops = calloc(nops, sizeof *ops);
  char prev[72] = "";
  for (size_t i = 0; i < nops; i++) {
    switch (i % 3) {
    case 0: ops[i] = op_source(i % 6 ? "docker-image://docker.io/library/alpine:3.19" : "local://context",
                               i % 6 ? NULL : session ? "local.session" : "local.includepattern",
                               session ? "sess1" : "src/**"); break;
    case 1: ops[i] = op_exec(PB__NET_MODE__NONE, PB__SECURITY_MODE__SANDBOX, PB__MOUNT_TYPE__CACHE, prev); break;
    default: ops[i] = op_file(prev); break;
    }
    digest(&ops[i], prev);
  }
  uint8_t *m = solve_with_def(ops, nops, len);
  for (size_t i = 0; i < nops; i++)
    free(ops[i].data);
  free(ops);
  return m;
}

int main(int argc, char **argv)
{
  int iters = argc > 1 ? atoi(argv[1]) : 101;
  struct bg_profile p;
  PROF_BUILDER(p);
  p.isolate = 0; /* keep the message unchanged: measures evaluation, not re-encoding */
  p.frontend_attrs.set.n = 0;
  static const size_t sizes[] = {100, 1000, 10000};
  double *t = malloc(iters * sizeof *t);
  double iso[3];
  for (size_t s = 0; s < 3; s++) {
    size_t len;
    uint8_t *m = build(sizes[s], &len, 0);
    for (int i = 0; i < iters; i++) {
      struct bg_inspect r;
      bg_inspect_init(&r, &p, "ci", 0, NULL);
      double t0 = now_ms();
      bg_inspect_control_solve(&r, m, len);
      t[i] = now_ms() - t0;
      if (r.grpc_status || r.out || r.n_ops != sizes[s]) {
        fprintf(stderr, "unexpected: status %d (%s: %s) out %p ops %zu\n", r.grpc_status, r.rule, r.reason,
                (void *)r.out, r.n_ops);
        return 1;
      }
      bg_inspect_free(&r);
    }
    qsort(t, iters, sizeof *t, cmp);
    printf("control_solve %6zu ops  %8zu bytes  median %.3f ms  p90 %.3f ms  (%d runs)\n", sizes[s], len,
           t[iters / 2], t[iters * 9 / 10], iters);
    free(m);
    /* isolate, and local.session on every local source (1 op in 6): the
     * session namespacing re-encodes those ops and re-keys the whole graph
     * (every later op depends on the previous one, so all are re-digested) */
    p.isolate = 1;
    m = build(sizes[s], &len, 1);
    for (int i = 0; i < iters; i++) {
      struct bg_inspect r;
      bg_inspect_init(&r, &p, "ci", 0, NULL);
      double t0 = now_ms();
      bg_inspect_control_solve(&r, m, len);
      t[i] = now_ms() - t0;
      if (r.grpc_status || !r.out) {
        fprintf(stderr, "unexpected (isolate): status %d (%s: %s)\n", r.grpc_status, r.rule, r.reason);
        return 1;
      }
      bg_inspect_free(&r);
    }
    qsort(t, iters, sizeof *t, cmp);
    iso[s] = t[iters / 2];
    p.isolate = 0;
    free(m);
  }
  for (size_t s = 0; s < 2; s++)
    printf("isolate_solve %6zu ops  median %.3f ms\n", sizes[s], iso[s]);
  printf("  + isolate, 10000 ops, local.session rewritten in 1/6 of the ops, graph re-keyed: median %.3f ms\n",
         iso[2]);
  free(t);
  return 0;
}
