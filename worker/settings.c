/* settings.c - hsqb-worker's settings table and the checks that span several keys.
 *
 * The table is the single place a setting is declared (style rule 13). Defaults are
 * production values; the facts behind them are in /work/shared/reference:
 *   - QBO: 500 requests/min and at most 10 concurrent requests per realm, minorversion
 *     75 (every lower version is served as 75 since 2025-08-01), backoff capped ~60 s;
 *   - HubSpot: 100 requests per 10 s for the smallest private-app tier (110 for public
 *     OAuth apps, 190 for Professional/Enterprise), so 100 is safe everywhere;
 *   - Intuit's token endpoint and API base URLs, HubSpot's https://api.hubapi.com.
 * Everything else (timeouts, in-flight bounds, retry schedule) is sized so one slow
 * realm cannot hold the worker: short in-process retries, then the retry topic.
 *
 * The pass-through check applies the kafka.* properties to a scratch rd_kafka_conf_t
 * so `config check` rejects a misspelt librdkafka property before the worker starts.
 */
#include "worker/settings.h"

#include "common/http.h"
#include "common/jtape.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/seal.h"
#include "worker/connect_state.h"
#include "worker/httpd.h"
#include "worker/hubspot.h"

#include <stdlib.h>
#include <string.h>

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"json", "text", NULL};
static const char *const roundings[] = {"half_up", "half_even", NULL};
static const char *const callback_modes[] = {"ingress", "all", "off", "true", "false", NULL};

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define KIB  1024LL
#define MIB  (1024 * KIB)

