#ifndef BG_VERSION_H
#define BG_VERSION_H
#define BG_VERSION "0.1.0"
/* The Docker API version we announce on /_ping and /version: the one
 * Docker 20.10 speaks, which buildx's docker driver negotiates down to. */
#define BG_DOCKER_API_VERSION "1.41"
#endif
