/*
 * main.c: command line, listeners, signals, audit log.
 *
 *   buildgate [--listen ADDR]... [--backend ADDR] [--policy FILE] [--audit-log FILE|-]
 *             [--socket-mode 0660] [--user NAME] [--no-sandbox] [--log-level LEVEL]
 *             [--inspect-conn-budget MIB] [--inspect-budget MIB] [--inspect-stall-timeout SECONDS]
 *   buildgate check --policy FILE [--tenant NAME --method /pkg.Service/Method --message FILE]
 *   buildgate version
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "gateway/alloc.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/version.h"

int gw_cmd_check(int argc, char **argv); /* cmd_check.c */
int gw_cmd_version(void);                 /* version.c */
int gw_sandbox_enter(void);               /* sandbox.c */

#define DEFAULT_LISTEN "unix:///run/buildgate.sock"
#define DEFAULT_BACKEND "docker+unix:///var/run/docker.sock"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: buildgate [--listen ADDR]... [--backend ADDR] [--policy FILE] [--audit-log FILE|-]\n"
          "                 [--socket-mode MODE] [--user NAME] [--no-sandbox] [--log-level LEVEL]\n"
          "                 [--inspect-conn-budget MIB] [--inspect-budget MIB] [--inspect-stall-timeout SECONDS]\n"
          "       buildgate check [--policy FILE] [--tenant NAME --method /pkg.Service/Method ...]\n"
          "       buildgate version\n"
          "\n"
          "  --listen ADDR       unix:///path or tcp://host:port, repeatable (default " DEFAULT_LISTEN ");\n"
          "                      each connection is sniffed: native gRPC or Docker-style HTTP/1.1\n"
          "  --backend ADDR      unix://, tcp:// (BuildKit gRPC) or docker+unix://, docker+tcp:// (Docker engine)\n"
          "                      (default " DEFAULT_BACKEND ")\n"
          "  --policy FILE       JSON policy (see buildgate-policy(5)); without it the built-in default applies\n"
          "  --audit-log FILE    append one JSON line per decision (- for stdout)\n"
          "  --socket-mode MODE  octal permissions of unix listen sockets (default 0660)\n"
          "  --user NAME         switch to this user after opening listeners and the audit log\n"
          "  --no-sandbox        do not enter the seccomp sandbox after start-up\n"
          "  --log-level LEVEL   error, warn, info (default), debug\n"
          "  --inspect-conn-budget MIB\n"
          "                      memory one connection may fill with inspected request messages still\n"
          "                      being received (default %zu); past it they wait for flow control\n"
          "  --inspect-budget MIB\n"
          "                      the same for the whole process (default %zu)\n"
          "  --inspect-stall-timeout SECONDS\n"
          "                      end a partial inspected message that gets no byte (or no memory) for\n"
          "                      this long with RESOURCE_EXHAUSTED (default %d)\n"
          "  --help              this text\n"
          "  not implemented yet (refused): --admin ADDR, --tls-cert F, --tls-key F, --tls-client-ca F,\n"
          "                      --backend-tls-ca F, --backend-tls-cert F, --backend-tls-key F\n"
          "\n"
          "  check               validate a policy, or evaluate one captured call (buildgate check --help)\n"
          "  version             version, git revision and library versions\n"
          "signals: SIGHUP reloads the policy, SIGTERM drains and exits\n",
          GW_INSPECT_CONN_BUDGET >> 20, GW_INSPECT_BUDGET >> 20, GW_INSPECT_STALL_SECS);
}

/* A whole number within [min, max], or -1. */
static long parse_count(const char *text, long min, long max)
{
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    return -1;
  return v;
}

/* Parse unix://PATH or tcp://HOST:PORT (with an optional docker+ prefix). */
static int parse_addr(const char *text, struct gw_addr *a, int *docker)
{
  const char *p = text;
  memset(a, 0, sizeof *a);
  if (docker)
    *docker = 0;
  if (docker && strncmp(p, "docker+", 7) == 0) {
    *docker = 1;
    p += 7;
  }
  a->text = gw_strdup(text);
  if (strncmp(p, "unix://", 7) == 0) {
    a->is_unix = 1;
    a->path = gw_strdup(p + 7);
    if (!a->path[0] || strlen(a->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
      return -1;
    return 0;
  }
  if (strncmp(p, "tcp://", 6) == 0) {
    const char *hp = p + 6;
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1])
      return -1;
    if (hp[0] == '[' && colon[-1] == ']')
      a->host = gw_strndup(hp + 1, (size_t)(colon - hp - 2));
    else
      a->host = gw_strndup(hp, (size_t)(colon - hp));
    a->port = gw_strdup(colon + 1);
    return 0;
  }
  return -1;
}