/* clang-format off */
static const struct config_def settings[] = {
    /* ---- Kafka ---- */
    {"kafka.brokers", CONFIG_STRING, NULL, 0, 0,
     "Kafka bootstrap servers, host:port[,host:port...] (librdkafka bootstrap.servers).",
     CONFIG_REQUIRED, NULL},
    {"kafka.group.id", CONFIG_STRING, "hsqb-worker", 1, 249,
     "Consumer group shared by every replica; partitions are spread across its members.",
     0, NULL},
    {"kafka.topic.actions", CONFIG_STRING, "hsqb.actions", 1, 249,
     "Input topic of workflow-action events (CloudEvents, key portal:objectType:objectId).",
     0, NULL},
    {"kafka.topic.retry", CONFIG_STRING, "hsqb.actions.retry", 1, 249,
     "Topic for delayed re-delivery of events that failed transiently.", 0, NULL},
    {"kafka.topic.dlq", CONFIG_STRING, "hsqb.actions.dlq", 1, 249,
     "Dead-letter topic: events that failed permanently or ran out of retries.", 0, NULL},
    {"kafka.topic.results", CONFIG_STRING, "hsqb.results", 1, 249,
     "Topic receiving one result event per input event.", 0, NULL},
    {"kafka.revoke_timeout", CONFIG_DURATION, "15s", 0, 5 * MIN,
     "On a rebalance, how long revoked partitions may finish in-flight events before "
     "their offsets are stored and they are released; keep well under "
     "max.poll.interval.ms.", 0, NULL},

    /* ---- Redis ---- */
    {"redis.host", CONFIG_STRING, "127.0.0.1", 1, 253,
     "Redis host name or address (claims, dedup markers, caches, locks, OAuth tokens, "
     "rate limits).", 0, NULL},
    {"redis.port", CONFIG_INT, "6379", 1, 65535, "Redis TCP port.", 0, NULL},
    {"redis.username", CONFIG_STRING, NULL, 0, 0,
     "Redis ACL user (Redis 6+); empty authenticates as the default user.", 0, NULL},
    {"redis.password", CONFIG_STRING, NULL, 0, 0,
     "Redis password; empty sends no AUTH.", CONFIG_SECRET, NULL},
    {"redis.db", CONFIG_INT, "0", 0, 1023,
     "Redis database number (must be 0 with Redis Cluster).", 0, NULL},
    {"redis.connect_timeout", CONFIG_DURATION, "2s", 100, 1 * MIN,
     "Timeout for connecting to Redis.", 0, NULL},
    {"redis.command_timeout", CONFIG_DURATION, "2s", 100, 1 * MIN,
     "Timeout for one Redis command or script; a timeout is a transient failure.", 0, NULL},
    {"redis.key_prefix", CONFIG_STRING, "hsqb:", 0, 64,
     "Prefix of every Redis key, so several deployments can share one Redis.", 0, NULL},
    {"redis.unix_socket", CONFIG_STRING, NULL, 0, 1024,
     "Path of a local Redis's unix socket; when set it is used instead of redis.host and "
     "redis.port (no TCP: nothing crosses the network).", 0, NULL},
    {"redis.encryption_keys", CONFIG_STRING, NULL, 0, 0,
     "Keys that encrypt the OAuth and HubSpot tokens stored in Redis (AES-256-GCM), one "
     "per line: \"<key id> <32 bytes in base64>\" (openssl rand -base64 32). The first "
     "line encrypts, every line decrypts (rotation: README, \"Secrets at rest\"). Give "
     "it as a file: HSQB_REDIS_ENCRYPTION_KEYS_FILE. Empty: tokens are stored in plain "
     "text, as before this setting existed (a warning at start).", CONFIG_SECRET, NULL},
    {"redis.require_encryption", CONFIG_BOOL, "false", 0, 0,
     "Refuse to start without redis.encryption_keys, and refuse tokens found stored in "
     "plain text instead of re-encrypting them when read. Set it once `hsqb-worker "
     "credentials reencrypt` has run (production).", 0, NULL},

    /* ---- Pipeline ---- */
    {"worker.threads", CONFIG_INT, "16", 1, 256,
     "Threads running event pipelines; each holds one HTTP handle and one Redis "
     "connection. Work is I/O-bound, so more threads than cores is normal.", 0, NULL},
    {"worker.max_in_flight", CONFIG_INT, "1024", 1, 100000,
     "Events dispatched but not finished, across all partitions; over it the consumer "
     "pauses partitions (and keeps polling).", 0, NULL},
    {"worker.max_in_flight_per_partition", CONFIG_INT, "256", 1, 100000,
     "Events in flight from one partition (different keys run concurrently, one key "
     "runs in order); over it that partition is paused.", 0, NULL},
    {"event.max_bytes", CONFIG_SIZE, "1MiB", 1 * KIB, 64 * MIB,
     "Largest input event accepted; a larger one is INVALID_EVENT and goes to the DLQ "
     "with its raw bytes.", 0, NULL},
    {"dedup.window", CONFIG_DURATION, "7d", 1 * HOUR, 90 * DAY,
     "How long an event's done marker and result are kept in Redis; a redelivery within "
     "it re-publishes the stored result without calling any API.", 0, NULL},
    {"claim.lease", CONFIG_DURATION, "30s", 5 * SEC, 1 * HOUR,
     "Lease of an event's claim, renewed while its pipeline runs; after a crash another "
     "replica may take the event over once the lease lapses.", 0, NULL},

    /* ---- HubSpot ---- */
    {"hubspot.base_url", CONFIG_STRING, "https://api.hubapi.com", 1, 2048,
     "HubSpot API base URL (tests point it at the sandbox).", 0, NULL},
    {"hubspot.token", CONFIG_STRING, NULL, 0, 0,
     "Default HubSpot access token (private-app token) for portals without a token of "
     "their own in Redis (stored by `hsqb-worker credentials`), and only for those "
     "hubspot.token_portals lists.", CONFIG_SECRET, NULL},
    {"hubspot.token_portals", CONFIG_LIST, NULL, 0, 10000,
     "The HubSpot portals (ids, comma separated) the default hubspot.token serves; \"*\" "
     "= any portal (the behaviour before tenant checks: set it when upgrading a "
     "deployment whose portals share one private-app token). A portal neither listed nor "
     "holding a token of its own fails PORTAL_NOT_CONNECTED before any API call.",
     0, NULL},
    {"hubspot.rate_limit_per_10s", CONFIG_INT, "100", 1, 1000,
     "HubSpot requests per 10 s per portal, shared by all replicas. HubSpot allows 100 "
     "(Free/Starter private apps), 110 (public apps) or 190 (Professional/Enterprise).",
     0, NULL},
    {"hubspot.max_concurrent_per_portal", CONFIG_INT, "6", 1, 100,
     "HubSpot requests in flight at once per portal in this process.", 0, NULL},

    {"hubspot.developer_key", CONFIG_STRING, NULL, 0, 0,
     "HubSpot developer API key, for `hsqb-worker hubspot-actions sync` only (action "
     "definitions); pass it through HSQB_HUBSPOT_DEVELOPER_KEY_FILE.", CONFIG_SECRET, NULL},
    {"hubspot.oauth.client_id", CONFIG_STRING, NULL, 0, 256,
     "The HubSpot app's client ID, for its OAuth install flow (`hsqb-worker ingress`: "
     "GET /hubspot/install; empty, the install answers 503) and the workers' refresh of "
     "installed portals' access tokens.", 0, NULL},
    {"hubspot.oauth.client_secret", CONFIG_STRING, NULL, 0, 0,
     "The HubSpot app's client secret, for exchanging install codes and refreshing "
     "installed portals' access tokens (normally the value ingress.client_secrets lists "
     "for the same app).", CONFIG_SECRET, NULL},
    {"hubspot.oauth.refresh_margin", CONFIG_DURATION, "5m", 0, 30 * MIN,
     "Refresh an installed portal's HubSpot access token (valid 30 min) when less than "
     "this remains (at most half its lifetime); needs hubspot.oauth.client_id and "
     "hubspot.oauth.client_secret on every worker.", 0, NULL},
    {"hubspot.oauth.authorize_url", CONFIG_STRING, "https://app.hubspot.com/oauth/authorize",
     1, 2048,
     "HubSpot's authorization page the install flow sends the browser to (tests point it "
     "at the sandbox); the code is exchanged at hubspot.base_url.", 0, NULL},
    {"hubspot.oauth.scopes", CONFIG_LIST,
     "oauth,automation,crm.objects.companies.read,crm.objects.contacts.read,"
     "crm.objects.deals.read,crm.objects.line_items.read,crm.objects.products.read,"
     "crm.objects.quotes.read,crm.objects.commercepayments.read,tax_rates.read", 1, 64,
     "Scopes the install asks for, comma separated: exactly the app's required scopes "
     "(HubSpot refuses an authorization that omits one).", 0, NULL},
    {"hubspot.oauth.optional_scopes", CONFIG_LIST, NULL, 0, 64,
     "Optional scopes the install also asks for (the app's optional scopes), comma "
     "separated.", 0, NULL},

    /* ---- QuickBooks Online ---- */
    {"qbo.app_url", CONFIG_STRING, "https://app.qbo.intuit.com", 1, 2048,
     "QuickBooks web app base URL for links to documents in callback output fields "
     "(qbo_document_url); sandbox companies use https://app.sandbox.qbo.intuit.com.",
     0, NULL},
    {"qbo.base_url", CONFIG_STRING, "https://quickbooks.api.intuit.com", 1, 2048,
     "QuickBooks Online Accounting API base URL (sandbox companies: "
     "https://sandbox-quickbooks.api.intuit.com).", 0, NULL},
    {"qbo.minorversion", CONFIG_INT, "75", 75, 999,
     "minorversion sent with every QBO request; Intuit serves every lower version as 75 "
     "since 2025-08-01.", 0, NULL},
    {"qbo.rate_limit_per_min", CONFIG_INT, "500", 1, 10000,
     "QBO requests per minute per realm, shared by all replicas (Intuit's limit: 500).",
     0, NULL},
    {"qbo.max_concurrent_per_realm", CONFIG_INT, "10", 1, 50,
     "QBO requests in flight at once per realm in this process (Intuit answers 429 beyond "
     "10 per app and realm).", 0, NULL},

    /* ---- Intuit OAuth ---- */
    {"oauth.token_url", CONFIG_STRING,
     "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer", 1, 2048,
     "Intuit OAuth 2.0 token endpoint, used to refresh QBO access tokens.", 0, NULL},
    {"oauth.client_id", CONFIG_STRING, NULL, 0, 0,
     "Intuit app client ID.", CONFIG_REQUIRED, NULL},
    {"oauth.client_secret", CONFIG_STRING, NULL, 0, 0,
     "Intuit app client secret.", CONFIG_REQUIRED | CONFIG_SECRET, NULL},
    {"oauth.refresh_margin", CONFIG_DURATION, "5m", 0, 30 * MIN,
     "Refresh a QBO access token (valid 1 h) when less than this remains.", 0, NULL},
    {"oauth.authorize_url", CONFIG_STRING, "https://appcenter.intuit.com/connect/oauth2", 1,
     2048,
     "Intuit's consent page, where the ingress's GET /qbo/connect sends the browser "
     "(tests point it at the sandbox).", 0, NULL},
    {"oauth.revoke_url", CONFIG_STRING,
     "https://developer.api.intuit.com/v2/oauth2/tokens/revoke", 1, 2048,
     "Intuit's token revocation endpoint, called when a company is disconnected.", 0, NULL},

    /* ---- Tenants (worker/tenancy.h) ---- */
    {"tenancy.allow_unbound", CONFIG_BOOL, "false", 0, 0,
     "Let an event through whose QuickBooks realm is bound to no HubSpot portal (a realm "
     "bound to another portal is refused all the same). Off, such events fail "
     "REALM_NOT_ALLOWED before any API call. For upgrading: on until every realm in use "
     "is bound (`hsqb-worker credentials bind`), then off.", 0, NULL},
    {"tenancy.cache_ttl", CONFIG_DURATION, "5m", 0, 1 * HOUR,
     "How long a worker trusts a realm's binding it read from Redis (0 = read it for "
     "every event). A bind or unbind reaches every worker within about a second anyway "
     "(it bumps a counter each worker polls once a second); this bounds the time a worker "
     "may miss one whose signal was lost. Refusals are never cached.", 0, NULL},

    /* ---- HTTP ---- */
    {"http.connect_timeout", CONFIG_DURATION, "5s", 100, 1 * MIN,
     "Timeout for establishing a connection to an API.", 0, NULL},
    {"http.timeout", CONFIG_DURATION, "30s", 1 * SEC, 10 * MIN,
     "Timeout for one whole HTTP request; a timeout is transient and the retry reuses "
     "the same requestid.", 0, NULL},
    {"http.max_response_bytes", CONFIG_SIZE, "8MiB", 64 * KIB, 256 * MIB,
     "Largest HTTP response body read; a larger one fails the request. It also caps the "
     "JSON values one answer may hold at a sixteenth of it (512Ki for 8MiB: 12MiB of "
     "parser memory per thread); an answer with more is refused like a larger one: the "
     "event fails QBO_VALIDATION or HUBSPOT_VALIDATION, not retried.",
     0, NULL},
    {"http.user_agent", CONFIG_STRING, "hsqb-worker", 1, 256,
     "User-Agent header sent to HubSpot and Intuit.", 0, NULL},
    {"http.allow_insecure", CONFIG_BOOL, "false", 0, 0,
     "Accept http:// for hubspot.base_url, qbo.base_url, the oauth.* URLs, "
     "hubspot.oauth.authorize_url and ingress.public_url. Off, a plain-text URL is "
     "refused: those requests carry bearer tokens, codes and the client secrets. For "
     "local test stacks only.", 0, NULL},

    /* ---- Retries ---- */
    {"retry.attempts", CONFIG_INT, "4", 1, 20,
     "Runs of an event's whole action (the first included) within one delivery: a "
     "transient or throttled failure reruns the action from its start after an "
     "in-process backoff; after this many runs (or when retry.budget is spent, or the "
     "tenant's circuit opens) the event goes to the retry topic. The API clients do not "
     "retry single calls (beyond resending after a token refresh).", 0, NULL},
    {"retry.base", CONFIG_DURATION, "250ms", 10, 1 * MIN,
     "First in-process backoff; each retry draws from [0, min(cap, base * 2^n)] (full "
     "jitter); Retry-After wins when present.", 0, NULL},
    {"retry.cap", CONFIG_DURATION, "10s", 100, 5 * MIN,
     "Longest single in-process backoff.", 0, NULL},
    {"retry.budget", CONFIG_DURATION, "30s", 1 * SEC, 10 * MIN,
     "Total time one event may spend in in-process backoff before it moves to the "
     "retry topic (so a slow tenant does not hold a thread).", 0, NULL},
    {"retry.schedule", CONFIG_LIST, "30s,2m,10m,30m,1h", 1, 32,
     "Delays before the 1st, 2nd, ... re-delivery from the retry topic; the last one "
     "repeats. Each item is a duration of at least 1s.", 0, NULL},
    {"retry.max_attempts", CONFIG_INT, "10", 1, 1000,
     "Deliveries of one event (the first included) before it fails with "
     "RETRIES_EXHAUSTED and goes to the DLQ.", 0, NULL},
    {"retry.max_age", CONFIG_DURATION, "24h", 1 * MIN, 30 * DAY,
     "An event whose first failure is older than this fails with RETRIES_EXHAUSTED "
     "instead of being retried; at most dedup.window.", 0, NULL},
    {"retry.hold_max", CONFIG_DURATION, "2m", 1 * SEC, 1 * HOUR,
     "Longest a record of the retry topic is held in memory waiting for its not-before "
     "time; a longer wait re-queues it to the retry topic after one hold, so no retry "
     "partition's committed offset lags by more than this.", 0, NULL},
    {"retry.max_held", CONFIG_INT, "10000", 1, 1000000,
     "Retry-topic records held in memory at once by this process; at the bound the retry "
     "partitions are paused (the main topic is not) until half of them ran.", 0, NULL},
    {"retry.max_held_per_partition", CONFIG_INT, "5000", 1, 1000000,
     "Retry-topic records held in memory at once from one partition; at the bound that "
     "partition is paused until half of them ran.", 0, NULL},
    {"retry.max_held_bytes", CONFIG_SIZE, "64MiB", 1 * MIB, 4096 * MIB,
     "Memory held by waiting retry-topic records (their copied keys, values and "
     "headers); at the bound the retry partitions are paused.", 0, NULL},

    /* ---- Circuit breaker (head-of-line protection) ---- */
    {"breaker.failures", CONFIG_INT, "5", 0, 1000,
     "Consecutive transient failures (5xx, timeouts, 429) of one tenant (QBO realm or "
     "HubSpot portal) that open its circuit: its events then go straight to the retry "
     "topic without API calls. 0 disables the breaker. Per process: replicas do not "
     "share breaker state.", 0, NULL},
    {"breaker.cooldown", CONFIG_DURATION, "30s", 1 * SEC, 1 * HOUR,
     "How long an open circuit stays open before one probe event may try the tenant "
     "again (half-open); success closes it, failure re-opens it for twice as long.",
     0, NULL},
    {"breaker.max_cooldown", CONFIG_DURATION, "10m", 1 * SEC, 24 * HOUR,
     "Upper bound of the doubling open period of a tenant whose probes keep failing.",
     0, NULL},

    /* ---- Behaviour ---- */
    {"money.rounding", CONFIG_ENUM, "half_up", 0, 0,
     "Rounding of amounts that fall between cents (percentage discounts): half_up "
     "rounds halves away from zero, half_even to the even cent.", 0, roundings},
    {"dates.time_zone_by_realm", CONFIG_STRING, NULL, 0, 4000,
     "Per-company time zones for document dates, as \"<realm id>=<IANA zone>\" entries "
     "separated by \";\" (e.g. 4620816365014867780=America/Los_Angeles). A company not "
     "listed uses the HubSpot portal's time zone (account details), else UTC.",
     0, NULL},
    {"resolve.reactivate_inactive", CONFIG_BOOL, "false", 0, 0,
     "When the customer or product an event matches is inactive in QuickBooks: false fails "
     "the event QBO_RECORD_INACTIVE before anything is written (the accountant decides); "
     "true makes it active again and books.",
     0, NULL},
    /* ---- Budgets: what one event may spend ---- */
    {"budget.max_line_items", CONFIG_INT, "1000", 1, HUBSPOT_MAX_LINE_ITEMS,
     "Most lines one document may have (line items, plus a quote's fees); more fails the "
     "event BUDGET_EXCEEDED before the line items are read from HubSpot and before anything "
     "is written. At most 1000, the most line items the worker reads for one object. Real "
     "documents have tens of lines; QuickBooks' own screens stop well below this.", 0, NULL},
    {"budget.max_qbo_writes", CONFIG_INT, "200", 1, 100000,
     "Most QuickBooks writes one event may make, counted from what was read before the "
     "first write: a customer that may need creating, each distinct product to create or "
     "reactivate, the document, a paid invoice's Payment, the email send, an expense's "
     "vendor. More fails the event BUDGET_EXCEEDED with nothing created, so one deal of "
     "a thousand new products cannot spend a company's request quota.", 0, NULL},
    {"items.income_account_by_realm", CONFIG_STRING, NULL, 0, 8000,
     "Per-company income accounts for items the worker creates, as "
     "\"<realm id>=<account Id or Name>\" entries separated by \";\" (a company not listed "
     "uses items.income_account, then discovery). An event's income_account input wins.",
     0, NULL},
    {"items.income_account", CONFIG_STRING, NULL, 0, 200,
     "QBO income account (Id or exact Name) for items the worker creates; empty uses the "
     "realm's first active Income account.", 0, NULL},
    {"payments.default_item", CONFIG_STRING, "Services", 1, 100,
     "QBO item (exact Name) for the single line of a payment without line items "
     "(sales receipt, refund receipt from a payment); matched like a product, so it must "
     "exist unless the event sets create_missing_products.", 0, NULL},
    {"quotes.fee_item", CONFIG_STRING, "Fees", 1, 100,
     "QBO item (exact Name) a quote's fees are booked on, one line per HubSpot fee; "
     "matched like a product, so it must exist unless the event sets "
     "create_missing_products.", 0, NULL},
    {"quotes.allowed_statuses", CONFIG_STRING, "APPROVAL_NOT_NEEDED,APPROVED,ACCEPTED", 1, 200,
     "Comma-separated hs_status values of the quotes that may be booked (HubSpot: DRAFT, "
     "APPROVAL_NOT_NEEDED, PENDING_APPROVAL, APPROVED, REJECTED; CPQ quotes: DRAFT, "
     "ACCEPTED); others fail QUOTE_STATUS_NOT_ALLOWED before anything is written. \"*\" "
     "books any status.", 0, NULL},
    {"cache.local_ttl", CONFIG_DURATION, "60s", 0, 1 * DAY,
     "How long a worker keeps a customer, item, term or account mapping in its own "
     "memory before asking Redis again (0 = always ask Redis). Bounds how long a replica "
     "may use an id another replica found stale (QuickBooks then answers 610 once and "
     "the mapping is matched afresh).", 0, NULL},
    {"sales_receipt.deposit_account", CONFIG_STRING, NULL, 0, 200,
     "QBO account (Id or exact Name) sales receipts deposit to; empty leaves QBO's "
     "default, Undeposited Funds.", 0, NULL},

    /* ---- Workflow callbacks (completed by `run` from the results topic) ---- */
    {"callbacks.complete", CONFIG_ENUM, "ingress", 0, 0,
     "Which HubSpot workflow executions `run` completes (POST /automation/v4/actions/"
     "callbacks/complete, SUCCESS or FAIL_CONTINUE with the QBO ids as output fields), "
     "reading its own results back from the results topic: ingress = events `hsqb-worker "
     "ingress` produced (it answered HubSpot BLOCK); all = every event (another ingress "
     "answered BLOCK); off = none. true/false are the old spellings of all/off.",
     0, callback_modes},
    {"callbacks.auth_hold", CONFIG_DURATION, "1h", 1 * SEC, 7 * DAY,
     "How long HubSpot refusing our token for a portal (401/403) holds its completions, "
     "retried, until the token is fixed; after that they are refused (logged, counted), so "
     "one portal's broken token cannot stall the other portals' completions on the same "
     "partitions for good.", 0, NULL},
    {"callbacks.group", CONFIG_STRING, NULL, 0, 249,
     "Consumer group of the callback completer on the results topic; empty uses "
     "<kafka.group.id>-callbacks.", 0, NULL},
    {"callbacks.batch_size", CONFIG_INT, "100", 1, 100,
     "Completions per batch request (HubSpot accepts up to 100 per call); a portal's batch "
     "is sent when full or when its oldest completion waited callbacks.linger.", 0, NULL},
    {"callbacks.linger", CONFIG_DURATION, "200ms", 0, 10 * SEC,
     "Longest a completion waits for others of its portal before its batch is sent.",
     0, NULL},
    {"callbacks.retry_cap", CONFIG_DURATION, "30s", 100, 10 * MIN,
     "Longest backoff between attempts of a completion HubSpot failed transiently (5xx, "
     "429, timeouts); such completions are retried until they succeed, never dropped.",
     0, NULL},

    /* ---- Ingress (`hsqb-worker ingress`: HubSpot's actionUrl and optionsUrl) ---- */
    {"ingress.listen", CONFIG_STRING, "127.0.0.1:8080", 1, 262,
     "host:port the ingress serves POST /hubspot/actions[/<action>] and "
     "POST /hubspot/options on (0.0.0.0:8080 behind a TLS-terminating proxy).", 0, NULL},
    {"ingress.public_url", CONFIG_STRING, NULL, 0, 2048,
     "The https URL HubSpot calls, scheme://host[:port] without a path "
     "(https://hsqb.example.com): signatures cover this plus the request's path and query. "
     "Required by `ingress`.", 0, NULL},
    {"ingress.client_secrets", CONFIG_LIST, NULL, 0, 8,
     "The HubSpot app's client secret(s) that sign action and options requests, comma "
     "separated; list the new one next to the old during a rotation. Required by "
     "`ingress`.", CONFIG_SECRET, NULL},
    {"ingress.require_signature_v3", CONFIG_BOOL, "false", 0, 0,
     "Refuse requests without X-HubSpot-Signature-v3 (timestamped, so a captured request "
     "expires after 5 minutes). HubSpot sends v3 to public (OAuth) apps; leave false when "
     "it signs your app's requests with v2 only.", 0, NULL},
    {"ingress.action_definitions", CONFIG_STRING, NULL, 0, 4000,
     "For requests to POST /hubspot/actions (no action in the path): HubSpot action "
     "definition ids and the action each stands for, as \"<definitionId>=<action>\" "
     "entries separated by \";\" (e.g. 10646377=create_invoice).", 0, NULL},
    {"ingress.produce_timeout", CONFIG_DURATION, "5s", 100, 1 * MIN,
     "Longest an action request waits for Kafka to acknowledge its event (acks=all); "
     "then it is answered 503 and HubSpot retries.", 0, NULL},
    {"ingress.max_body", CONFIG_SIZE, "256KiB", 1 * KIB, 16 * MIB,
     "Largest request body accepted (413 beyond it).", 0, NULL},
    {"ingress.threads", CONFIG_INT, "2", 1, 64,
     "HTTP threads of the ingress (requests wait for Kafka without holding one).", 0, NULL},
    {"ingress.max_connections", CONFIG_INT, "2048", 16, 100000,
     "Concurrent connections the ingress accepts.", 0, NULL},
    {"ingress.max_connections_per_ip", CONFIG_INT, "0", 0, 100000,
     "Concurrent connections from one client address (0 = no cap). Behind a TLS proxy every "
     "connection comes from the proxy: cap per client there, and leave this 0.", 0, NULL},
    {"ingress.request_deadline", CONFIG_DURATION, "15s", 1 * SEC, 10 * MIN,
     "Longest a client may take to send one whole request (headers and body); a slower "
     "one is disconnected, however often it sends a byte. Waiting for Kafka or a vendor "
     "after the request was read does not count.", 0, NULL},
    {"ingress.expiration", CONFIG_STRING, "P1W", 0, 64,
     "hs_expiration_duration sent with BLOCK (ISO 8601 duration): how long HubSpot waits "
     "for the completion before the workflow moves on; empty leaves HubSpot's default.",
     0, NULL},
    {"ingress.session_secret", CONFIG_STRING, NULL, 0, 4096,
     "Key (at least 32 bytes; e.g. `openssl rand -base64 48`) that signs the connect "
     "flows' OAuth states, connect links and CSRF tokens; every ingress replica and "
     "`hsqb-worker credentials connect-link` need the same one. Empty: GET /qbo/connect, "
     "/qbo/callback, /qbo/disconnect, /hubspot/install and /hubspot/oauth-callback "
     "answer 503.", CONFIG_SECRET, NULL},
    {"options.cache_ttl", CONFIG_DURATION, "60s", 0, 1 * HOUR,
     "How long the options served to HubSpot's workflow editor (QuickBooks companies, "
     "terms, accounts, vendors, payment methods) are kept in Redis.", 0, NULL},

    /* ---- Operations ---- */
    {"metrics.listen", CONFIG_STRING, "127.0.0.1:9108", 0, 262,
     "host:port of the /metrics, /healthz and /readyz endpoint ([::1]:9108 for IPv6, "
     "0.0.0.0:9108 for all interfaces); port 0 picks a free port (logged); empty disables it.", 0, NULL},
    {"metrics.max_connections", CONFIG_INT, "256", 8, 10000,
     "Concurrent connections the metrics/health endpoint accepts.", 0, NULL},
    {"metrics.max_connections_per_ip", CONFIG_INT, "16", 0, 10000,
     "Concurrent connections to the metrics/health endpoint from one client address "
     "(0 = no cap): a scraper and the probes need a few, and no one address can take the "
     "slots the liveness probe needs.", 0, NULL},
    {"metrics.request_deadline", CONFIG_DURATION, "5s", 1 * SEC, 1 * MIN,
     "Longest a client of the metrics/health endpoint may take to send its request; a "
     "slower one is disconnected, however often it sends a byte.", 0, NULL},
    {"log.level", CONFIG_ENUM, "info", 0, 0,
     "Lowest level logged.", 0, log_levels},
    {"log.format", CONFIG_ENUM, "json", 0, 0,
     "json: one JSON object per line (production); text: for people at a terminal.",
     0, log_formats},
    {"shutdown.drain_timeout", CONFIG_DURATION, "30s", 1 * SEC, 10 * MIN,
     "On SIGTERM, how long in-flight events may finish before the producer is flushed "
     "and the consumer closed.", 0, NULL},
};
/* clang-format on */

