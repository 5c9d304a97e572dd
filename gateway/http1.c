/*
 * http1.c: strict, bounded HTTP/1.x request-head parser and router for the
 * Docker-style front door.  Nothing here allocates or reads past |len|; the
 * request structure only points into the caller's buffer.
 */
#include "gateway/http1.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/version.h"

enum gw_sniff gw_sniff(const char *buf, size_t len)
{
  size_t n = len < GW_H2_PREFACE_LEN ? len : GW_H2_PREFACE_LEN;
  if (n > 0 && memcmp(buf, GW_H2_PREFACE, n) != 0)
    return GW_SNIFF_H1;
  return n == GW_H2_PREFACE_LEN ? GW_SNIFF_H2 : GW_SNIFF_NEED_MORE;
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

/* Case-insensitive compare of a counted string with a NUL-terminated one. */
static int ieq(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/* A field value byte: VCHAR, obs-text, SP or HTAB (no CTLs, no DEL). */
static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* Bytes of a line whose LF has not arrived yet.  Reject as early as the
 * bytes allow, so a TLS ClientHello or binary garbage gets its 400 without
 * waiting for max_head bytes.  A CR may only be the line's last byte. */
static int partial_line_ok(const unsigned char *p, size_t n, int in_request_line)
{
  if (n == 0)
    return 1;
  if (n > 0 && p[n - 1] == '\r')
    n--;
  if (!in_request_line && n > 0 && (p[0] == ' ' || p[0] == '\t'))
    return 0; /* obsolete line folding */
  size_t i = 0;
  if (in_request_line) {
    /* method so far must be a token */
    for (; i < n && p[i] != ' '; i++)
      if (!is_tchar(p[i]))
        return 0;
    for (; i < n; i++)
      if (p[i] < 0x20 || p[i] > 0x7e)
        return 0;
    return 1;
  }
  for (; i < n; i++)
    if (!is_value_char(p[i]))
      return 0;
  return 1;
}

/* method SP request-target SP HTTP-version, exactly. */
static enum gw_h1_status parse_request_line(const char *line, size_t n, struct gw_h1_request *req)
{
  const unsigned char *p = (const unsigned char *)line;
  size_t i = 0;
  while (i < n && p[i] != ' ') {
    if (!is_tchar(p[i]))
      return GW_H1_BAD;
    i++;
  }
  if (i == 0 || i == n)
    return GW_H1_BAD;
  req->method = line;
  req->methodlen = i;
  size_t t0 = ++i;
  while (i < n && p[i] != ' ') {
    if (p[i] < 0x21 || p[i] > 0x7e)
      return GW_H1_BAD;
    i++;
  }
  if (i == t0 || i == n)
    return GW_H1_BAD; /* empty target, or no version at all */
  req->target = line + t0;
  req->targetlen = i - t0;
  const unsigned char *v = p + i + 1;
  size_t vl = n - i - 1;
  if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7]))
    return GW_H1_BAD;
  if (v[5] != '1' || v[7] > '1')
    return GW_H1_BAD_VERSION;
  req->minor_version = v[7] - '0';
  if (req->target[0] != '/')
    return GW_H1_BAD; /* only origin-form is served here */
  return GW_H1_DONE;
}

static enum gw_h1_status parse_header_line(const char *line, size_t n, struct gw_h1_request *req)
{
  const unsigned char *p = (const unsigned char *)line;
  if (p[0] == ' ' || p[0] == '\t')
    return GW_H1_BAD; /* obsolete line folding */
  size_t i = 0;
  while (i < n && p[i] != ':') {
    if (!is_tchar(p[i]))
      return GW_H1_BAD; /* includes whitespace before the colon */
    i++;
  }
  if (i == 0 || i == n)
    return GW_H1_BAD;
  size_t namelen = i;
  for (size_t k = i + 1; k < n; k++)
    if (!is_value_char(p[k]))
      return GW_H1_BAD;
  size_t vs = i + 1, ve = n;
  while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
    vs++;
  while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
    ve--;
  if (req->n_headers == GW_H1_MAX_HEADERS)
    return GW_H1_TOO_LARGE;
  struct gw_h1_header *h = &req->headers[req->n_headers++];
  h->name = line;
  h->namelen = namelen;
  h->value = line + vs;
  h->valuelen = ve - vs;
  return GW_H1_DONE;
}

