/* log.h: leveled logging to stderr, one line per event. */
#ifndef BG_LOG_H
#define BG_LOG_H

enum bg_log_level { BG_LOG_ERROR = 0, BG_LOG_WARN, BG_LOG_INFO, BG_LOG_DEBUG };

extern int bg_log_level;
int bg_log_parse_level(const char *s); /* -1 if unknown */
void bg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_ERR(...) bg_log(BG_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) bg_log(BG_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) bg_log(BG_LOG_INFO, __VA_ARGS__)
#define LOG_DBG(...) do { if (bg_log_level >= BG_LOG_DEBUG) bg_log(BG_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
