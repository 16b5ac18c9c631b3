/* ingress_options.c - HubSpot optionsUrl answers (see ingress_options.h). STUB: being written. */
#include "worker/ingress_options.h"

#include <stdio.h>

struct ingress_options *ingress_options_new(const struct config *cfg, struct metrics *metrics,
                                            char *errstr, size_t errsz)
{
    (void)cfg;
    (void)metrics;
    snprintf(errstr, errsz, "options: not built yet");
    return NULL;
}

void ingress_options_free(struct ingress_options *o)
{
    (void)o;
}

int ingress_options_answer(struct ingress_options *o, const char *body, size_t len,
                           struct jbuf *out)
{
    (void)o;
    (void)body;
    (void)len;
    jbuf_obj_open(out);
    jbuf_kv_str(out, "message", "options are not served yet");
    jbuf_obj_close(out);
    return 503;
}