/* Content-Length: 1*DIGIT; every occurrence must carry the same value. */
static enum gw_h1_status check_content_length(struct gw_h1_request *req)
{
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    if (!ieq(h->name, h->namelen, "content-length"))
      continue;
    if (h->valuelen == 0)
      return GW_H1_BAD;
    long long v = 0;
    for (size_t k = 0; k < h->valuelen; k++) {
      unsigned char c = (unsigned char)h->value[k];
      if (!is_digit(c))
        return GW_H1_BAD;
      if (v > (LLONG_MAX - (c - '0')) / 10)
        return GW_H1_BAD;
      v = v * 10 + (c - '0');
    }
    if (req->content_length >= 0 && req->content_length != v)
      return GW_H1_BAD;
    req->content_length = v;
  }
  return GW_H1_DONE;
}

/* Transfer-Encoding in a request: "chunked" exactly once and last, never
 * together with Content-Length, never in HTTP/1.0 (RFC 9112 6.1, 6.3). */
static enum gw_h1_status check_transfer_encoding(struct gw_h1_request *req)
{
  int seen = 0, n_chunked = 0, last_chunked = 0;
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    if (!ieq(h->name, h->namelen, "transfer-encoding"))
      continue;
    seen = 1;
    size_t k = 0;
    while (k <= h->valuelen) {
      size_t s = k;
      while (k < h->valuelen && h->value[k] != ',')
        k++;
      size_t e = k;
      while (s < e && (h->value[s] == ' ' || h->value[s] == '\t'))
        s++;
      while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
        e--;
      if (e > s) {
        last_chunked = ieq(h->value + s, e - s, "chunked");
        n_chunked += last_chunked;
      }
      k++;
    }
  }
  if (!seen)
    return GW_H1_DONE;
  if (req->minor_version == 0 || !last_chunked || n_chunked != 1 || req->content_length >= 0)
    return GW_H1_BAD;
  req->chunked = 1;
  return GW_H1_DONE;
}

/* Host: exactly one in HTTP/1.1, at most one in 1.0; empty is legal (Go's
 * docker client sends "Host: " on the upgrade requests); the value must look
 * like uri-host [":" port]. */
static enum gw_h1_status check_host(const struct gw_h1_request *req)
{
  int n = 0;
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    if (!ieq(h->name, h->namelen, "host"))
      continue;
    n++;
    for (size_t k = 0; k < h->valuelen; k++) {
      unsigned char c = (unsigned char)h->value[k];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || strchr("-._~!$&'()*+,;=%:[]", c)))
        return GW_H1_BAD;
    }
  }
  if (n > 1 || (n == 0 && req->minor_version == 1))
    return GW_H1_BAD;
  return GW_H1_DONE;
}

enum gw_h1_status gw_h1_parse(const char *buf, size_t len, size_t max_head, struct gw_h1_request *req)
{
  memset(req, 0, sizeof *req);
  req->content_length = -1;
  if (len == 0 || buf == NULL)
    return GW_H1_INCOMPLETE;
  size_t lim = len < max_head ? len : max_head;
  size_t pos = 0;
  int have_request_line = 0;
  enum gw_h1_status st;

  for (;;) {
    const char *lf = lim > pos ? memchr(buf + pos, '\n', lim - pos) : NULL;
    if (!lf) {
      if (!partial_line_ok((const unsigned char *)buf + pos, lim - pos, !have_request_line))
        return GW_H1_BAD;
      /* Within max_head bytes and still no end of head: it can only be bigger. */
      return len >= max_head ? GW_H1_TOO_LARGE : GW_H1_INCOMPLETE;
    }
    size_t eol = (size_t)(lf - buf);
    size_t end = eol;
    if (end > pos && buf[end - 1] == '\r')
      end--;
    const char *line = buf + pos;
    size_t n = end - pos;
    pos = eol + 1;
    if (!have_request_line) {
      if (n == 0)
        continue; /* RFC 9112 2.2: ignore empty lines before the request-line */
      st = parse_request_line(line, n, req);
      if (st != GW_H1_DONE)
        return st;
      have_request_line = 1;
      continue;
    }
    if (n == 0)
      break;
    st = parse_header_line(line, n, req);
    if (st != GW_H1_DONE)
      return st;
  }

  req->head_len = pos;
  if ((st = check_content_length(req)) != GW_H1_DONE || (st = check_transfer_encoding(req)) != GW_H1_DONE ||
      (st = check_host(req)) != GW_H1_DONE)
    return st;
  if (gw_h1_header_has_token(req, "connection", "close"))
    req->keep_alive = 0;
  else
    req->keep_alive = req->minor_version >= 1 || gw_h1_header_has_token(req, "connection", "keep-alive");
  return GW_H1_DONE;
}

