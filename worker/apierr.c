/* apierr.c - classified upstream failures (see apierr.h). */
#include "worker/apierr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

void api_error_clear(struct api_error *e)
{
    memset(e, 0, sizeof *e);
    e->cls = API_OK;
}

void api_error_set(struct api_error *e, enum api_class cls, enum hsqb_error code, int status,
                   const char *fmt, ...)
{
    char raw[API_MSG_MAX];
    va_list ap;
    e->cls = cls;
    e->source = API_SOURCE_NONE;
    e->code = code;
    e->http_status = status;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    log_redact(raw, e->message, sizeof e->message);
}

int api_error_tag(struct api_error *e, enum api_source src, int rc)
{
    if (rc < 0 && e->source == API_SOURCE_NONE)
        e->source = src;
    return rc;
}

int api_error_retryable(const struct api_error *e)
{
    return e->cls == API_TRANSIENT || e->cls == API_THROTTLED;
}

const char *api_class_name(enum api_class c)
{
    switch (c) {
    case API_OK:
        return "ok";
    case API_TRANSIENT:
        return "transient";
    case API_THROTTLED:
        return "throttled";
    case API_AUTH:
        return "auth";
    case API_NOT_FOUND:
        return "not_found";
    case API_PERMANENT:
        return "permanent";
    }
    return "?";
}
