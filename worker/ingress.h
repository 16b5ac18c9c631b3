/* ingress.h - the HTTP side of `hsqb-worker ingress`: HubSpot's actionUrl and optionsUrl.
 *
 * Owns: one libmicrohttpd daemon (epoll, a pool of ingress.threads threads) bound to
 * ingress.listen. Routes:
 *   POST /hubspot/actions/<action>  a workflow action's execution request (actionUrl);
 *                                   <action> is create_invoice, create_estimate, ...
 *   POST /hubspot/actions           the same, the action chosen by
 *                                   origin.actionDefinitionId (ingress.action_definitions)
 *   POST /hubspot/options           the workflow editor's options fetch (optionsUrl),
 *                                   answered by worker/ingress_options.h
 *   GET  /qbo/connect, /qbo/callback, GET|POST /qbo/disconnect, GET /hubspot/install,
 *   GET  /hubspot/oauth-callback    the browser pages that connect accounts, answered by
 *                                   worker/connect.h (unsigned: they check their own
 *                                   links, states and CSRF tokens; forms of at most 8 KiB)
 *   GET  /healthz                   200 while the server runs (for load balancers)
 * Every POST to /hubspot/ must carry HubSpot's signature of METHOD + URI + body: v3
 * (X-HubSpot-Signature-v3 + X-HubSpot-Request-Timestamp, refused when older or newer than
 * 5 minutes) when present, else v2 (X-HubSpot-Signature + X-HubSpot-Signature-Version: v2),
 * checked in constant time against each of ingress.client_secrets; URI is
 * ingress.public_url followed by the path and query exactly as requested.
 *
 * An action request becomes the CloudEvent schemas/action-event.schema.json defines: id =
 * callbackId, type hsqb.action.<action>, source
 * hsqb-ingress://<public host>/portal/<portalId>[/workflow/<workflowId>], time = now,
 * data = the request body byte for byte; it is checked with the worker's own decoder
 * (event_decode) and produced to kafka.topic.actions with key portal:OBJECT_TYPE:objectId
 * through the idempotent producer (acks=all). The answer waits for the broker without
 * holding a thread (the connection is suspended until the delivery report):
 *   200 {"outputFields":{"hs_execution_state":"BLOCK","hs_expiration_duration":…}} once
 *       the event is durable;
 *   503 when Kafka refused it or did not acknowledge within ingress.produce_timeout
 *       (HubSpot retries 5xx; its retry carries the same callbackId, which the worker
 *       deduplicates);
 *   400 (body not an execution request, or one the worker would refuse), 401
 *   (signature), 404, 405, 413 (over ingress.max_body), 415 (not application/json).
 * Every error answer is {"message":"…"}; request bodies are never logged.
 *
 * Thread-safety: ingress_start()/ingress_stop() on one thread; the rest from any thread.
 */
#ifndef HSQB_INGRESS_H
#define HSQB_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/json.h"
#include "worker/event.h"

struct ingress;
struct connect;
struct ingress_options;
struct metrics;
struct producer;

struct ingress_params {
    const struct config *cfg;        /* ingress.*, kafka.topic.actions; read at start */
    struct metrics *metrics;         /* may be NULL */
    struct producer *producer;       /* the events' producer */
    struct ingress_options *options; /* NULL: /hubspot/options answers 503 */
    struct connect *connect;         /* NULL: the connect pages answer 503 */
};

/* Starts serving. Everything in p is borrowed and must outlive ingress_stop(). NULL with
 * errstr filled on bad settings (public_url, secrets, action_definitions, listen) or when
 * the port cannot be bound. */
struct ingress *ingress_start(const struct ingress_params *p, char *errstr, size_t errsz);

/* The bound TCP port (useful with port 0). */
int ingress_port(const struct ingress *in);

/* Action requests waiting for their delivery report. */
int64_t ingress_pending(const struct ingress *in);

/* Stops accepting connections, lets requests waiting for Kafka finish (at most drain_ms;
 * those still waiting are answered 503, HubSpot retries them), then stops the daemon and
 * frees in. NULL-safe. */
void ingress_stop(struct ingress *in, int64_t drain_ms);

/* ---- the event of one request (pure; exposed for tests and the fuzz target) ---------- */

/* ingress.action_definitions: a HubSpot definition id and the action it stands for. */
struct ingress_action_def {
    int64_t id;
    enum hsqb_action action;
};

/* One signature-checked action request; everything borrowed. */
struct ingress_request {
    const char *public_host;               /* host[:port] of ingress.public_url */
    const struct ingress_action_def *defs; /* for requests without an action in the path */
    size_t ndefs;
    int has_action; /* 1: the path named action */
    enum hsqb_action action;
    const char *body; /* the request body, len bytes (not NUL-terminated) */
    size_t len;
    int64_t now_ms; /* the event's time, epoch ms */
};

/* Builds the CloudEvent of request rq into jb (initialised by the caller, capped at
 * EVENT_MAX_BYTES) and decodes it with event_decode() into ev, exactly as the worker will.
 * 0 (release ev with event_release()), or -1 with the 400 answer's reason in msg (ev
 * untouched). Never crashes on any body (fuzzed: tests/fuzz/fuzz_ingress_request.c). */
int ingress_event_build(const struct ingress_request *rq, struct jbuf *jb,
                        struct action_event *ev, char *msg, size_t msgsz);

#endif