/* librdkafka properties the worker sets itself; overriding them through kafka.* would
 * break a guarantee. NEEDSWORK: the consumer and producer modules own this list. */
static const struct {
    const char *prop, *why;
} reserved[] = {
    {"bootstrap.servers", "use kafka.brokers"},
    {"metadata.broker.list", "use kafka.brokers"},
    {"group.id", "use kafka.group.id"},
    {"enable.auto.offset.store", "the worker stores an offset only after its result is out"},
    {"enable.idempotence", "the result and DLQ producer must be idempotent"},
    {"acks", "results are acknowledged by all in-sync replicas (acks=all) before an offset moves"},
};

const struct config_def *settings_table(size_t *n)
{
    if (n)
        *n = sizeof(settings) / sizeof(settings[0]);
    return settings;
}

static int fail(char *errstr, size_t errsz, const struct config *cfg, const char *key,
                const char *what)
{
    snprintf(errstr, errsz, "%s: %s (from %s)", key, what, config_where(cfg, key));
    return -1;
}

/* redis.encryption_keys parses (each connection parses its own copy later, so a bad
 * ring must stop the start, not the first connection), and is set when required. */
static int check_keys(const struct config *cfg, char *errstr, size_t errsz)
{
    const char *text = config_get_str(cfg, "redis.encryption_keys");
    struct seal_keyring *k;
    char msg[256];

    if (!*text)
        return config_get_bool(cfg, "redis.require_encryption")
                   ? fail(errstr, errsz, cfg, "redis.require_encryption",
                          "is true but redis.encryption_keys is not set "
                          "(HSQB_REDIS_ENCRYPTION_KEYS_FILE)")
                   : 0;
    if (!(k = seal_keyring_parse(text, msg, sizeof msg)))
        return fail(errstr, errsz, cfg, "redis.encryption_keys", msg);
    seal_keyring_free(k);
    return 0;
}

