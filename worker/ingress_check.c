/* ingress_check.c - what a request must carry before its body is read (see
 * ingress_internal.h): the route, the method, the content type, the declared length and,
 * on HubSpot's routes, a signature header (nothing unsigned is buffered); then the body,
 * gathered up to its route's limit.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "worker/connect.h"
#include "worker/connect_state.h"
#include "worker/ingress_internal.h"
#include "worker/metrics.h"

/* ---- signatures ------------------------------------------------------------------------ */

/* Logs a refused request (rate-limited by the signer) with the client's address. */
void ingress_log_refusal(struct ingress *in, struct MHD_Connection *c, const char *what)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[NI_MAXHOST] = "?";

    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    host, sizeof host, NULL, 0, NI_NUMERICHOST);
    ingress_signer_log_refusal(&in->sign, host, what);
}

struct ingress_sig_headers ingress_signature_headers(struct MHD_Connection *c)
{
    return (struct ingress_sig_headers){
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-v3"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Request-Timestamp"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-Version")};
}

/* application/json, with or without parameters (charset=utf-8). */
static int is_json(const char *ct)
{
    size_t n = strlen("application/json");

    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The first call of a connect page's request (browsers: no signature, forms instead of
 * JSON): 0 to go on reading, -1 when r already holds the answer. */
static int check_connect(struct req *r, struct MHD_Connection *c, const char *url,
                         const char *method)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    r->route = ROUTE_CONNECT;
    snprintf(r->method, sizeof r->method, "%s",
             strlen(method) < sizeof r->method ? method : "OTHER");
    const char *session = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CONNECT_SESSION_COOKIE);
    const char *flow = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CONNECT_FLOW_COOKIE);

    if (!(r->path = strdup(url)) ||
        (session && strlen(session) <= CONNECT_TOKEN_MAX && !(r->session = strdup(session))) ||
        (flow && strlen(flow) <= CONNECT_NONCE_LEN && !(r->flow = strdup(flow)))) {
        ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "This server ran out of memory.");
        return -1;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 &&
        (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
         (ct[33] != '\0' && ct[33] != ';'))) {
        ingress_req_set_message(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "This page takes forms only.");
        return -1;
    }
    if (cl && strtoull(cl, NULL, 10) > INGRESS_FORM_MAX) {
        ingress_req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, "The form is too large.");
        return -1;
    }
    return 0;
}

/* The first call of a request: route, method, type and declared length. 0 to go on
 * reading, -1 when r already holds the answer. */
int ingress_check_headers(struct ingress *in, struct req *r, struct MHD_Connection *c,
                          const char *url, const char *method)
{
    size_t plen = strlen(INGRESS_ACTIONS_PATH);
    const char *cl;
    char msg[160];
    int stopping;

    pthread_mutex_lock(&in->mu);
    stopping = in->stopping;
    pthread_mutex_unlock(&in->mu);
    if (stopping) {
        r->close = 1;
        ingress_req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
        return -1;
    }
    if (strlen(r->uri) >= INGRESS_URI_MAX) {
        ingress_req_set_message(r, MHD_HTTP_URI_TOO_LONG, "the request target is too long");
        return -1;
    }

    if (connect_is_route(url))
        return check_connect(r, c, url, method);
    if (strcmp(url, INGRESS_OPTIONS_PATH) == 0) {
        r->route = ROUTE_OPTIONS;
    } else if (strncmp(url, INGRESS_ACTIONS_PATH, plen) == 0 &&
               (url[plen] == '\0' || url[plen] == '/')) {
        r->route = ROUTE_ACTIONS;
        if (url[plen] == '/') {
            if (event_action_from_name(url + plen + 1, &r->action) < 0) {
                ingress_req_set_message(r, MHD_HTTP_NOT_FOUND, "no such action");
                return -1;
            }
            r->has_action = 1;
        }
    } else {
        r->route = ROUTE_OTHER;
        if (strcmp(url, "/healthz") == 0 && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                                             strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)) {
            ingress_req_set_answer(r, MHD_HTTP_OK, "{\"status\":\"ok\"}", 15);
            return -1;
        }
        ingress_req_set_message(
            r, strcmp(url, "/healthz") == 0 ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
            strcmp(url, "/healthz") == 0 ? "method not allowed" : "not found");
        return -1;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
        ingress_req_set_message(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use POST");
        return -1;
    }
    if (!is_json(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        ingress_req_set_message(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "the body must be application/json");
        return -1;
    }
    /* nothing unsigned is read: a body is buffered only when a signature may cover it */
    struct ingress_sig_headers sh = ingress_signature_headers(c);

    if (!ingress_signer_may_read(&in->sign, &sh)) {
        metrics_ingress_signature_failure(in->m, "missing");
        ingress_log_refusal(in, c,
                            in->sign.require_v3
                                ? "no X-HubSpot-Signature-v3 header (v3 required)"
                                : "no X-HubSpot-Signature-v3 or X-HubSpot-Signature header");
        ingress_req_set_message(r, MHD_HTTP_UNAUTHORIZED,
                                in->sign.require_v3
                                    ? "signature refused: X-HubSpot-Signature-v3 required"
                                    : "signature refused: no X-HubSpot-Signature-v3 or "
                                      "X-HubSpot-Signature header");
        return -1;
    }
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > in->max_body) {
        snprintf(msg, sizeof msg, "the body exceeds %zu bytes", in->max_body);
        ingress_req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        return -1;
    }
    return 0;
}

/* The largest body r may carry. */
size_t ingress_body_max(const struct ingress *in, const struct req *r)
{
    return r->route == ROUTE_CONNECT && in->max_body > INGRESS_FORM_MAX ? INGRESS_FORM_MAX
                                                                        : in->max_body;
}

int ingress_append_body(struct ingress *in, struct req *r, const char *data, size_t n)
{
    size_t cap, max = ingress_body_max(in, r);
    char *p;

    if (r->too_large || r->len + n > max) {
        r->too_large = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        cap = r->cap ? r->cap * 2 : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        if ((p = realloc(r->body, cap)) == NULL)
            return -1;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}