const char *gw_h1_header(const struct gw_h1_request *req, const char *name, size_t *valuelen)
{
  if (!req || !name)
    return NULL;
  for (size_t i = 0; i < req->n_headers && i < GW_H1_MAX_HEADERS; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    if (ieq(h->name, h->namelen, name)) {
      if (valuelen)
        *valuelen = h->valuelen;
      return h->value;
    }
  }
  return NULL;
}

int gw_h1_header_has_token(const struct gw_h1_request *req, const char *name, const char *token)
{
  if (!req || !name || !token)
    return 0;
  /* Every field line with that name counts: "Connection: keep-alive" and
   * "Connection: Upgrade" on two lines mean the same as one combined line. */
  for (size_t i = 0; i < req->n_headers && i < GW_H1_MAX_HEADERS; i++) {
    const struct gw_h1_header *h = &req->headers[i];
    if (!ieq(h->name, h->namelen, name))
      continue;
    size_t k = 0;
    while (k < h->valuelen) {
      size_t s = k;
      while (k < h->valuelen && h->value[k] != ',')
        k++;
      size_t e = k;
      while (s < e && (h->value[s] == ' ' || h->value[s] == '\t'))
        s++;
      while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
        e--;
      if (ieq(h->value + s, e - s, token))
        return 1;
      k++;
    }
  }
  return 0;
}

static int method_is(const struct gw_h1_request *req, const char *m)
{
  size_t ml = strlen(m);
  return req->methodlen == ml && memcmp(req->method, m, ml) == 0;
}

static int path_is(const char *p, size_t n, const char *s)
{
  size_t sl = strlen(s);
  return n == sl && memcmp(p, s, sl) == 0;
}

enum gw_route gw_h1_route(const struct gw_h1_request *req, char api_version[16])
{
  if (api_version)
    api_version[0] = '\0';
  if (!req || !req->target || req->targetlen == 0 || !req->method)
    return GW_ROUTE_UNKNOWN;
  const char *p = req->target;
  size_t n = req->targetlen;
  const char *q = memchr(p, '?', n);
  if (q)
    n = (size_t)(q - p);

  /* "/v<digits>.<digits>/" prefix, as the Docker API versions its paths. */
  if (n > 2 && p[0] == '/' && p[1] == 'v' && is_digit((unsigned char)p[2])) {
    size_t i = 2;
    while (i < n && is_digit((unsigned char)p[i]))
      i++;
    if (i < n && p[i] == '.') {
      size_t m0 = ++i;
      while (i < n && is_digit((unsigned char)p[i]))
        i++;
      if (i > m0 && i < n && p[i] == '/') {
        size_t vl = i - 2;
        if (vl > 15)
          return GW_ROUTE_UNKNOWN; /* no real API version is this long */
        if (api_version) {
          memcpy(api_version, p + 2, vl);
          api_version[vl] = '\0';
        }
        p += i;
        n -= i;
      }
    }
  }

  if (path_is(p, n, "/_ping"))
    return method_is(req, "GET") || method_is(req, "HEAD") ? GW_ROUTE_PING : GW_ROUTE_BAD_METHOD;
  if (path_is(p, n, "/version"))
    return method_is(req, "GET") ? GW_ROUTE_VERSION : GW_ROUTE_BAD_METHOD;
  if (path_is(p, n, "/grpc"))
    return method_is(req, "POST") ? GW_ROUTE_GRPC : GW_ROUTE_BAD_METHOD;
  if (path_is(p, n, "/session"))
    return method_is(req, "POST") ? GW_ROUTE_SESSION : GW_ROUTE_BAD_METHOD;
  return GW_ROUTE_UNKNOWN;
}

/* The error answers the front door writes (the HTTP/2 engine never writes
 * HTTP/1.1). */
void gw_http_error(struct evbuffer *out, int status, const char *msg)
{
  const char *reason = status == 400   ? "Bad Request"
                       : status == 401 ? "Unauthorized"
                       : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 408 ? "Request Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 502 ? "Bad Gateway"
                       : status == 503 ? "Service Unavailable"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Error";
  json_t *j = json_pack("{s:s}", "message", msg);
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  evbuffer_add_printf(out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Server: buildgate/" BG_VERSION "\r\nConnection: close\r\n\r\n%s\n",
                      status, reason, body ? strlen(body) + 1 : 3, body ? body : "{}");
  free(body);
}