static int check_url(const struct config *cfg, const char *key, char *errstr, size_t errsz)
{
    const char *u = config_get_str(cfg, key);
    char msg[256];

    if (strncmp(u, "https://", 8) == 0)
        return 0;
    if (strncmp(u, "http://", 7) != 0)
        snprintf(msg, sizeof(msg), "\"%.100s\" is not an http:// or https:// URL", u);
    else if (config_get_bool(cfg, "http.allow_insecure"))
        return 0;
    else
        snprintf(msg, sizeof(msg),
                 "\"%.100s\" is plain http: tokens and the client secret would cross the "
                 "network unencrypted (use https://, or set http.allow_insecure for a local "
                 "test stack)",
                 u);
    return fail(errstr, errsz, cfg, key, msg);
}

static int check_listen(const struct config *cfg, const char *key, char *errstr, size_t errsz)
{
    const char *l = config_get_str(cfg, key), *colon;
    char msg[256], *end;
    long port;

    if (*l == '\0')
        return 0;
    colon = strrchr(l, ':');
    if (colon && colon > l && colon[1] != '\0') {
        port = strtol(colon + 1, &end, 10);
        if (*end == '\0' && port >= 0 && port <= 65535 && colon[1] != '-' && colon[1] != '+')
            return 0;
    }
    snprintf(msg, sizeof(msg), "\"%.100s\" is not host:port", l);
    return fail(errstr, errsz, cfg, key, msg);
}

