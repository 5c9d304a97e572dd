/* log.h: leveled logging to stderr, one line per event. */
#ifndef BG_GW_LOG_H
#define BG_GW_LOG_H

enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

extern int gw_log_level;
int gw_log_parse_level(const char *s); /* -1 if unknown */
void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_ERR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define LOG_DBG(...) do { if (gw_log_level >= GW_LOG_DEBUG) gw_log(GW_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
