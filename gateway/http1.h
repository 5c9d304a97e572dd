/*
 * http1.h: the Docker-style front door's HTTP/1.1 request parser and router.
 * Pure functions over a byte buffer (no sockets), so the unit tests and the
 * fuzzer drive exactly the code the daemon runs.
 */
#ifndef BG_GW_HTTP1_H
#define BG_GW_HTTP1_H

#include <stddef.h>

#include <event2/buffer.h>

#define GW_H1_MAX_HEADERS 64

/* The 24-byte HTTP/2 client connection preface. */
#define GW_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define GW_H2_PREFACE_LEN 24

enum gw_sniff {
  GW_SNIFF_NEED_MORE = 0, /* the bytes so far are a prefix of the preface */
  GW_SNIFF_H2 = 1,        /* full HTTP/2 preface */
  GW_SNIFF_H1 = 2,        /* anything else: treat as HTTP/1.1 */
};
/* Classify the first bytes of a new connection. */
enum gw_sniff gw_sniff(const char *buf, size_t len);

struct gw_h1_header {
  const char *name; /* points into the caller's buffer; not NUL-terminated */
  size_t namelen;
  const char *value; /* leading/trailing whitespace trimmed */
  size_t valuelen;
};

struct gw_h1_request {
  const char *method;
  size_t methodlen;
  const char *target; /* request-target as sent ("/v1.41/grpc?x=y") */
  size_t targetlen;
  int minor_version;  /* HTTP/1.<minor> */
  struct gw_h1_header headers[GW_H1_MAX_HEADERS];
  size_t n_headers;
  size_t head_len;    /* bytes of the request head including the final CRLFCRLF */
  long long content_length; /* -1 if absent */
  int chunked;        /* Transfer-Encoding: chunked */
  int keep_alive;     /* connection persists after this request (version + Connection header) */
};

enum gw_h1_status {
  GW_H1_INCOMPLETE = 0,    /* need more bytes */
  GW_H1_DONE = 1,          /* request head parsed; req->head_len bytes used */
  GW_H1_BAD = -1,          /* malformed: answer 400 and close */
  GW_H1_TOO_LARGE = -2,    /* head larger than max_head or too many headers: 431 and close */
  GW_H1_BAD_VERSION = -3,  /* not HTTP/1.0 or 1.1: 505 */
};

/* Parse one request head from buf[0..len).  Lines end in CRLF (a bare LF is
 * accepted as Go and curl peers never send it but tolerant parsing of it is
 * harmless); empty lines before the request-line are skipped (counted in
 * head_len); obsolete line folding is rejected; header names must be tokens;
 * duplicate Content-Length with different values is BAD, and so are
 * Transfer-Encoding whose last coding is not chunked, Transfer-Encoding with
 * Content-Length or in HTTP/1.0, a missing Host in HTTP/1.1 and repeated Host.
 * The target must be origin-form ("/...").  Invalid bytes are reported as BAD
 * as soon as they arrive, even before the head is complete.  |max_head| bounds
 * the whole head (a head of exactly max_head bytes is fine): once len reaches
 * it without a complete head the result is GW_H1_TOO_LARGE, so a slow client
 * cannot make the gateway buffer more. */
enum gw_h1_status gw_h1_parse(const char *buf, size_t len, size_t max_head, struct gw_h1_request *req);

/* Case-insensitive header lookup; first match or NULL.  *valuelen set when found. */
const char *gw_h1_header(const struct gw_h1_request *req, const char *name, size_t *valuelen);
/* True if some comma-separated element of any header line named |name| equals |token|
 * (case-insensitive, whitespace around elements ignored). */
int gw_h1_header_has_token(const struct gw_h1_request *req, const char *name, const char *token);

enum gw_route {
  GW_ROUTE_UNKNOWN = 0,
  GW_ROUTE_PING,      /* GET|HEAD /_ping */
  GW_ROUTE_VERSION,   /* GET /version */
  GW_ROUTE_GRPC,      /* POST /grpc */
  GW_ROUTE_SESSION,   /* POST /session */
  GW_ROUTE_BAD_METHOD /* a known path with the wrong method: 405 */
};
/* Route a request: strips an optional "/v<major>.<minor>" prefix and any query string.
 * *api_version gets the version string if present ("1.41"), NUL-terminated, else "". */
enum gw_route gw_h1_route(const struct gw_h1_request *req, char api_version[16]);

/* Docker-style error answer: JSON {"message": msg}, Connection: close. */
void gw_http_error(struct evbuffer *out, int status, const char *msg);

#endif