static int check_relations(const struct config *cfg, char *errstr, size_t errsz)
{
    char msg[256];

    if (config_get_int(cfg, "worker.max_in_flight_per_partition") >
        config_get_int(cfg, "worker.max_in_flight")) {
        snprintf(msg, sizeof(msg), "value %s exceeds worker.max_in_flight (%s)",
                 config_shown(cfg, "worker.max_in_flight_per_partition"),
                 config_shown(cfg, "worker.max_in_flight"));
        return fail(errstr, errsz, cfg, "worker.max_in_flight_per_partition", msg);
    }
    if (config_get_ms(cfg, "retry.base") > config_get_ms(cfg, "retry.cap")) {
        snprintf(msg, sizeof(msg), "value %s exceeds retry.cap (%s)",
                 config_shown(cfg, "retry.base"), config_shown(cfg, "retry.cap"));
        return fail(errstr, errsz, cfg, "retry.base", msg);
    }
    if (config_get_ms(cfg, "retry.max_age") > config_get_ms(cfg, "dedup.window")) {
        snprintf(msg, sizeof(msg),
                 "value %s exceeds dedup.window (%s): a late copy of an event could outlive "
                 "the first copy's done marker",
                 config_shown(cfg, "retry.max_age"), config_shown(cfg, "dedup.window"));
        return fail(errstr, errsz, cfg, "retry.max_age", msg);
    }
    if (config_get_int(cfg, "retry.max_held_per_partition") >
        config_get_int(cfg, "retry.max_held")) {
        snprintf(msg, sizeof(msg), "value %s exceeds retry.max_held (%s)",
                 config_shown(cfg, "retry.max_held_per_partition"),
                 config_shown(cfg, "retry.max_held"));
        return fail(errstr, errsz, cfg, "retry.max_held_per_partition", msg);
    }
    if (config_get_ms(cfg, "breaker.cooldown") > config_get_ms(cfg, "breaker.max_cooldown")) {
        snprintf(msg, sizeof(msg), "value %s exceeds breaker.max_cooldown (%s)",
                 config_shown(cfg, "breaker.cooldown"), config_shown(cfg, "breaker.max_cooldown"));
        return fail(errstr, errsz, cfg, "breaker.cooldown", msg);
    }
    if (*config_get_str(cfg, "ingress.session_secret") != '\0' &&
        strlen(config_get_str(cfg, "ingress.session_secret")) < CONNECT_SECRET_MIN)
        return fail(errstr, errsz, cfg, "ingress.session_secret",
                    "must be at least 32 bytes (openssl rand -base64 48)");
    if (strpbrk(config_get_str(cfg, "redis.key_prefix"), "{}") != NULL)
        return fail(errstr, errsz, cfg, "redis.key_prefix",
                    "must not contain { or }: the keys' own hash tags pick the cluster slot");
    return check_keys(cfg, errstr, errsz);
}