static void addr_free(struct gw_addr *a)
{
  free(a->text);
  free(a->path);
  free(a->host);
  free(a->port);
}

/* ---------- listeners ---------- */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
  struct gw_listener *gl = arg;
  if (gl->gw->draining) {
    close(fd);
    return;
  }
  gw_frontdoor_accept(gl->gw, fd, sa, salen, gl->addr.is_unix);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
  struct gw_listener *gl = arg;
  int err = EVUTIL_SOCKET_ERROR();
  /* EMFILE and friends: keep the listener, the next close frees a slot. */
  LOG_WARN("accept on %s failed: %s", gl->addr.text, evutil_socket_error_to_string(err));
}

static int open_listener(struct gw *gw, struct gw_listener *gl, mode_t mode)
{
  unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
  if (gl->addr.is_unix) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", gl->addr.path);
    struct stat st;
    /* Replace a stale socket, never a regular file someone pointed us at. */
    if (lstat(gl->addr.path, &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        LOG_ERR("%s exists and is not a socket", gl->addr.path);
        return -1;
      }
      unlink(gl->addr.path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || chmod(gl->addr.path, mode) != 0) {
      LOG_ERR("cannot listen on %s: %s", gl->addr.text, strerror(errno));
      if (fd >= 0)
        close(fd);
      return -1;
    }
    gl->l = evconnlistener_new(gw->base, accept_cb, gl, flags, 512, fd);
  } else {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int rc = getaddrinfo(gl->addr.host[0] ? gl->addr.host : NULL, gl->addr.port, &hints, &ai);
    if (rc != 0) {
      LOG_ERR("cannot resolve %s: %s", gl->addr.text, gai_strerror(rc));
      return -1;
    }
    gl->l = evconnlistener_new_bind(gw->base, accept_cb, gl, flags, 512, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
  }
  if (!gl->l) {
    LOG_ERR("cannot listen on %s: %s", gl->addr.text, strerror(errno));
    return -1;
  }
  evconnlistener_set_error_cb(gl->l, accept_error_cb);
  LOG_INFO("listening on %s", gl->addr.text);
  return 0;
}

/* ---------- signals ---------- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
  struct gw *gw = arg;
  LOG_WARN("drain timeout: closing %u remaining connection(s)", gw->n_conns);
  event_base_loopexit(gw->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
  struct gw *gw = arg;
  if (gw->draining) {
    event_base_loopexit(gw->base, NULL);
    return;
  }
  LOG_INFO("signal %d: draining %u connection(s) for up to %d s", (int)sig, gw->n_conns, GW_DRAIN_SECS);
  gw->draining = 1;
  for (struct gw_listener *gl = gw->listeners; gl; gl = gl->next) {
    if (gl->l) {
      evconnlistener_free(gl->l);
      gl->l = NULL;
    }
    if (gl->addr.is_unix)
      unlink(gl->addr.path);
  }
  for (struct gw_conn *c = gw->conns, *n; c; c = n) {
    n = c->next;
    c->shutdown(c);
  }
  if (gw->n_conns == 0) {
    event_base_loopexit(gw->base, NULL);
    return;
  }
  struct timeval tv = {GW_DRAIN_SECS, 0};
  gw->drain_timer = evtimer_new(gw->base, on_drain_timeout, gw);
  evtimer_add(gw->drain_timer, &tv);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
  struct gw *gw = arg;
  struct bg_policy *np;
  struct bg_error err = {0};
  if (gw->policy_path)
    np = bg_policy_load_file(gw->policy_path, &err);
  else
    np = bg_policy_load_default();
  if (!np) {
    LOG_ERR("SIGHUP: %s:%d:%d: %s; keeping the current policy", gw->policy_path, err.line, err.column, err.text);
    return;
  }
  /* Connections keep the policy they started with (they hold a reference). */
  bg_policy_unref(gw->policy);
  gw->policy = np;
  LOG_INFO("SIGHUP: policy reloaded from %s (mode %s)", gw->policy_path ? gw->policy_path : "built-in default",
           bg_policy_mode(np));
}

