/* guard.h - what keeps an HTTP listener answering when clients misbehave: an absolute
 * deadline per request, so a client that trickles its request a byte at a time (which
 * resets libmicrohttpd's idle timeout forever) is cut off; used with libmicrohttpd's own
 * connection caps (total and per client address) by the metrics/health listener
 * (worker/httpd.c) and the ingress (worker/ingress.c).
 *
 * Owns: one record per open connection (its start, whether its request was read whole,
 * a dup() of its socket) and a reaper thread that, every GUARD_TICK_MS, shuts down the
 * socket of every connection whose request is still unread after the deadline. The
 * daemon then sees the connection end and closes it the usual way (its NOTIFY_CLOSED
 * drops the record). Shutting down our own duplicate acts on the socket, never on a
 * descriptor number the daemon may have reused, so no race with the daemon's close.
 *
 * The clock of a connection starts when it is accepted and again when a request on it
 * was answered (keep-alive: the next request, or the idle wait for it, gets the same
 * deadline); it stops when the caller says the request was read whole
 * (guard_request_read: a request waiting for Kafka or a vendor is ours to finish, not the
 * client's to stall).
 *
 * Thread-safety: the callbacks run on the daemon's threads, the reaper on its own; the
 * records are under one mutex.
 */
#ifndef HSQB_GUARD_H
#define HSQB_GUARD_H

#include <stdint.h>

#include <microhttpd.h>

#define GUARD_TICK_MS 100 /* how often deadlines are checked */

struct guard;

/* name: the listener in log lines ("metrics", "ingress"). deadline_ms > 0. Starts the
 * reaper. NULL with errstr. */
struct guard *guard_new(const char *name, int64_t deadline_ms, char *errstr, size_t errsz);
/* Stops the reaper and frees g; call after the daemon stopped (every connection closed).
 * NULL-safe. */
void guard_free(struct guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the guard as its closure. */
void guard_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);
/* The request on c was read whole: its connection has no deadline until it is answered. */
void guard_request_read(struct MHD_Connection *c);
/* The request on c was answered (MHD_OPTION_NOTIFY_COMPLETED): the clock starts again for
 * the next one. */
void guard_request_done(struct MHD_Connection *c);

/* A libmicrohttpd message (its logger's, trailing newlines trimmed) as a warning, at most
 * one line a second per listener with the count of those not logged: a flood of slow or
 * refused clients must not flood the log too. g may be NULL (logged as it comes). */
void guard_log(struct guard *g, const char *msg);

/* Connections cut by the deadline since guard_new. */
uint64_t guard_cut_count(struct guard *g);

#endif