static int check_schedule(const struct config *cfg, char *errstr, size_t errsz)
{
    size_t n, i;
    const char *const *items = config_get_list(cfg, "retry.schedule", &n);
    char msg[256];
    int64_t ms;

    for (i = 0; i < n; i++) {
        if (config_parse_duration(items[i], &ms) == 0 && ms >= SEC && ms <= 30 * DAY)
            continue;
        snprintf(msg, sizeof(msg), "item \"%.64s\" is not a duration in [1s, 30d]", items[i]);
        return fail(errstr, errsz, cfg, "retry.schedule", msg);
    }
    return 0;
}

/* hubspot.token_portals: "*" or portal ids (1..18 digits, not 0). */
static int check_token_portals(const struct config *cfg, char *errstr, size_t errsz)
{
    size_t n, i, d;
    const char *const *items = config_get_list(cfg, "hubspot.token_portals", &n);
    char msg[256];

    for (i = 0; i < n; i++) {
        d = strspn(items[i], "0123456789");
        if (strcmp(items[i], "*") == 0 ||
            (d >= 1 && d <= 18 && items[i][d] == 0 && strspn(items[i], "0") < d))
            continue;
        snprintf(msg, sizeof(msg), "item \"%.64s\" is not a HubSpot portal id or *", items[i]);
        return fail(errstr, errsz, cfg, "hubspot.token_portals", msg);
    }
    return 0;
}

