/*
 * audit.c: one compact JSON line per decision.
 *
 * Fields: time (RFC 3339 UTC with milliseconds), conn, tenant, identified_by,
 * peer, door, method, mode, decision, rule, reason, rewrites [{field, old,
 * new}], ref, session, frontend, exporters, entitlements, sources,
 * grpc_status, bytes_in, bytes_out, duration_ms.
 *
 * Secrets never reach this file's input: the call glue never copies header
 * values (the authorization header in particular) into a record, and the
 * inspectors report secret IDs, never secret values.  Absent strings are
 * written as null so every record has the same keys.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "policy/policy_int.h"

static json_t *jstr(const char *s)
{
  if (!s)
    return json_null();
  json_t *v = json_string(s);
  /* A value that is not valid UTF-8 (a hostile ref, say) is still recorded,
   * byte-for-byte escaped, rather than dropped. */
  if (!v) {
    size_t n = strlen(s);
    char *esc = malloc(n * 4 + 1);
    if (!esc)
      return json_null();
    char *w = esc;
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c < 0x80)
        *w++ = (char)c;
      else {
        static const char hx[] = "0123456789abcdef";
        *w++ = '\\';
        *w++ = 'x';
        *w++ = hx[c >> 4];
        *w++ = hx[c & 15];
      }
    }
    *w = '\0';
    v = json_string(esc);
    free(esc);
    if (!v)
      v = json_null();
  }
  return v;
}

static json_t *jlist(const char *const *v, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, jstr(v[i]));
  return a;
}

static void rfc3339(const struct timespec *ts, char *buf, size_t len)
{
  struct tm tm;
  gmtime_r(&ts->tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03ldZ", ts->tv_nsec / 1000000);
}

char *bg_audit_line(const struct bg_audit *a)
{
  char ts[40];
  rfc3339(&a->time, ts, sizeof ts);
  json_t *o = json_object();
  if (!o)
    return NULL;
  json_object_set_new(o, "time", json_string(ts));
  json_object_set_new(o, "conn", json_integer((json_int_t)a->conn_id));
  json_object_set_new(o, "tenant", jstr(a->tenant && *a->tenant ? a->tenant : NULL));
  json_object_set_new(o, "identified_by", jstr(a->identified_by && *a->identified_by ? a->identified_by : NULL));
  json_object_set_new(o, "peer", jstr(a->peer));
  json_object_set_new(o, "door", jstr(a->door));
  json_object_set_new(o, "method", jstr(a->method));
  json_object_set_new(o, "mode", json_string(a->mode_audit ? "audit" : "enforce"));
  json_object_set_new(o, "decision", jstr(a->decision));
  json_object_set_new(o, "rule", jstr(a->rule));
  json_object_set_new(o, "reason", jstr(a->reason));
  json_t *rw = json_array();
  for (size_t i = 0; rw && i < a->n_rewrites; i++) {
    json_t *r = json_object();
    json_object_set_new(r, "field", jstr(a->rewrites[i].field));
    json_object_set_new(r, "old", jstr(a->rewrites[i].old));
    json_object_set_new(r, "new", jstr(a->rewrites[i].new_));
    json_array_append_new(rw, r);
  }
  json_object_set_new(o, "rewrites", rw ? rw : json_null());
  json_object_set_new(o, "ref", jstr(a->ref));
  json_object_set_new(o, "session", jstr(a->session));
  json_object_set_new(o, "frontend", jstr(a->frontend));
  json_object_set_new(o, "exporters", jlist(a->exporters, a->n_exporters));
  json_object_set_new(o, "entitlements", jlist(a->entitlements, a->n_entitlements));
  json_object_set_new(o, "sources", jlist(a->sources, a->n_sources));
  json_object_set_new(o, "grpc_status", json_integer(a->grpc_status));
  json_object_set_new(o, "bytes_in", json_integer((json_int_t)a->bytes_in));
  json_object_set_new(o, "bytes_out", json_integer((json_int_t)a->bytes_out));
  json_object_set_new(o, "duration_ms", json_real((double)(long long)(a->duration_ms * 1000) / 1000.0));
  char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  return line;
}
