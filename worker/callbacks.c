/* callbacks.c - the callback completer (see callbacks.h). STUB: being written. */
#include "worker/callbacks.h"

#include <stdio.h>

struct callbacks *callbacks_start(const struct config *cfg, struct hubspot_api *hubspot,
                                  struct metrics *metrics, char *errstr, size_t errsz)
{
    (void)cfg;
    (void)hubspot;
    (void)metrics;
    snprintf(errstr, errsz, "callbacks: not built yet");
    return NULL;
}

void callbacks_stop(struct callbacks *cb, int64_t drain_ms)
{
    (void)cb;
    (void)drain_ms;
}