static int check_kafka(const struct config *cfg, char *errstr, size_t errsz)
{
    rd_kafka_conf_t *conf;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (!config_kafka_get(cfg, reserved[i].prop))
            continue;
        snprintf(errstr, errsz, "kafka.%s: may not be overridden: %s (from %s)", reserved[i].prop,
                 reserved[i].why, config_kafka_where(cfg, reserved[i].prop));
        return -1;
    }
    conf = rd_kafka_conf_new();
    rc = config_kafka_apply(cfg, conf, errstr, errsz);
    rd_kafka_conf_destroy(conf);
    return rc;
}

int settings_load_flags(struct config **out, int argc, char **argv, char **envp, unsigned flags,
                        char *errstr, size_t errsz)
{
    struct config *cfg = config_new(settings, sizeof(settings) / sizeof(settings[0]),
                                    SETTINGS_ENV_PREFIX, errstr, errsz);

    if (!cfg)
        return -1;
    if (config_load(cfg, argc, argv, envp, errstr, errsz) < 0)
        goto fail;
    if (!(flags & SETTINGS_SKIP_REQUIRED) && config_check_required(cfg, errstr, errsz) < 0)
        goto fail;
    if (check_url(cfg, "hubspot.base_url", errstr, errsz) < 0 ||
        check_url(cfg, "qbo.base_url", errstr, errsz) < 0 ||
        check_url(cfg, "oauth.token_url", errstr, errsz) < 0 ||
        check_url(cfg, "oauth.authorize_url", errstr, errsz) < 0 ||
        check_url(cfg, "oauth.revoke_url", errstr, errsz) < 0 ||
        check_url(cfg, "hubspot.oauth.authorize_url", errstr, errsz) < 0 ||
        (*config_get_str(cfg, "ingress.public_url") != '\0' &&
         check_url(cfg, "ingress.public_url", errstr, errsz) < 0) ||
        check_listen(cfg, "metrics.listen", errstr, errsz) < 0 ||
        check_listen(cfg, "ingress.listen", errstr, errsz) < 0 ||
        check_relations(cfg, errstr, errsz) < 0 || check_schedule(cfg, errstr, errsz) < 0 ||
        check_token_portals(cfg, errstr, errsz) < 0 || check_kafka(cfg, errstr, errsz) < 0)
        goto fail;
    /* the parser's values cap follows the answers it may be given (common/jtape.h) */
    jtape_set_max_values((size_t)config_get_bytes(cfg, "http.max_response_bytes") /
                         JTAPE_BYTES_PER_VALUE);
    *out = cfg;
    return 0;
fail:
    config_free(cfg);
    return -1;
}

