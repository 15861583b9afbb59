/* ib_log: one line per event on stderr: time, level, daemon, request id, message. Lines are written with a
 * single write(2) so lines of concurrent threads never interleave. */
#ifndef IB_LOG_H
#define IB_LOG_H

typedef enum ib_log_level { IB_LOG_DEBUG, IB_LOG_INFO, IB_LOG_WARN, IB_LOG_ERROR } ib_log_level;

void ib_log_init(const char *daemon, int debug);
int ib_log_debug_enabled(void);
void ib_log(ib_log_level level, const char *rid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define ib_debug(rid, ...) ib_log(IB_LOG_DEBUG, rid, __VA_ARGS__)
#define ib_info(rid, ...) ib_log(IB_LOG_INFO, rid, __VA_ARGS__)
#define ib_warn(rid, ...) ib_log(IB_LOG_WARN, rid, __VA_ARGS__)
#define ib_error(rid, ...) ib_log(IB_LOG_ERROR, rid, __VA_ARGS__)

#endif