/* ---------- privileges ---------- */

static int drop_user(const char *name)
{
  struct passwd *pw = getpwnam(name);
  if (!pw) {
    LOG_ERR("--user %s: no such user", name);
    return -1;
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
    LOG_ERR("--user %s: cannot switch: %s", name, strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  gw_alloc_init(); /* before anything allocates: see alloc.h */
  if (argc > 1 && strcmp(argv[1], "version") == 0)
    return gw_cmd_version();
  if (argc > 1 && strcmp(argv[1], "check") == 0)
    return gw_cmd_check(argc - 1, argv + 1);

  enum { O_LISTEN = 1, O_BACKEND, O_POLICY, O_AUDIT, O_ADMIN, O_TLSCERT, O_TLSKEY, O_TLSCA, O_BTLSCA, O_BTLSCERT,
         O_BTLSKEY, O_SOCKMODE, O_USER, O_NOSANDBOX, O_LOGLEVEL, O_HELP, O_ICONN, O_IPROC, O_ISTALL };
  static const struct option opts[] = {
      {"listen", required_argument, 0, O_LISTEN},         {"backend", required_argument, 0, O_BACKEND},
      {"policy", required_argument, 0, O_POLICY},         {"audit-log", required_argument, 0, O_AUDIT},
      {"admin", required_argument, 0, O_ADMIN},           {"tls-cert", required_argument, 0, O_TLSCERT},
      {"tls-key", required_argument, 0, O_TLSKEY},        {"tls-client-ca", required_argument, 0, O_TLSCA},
      {"backend-tls-ca", required_argument, 0, O_BTLSCA}, {"backend-tls-cert", required_argument, 0, O_BTLSCERT},
      {"backend-tls-key", required_argument, 0, O_BTLSKEY}, {"socket-mode", required_argument, 0, O_SOCKMODE},
      {"user", required_argument, 0, O_USER},             {"no-sandbox", no_argument, 0, O_NOSANDBOX},
      {"log-level", required_argument, 0, O_LOGLEVEL},    {"help", no_argument, 0, O_HELP},
      {"inspect-conn-budget", required_argument, 0, O_ICONN}, {"inspect-budget", required_argument, 0, O_IPROC},
      {"inspect-stall-timeout", required_argument, 0, O_ISTALL},
      {0, 0, 0, 0}};
  struct gw gw = {.audit_fd = -1,
                  .inspect_conn_budget = GW_INSPECT_CONN_BUDGET,
                  .inspect_budget = GW_INSPECT_BUDGET,
                  .inspect_stall_secs = GW_INSPECT_STALL_SECS};
  long v;
  const char *backend = DEFAULT_BACKEND, *audit = NULL, *user = NULL;
  int sandbox = 1;
  mode_t sockmode = 0660;
  const char *listens[32];
  int n_listen = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case O_LISTEN:
      if (n_listen == 32) {
        fprintf(stderr, "buildgate: too many --listen\n");
        return 2;
      }
      listens[n_listen++] = optarg;
      break;
    case O_BACKEND: backend = optarg; break;
    case O_POLICY: gw.policy_path = optarg; break;
    case O_AUDIT: audit = optarg; break;
    case O_SOCKMODE: sockmode = (mode_t)strtoul(optarg, NULL, 8); break;
    case O_USER: user = optarg; break;
    case O_NOSANDBOX: sandbox = 0; break;
    case O_LOGLEVEL:
      if ((gw_log_level = gw_log_parse_level(optarg)) < 0) {
        fprintf(stderr, "buildgate: unknown log level %s\n", optarg);
        return 2;
      }
      break;
    case O_HELP: usage(stdout); return 0;
    case O_ICONN:
    case O_IPROC:
      if ((v = parse_count(optarg, 1, 65536)) < 0) {
        fprintf(stderr, "buildgate: %s wants a size in MiB (1-65536), not %s\n", argv[optind - 2], optarg);
        return 2;
      }
      *(c == O_ICONN ? &gw.inspect_conn_budget : &gw.inspect_budget) = (size_t)v << 20;
      break;
    case O_ISTALL:
      if ((v = parse_count(optarg, 1, 86400)) < 0) {
        fprintf(stderr, "buildgate: --inspect-stall-timeout wants seconds (1-86400), not %s\n", optarg);
        return 2;
      }
      gw.inspect_stall_secs = (unsigned)v;
      break;
    case O_ADMIN: case O_TLSCERT: case O_TLSKEY: case O_TLSCA: case O_BTLSCA: case O_BTLSCERT: case O_BTLSKEY:
      fprintf(stderr, "buildgate: %s is not supported by this build yet\n", argv[optind - 2]);
      return 2;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "buildgate: unexpected argument %s\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (gw.inspect_conn_budget > gw.inspect_budget) {
    fprintf(stderr, "buildgate: --inspect-conn-budget (%zu MiB) is larger than --inspect-budget (%zu MiB)\n",
            gw.inspect_conn_budget >> 20, gw.inspect_budget >> 20);
    return 2;
  }
  if (n_listen == 0)
    listens[n_listen++] = DEFAULT_LISTEN;
  int docker = 0;
  if (parse_addr(backend, &gw.backend, &docker) != 0) {
    fprintf(stderr, "buildgate: bad --backend %s (want unix://PATH, tcp://HOST:PORT, docker+unix://PATH or docker+tcp://HOST:PORT)\n", backend);
    return 2;
  }
  gw.backend_kind = docker ? BACKEND_DOCKER : BACKEND_GRPC;
  gw.facts.docker_engine = docker; /* the policy scopes the shared image store (inspect_llb.c) */

  struct bg_error err = {0};
  gw.policy = gw.policy_path ? bg_policy_load_file(gw.policy_path, &err) : bg_policy_load_default();
  if (!gw.policy) {
    fprintf(stderr, "buildgate: %s:%d:%d: %s\n", gw.policy_path, err.line, err.column, err.text);
    return 2;
  }
  if (audit) {
    gw.audit_fd = strcmp(audit, "-") == 0 ? dup(1) : open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (gw.audit_fd < 0) {
      fprintf(stderr, "buildgate: cannot open audit log %s: %s\n", audit, strerror(errno));
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  gw.base = event_base_new();
  if (!gw.base)
    return 1;
  for (int i = n_listen - 1; i >= 0; i--) {
    struct gw_listener *gl = gw_calloc(1, sizeof *gl);
    if (!gl || parse_addr(listens[i], &gl->addr, NULL) != 0) {
      fprintf(stderr, "buildgate: bad --listen %s (want unix://PATH or tcp://HOST:PORT)\n", listens[i]);
      return 2;
    }
    gl->gw = &gw;
    gl->next = gw.listeners;
    gw.listeners = gl;
    if (open_listener(&gw, gl, sockmode) != 0)
      return 1;
  }
  if (user && drop_user(user) != 0)
    return 1;
  /* Everything that needs privileges (binding, chmod, the audit log) is done. */
  if (sandbox && gw_sandbox_enter() != 0)
    return 1;
  gw.sigterm_ev = evsignal_new(gw.base, SIGTERM, on_sigterm, &gw);
  gw.sigint_ev = evsignal_new(gw.base, SIGINT, on_sigterm, &gw);
  gw.sighup_ev = evsignal_new(gw.base, SIGHUP, on_sighup, &gw);
  event_add(gw.sigterm_ev, NULL);
  event_add(gw.sigint_ev, NULL);
  event_add(gw.sighup_ev, NULL);
  LOG_INFO("buildgate %s: backend %s, policy %s (mode %s)", BG_VERSION, gw.backend.text,
           gw.policy_path ? gw.policy_path : "built-in default", bg_policy_mode(gw.policy));

  event_base_dispatch(gw.base);

  /* Drained (or timed out): close whatever is left, free everything. */
  gw.draining = 0; /* no loopexit from unlink any more */
  while (gw.conns)
    gw.conns->destroy(gw.conns);
  gw_bridge_free_all();
  for (struct gw_listener *gl = gw.listeners, *n; gl; gl = n) {
    n = gl->next;
    if (gl->l) {
      evconnlistener_free(gl->l);
      if (gl->addr.is_unix)
        unlink(gl->addr.path);
    }
    addr_free(&gl->addr);
    free(gl);
  }
  if (gw.drain_timer)
    event_free(gw.drain_timer);
  event_free(gw.sigterm_ev);
  event_free(gw.sigint_ev);
  event_free(gw.sighup_ev);
  bg_policy_unref(gw.policy);
  addr_free(&gw.backend);
  if (gw.audit_fd >= 0)
    close(gw.audit_fd);
  event_base_free(gw.base);
  LOG_INFO("exiting");
  return 0;
}