int settings_load(struct config **out, int argc, char **argv, char **envp, char *errstr,
                  size_t errsz)
{
    return settings_load_flags(out, argc, argv, envp, 0, errstr, errsz);
}

void settings_help(FILE *out)
{
    char err[256];
    struct config *cfg = config_new(settings, sizeof(settings) / sizeof(settings[0]),
                                    SETTINGS_ENV_PREFIX, err, sizeof(err));

    if (!cfg) {
        fprintf(out, "settings table is invalid: %s\n", err);
        return;
    }
    config_help(cfg, out);
    config_free(cfg);
}

void settings_redis_opts(const struct config *cfg, struct redis_opts *o)
{
    const char *user = config_get_str(cfg, "redis.username");
    const char *pass = config_get_str(cfg, "redis.password");
    redis_opts_default(o);
    o->host = config_get_str(cfg, "redis.host");
    o->port = (int)config_get_int(cfg, "redis.port");
    o->username = *user ? user : NULL;
    o->password = *pass ? pass : NULL;
    o->db = (int)config_get_int(cfg, "redis.db");
    o->connect_timeout_ms = (int)config_get_ms(cfg, "redis.connect_timeout");
    o->command_timeout_ms = (int)config_get_ms(cfg, "redis.command_timeout");
    o->prefix = config_get_str(cfg, "redis.key_prefix");
    o->unix_path = *config_get_str(cfg, "redis.unix_socket") ? config_get_str(cfg, "redis.unix_socket")
                                                              : NULL;
    o->seal_keys = config_get_str(cfg, "redis.encryption_keys");
    o->seal_required = config_get_bool(cfg, "redis.require_encryption");
}

void settings_warn_unsealed(const struct config *cfg)
{
    if (!*config_get_str(cfg, "redis.encryption_keys"))
        log_warn("redis.encryption_keys is not set: OAuth and HubSpot tokens are stored in "
                 "Redis in plain text (README, \"Secrets at rest\")");
}

void settings_httpd_limits(const struct config *cfg, struct httpd_limits *l)
{
    l->max_connections = (unsigned)config_get_int(cfg, "metrics.max_connections");
    l->max_per_ip = (unsigned)config_get_int(cfg, "metrics.max_connections_per_ip");
    l->deadline_ms = config_get_ms(cfg, "metrics.request_deadline");
}

void settings_http_opts(const struct config *cfg, struct http_client_opts *o)
{
    http_client_opts_default(o);
    o->connect_timeout_ms = (long)config_get_ms(cfg, "http.connect_timeout");
    o->timeout_ms = (long)config_get_ms(cfg, "http.timeout");
    o->max_body = (size_t)config_get_bytes(cfg, "http.max_response_bytes");
    o->user_agent = config_get_str(cfg, "http.user_agent");
}

/* A secret, and each of its words of 16 characters or more: a key ring's lines hold a
 * key id and a key, and a log line could only ever show the key on its own. */
static void register_words(const char *v)
{
    char w[512];

    log_register_secret(v);
    if (!strpbrk(v, " \t\r\n"))
        return;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, " \t\r\n");
        if (n >= 16 && n < sizeof w) {
            memcpy(w, p, n);
            w[n] = '\0';
            log_register_secret(w);
            explicit_bzero(w, n);
        }
        p += n;
        p += strspn(p, " \t\r\n");
    }
}

void settings_register_secrets(const struct config *cfg)
{
    size_t n, i;
    const struct config_def *defs = settings_table(&n);

    for (i = 0; i < n; i++) {
        if (!(defs[i].flags & CONFIG_SECRET) || defs[i].type != CONFIG_STRING)
            continue;
        const char *v = config_get_str(cfg, defs[i].name);
        if (v && *v)
            register_words(v);
    }
    for (i = 0; i < config_kafka_count(cfg); i++) {
        const char *prop, *v;

        if (config_kafka_at(cfg, i, &prop, &v, NULL) == 0 && config_kafka_is_secret(prop) && v &&
            *v)
            log_register_secret(v);
    }
}

int settings_realm_pairs(const char *key, const char *s, struct settings_realm_pair *out,
                         size_t max, size_t *n, char *errstr, size_t errsz)
{
    *n = 0;
    for (const char *p = s ? s : ""; *p;) {
        const char *end = strchr(p, ';'), *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p), rl, vl;
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            eq = memchr(p, '=', len);
            rl = eq ? (size_t)(eq - p) : 0;
            vl = eq ? len - rl - 1 : 0;
            if (!eq || rl == 0 || rl > 32 || strspn(p, "0123456789") != rl || vl == 0 ||
                vl > SETTINGS_PAIR_VALUE_MAX || *n == max) {
                snprintf(errstr, errsz,
                         "%s: expected \"<realm id>=<value>\" entries separated by \";\" "
                         "(at most %zu)",
                         key, max);
                return -1;
            }
            memcpy(out[*n].realm, p, rl);
            out[*n].realm[rl] = '\0';
            memcpy(out[*n].value, eq + 1, vl);
            out[*n].value[vl] = '\0';
            (*n)++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}
