/* event.c - decode and validate one hsqb.actions message.
 *
 * The decoder is a hand-written mirror of schemas/action-event.schema.json, kept in
 * step with it by tests/schema/test_examples.py: every example file must get the same
 * verdict from a JSON Schema validator and from here. So each check below follows the
 * schema's wording, including its less obvious choices: optional members may be null
 * (= absent), optional inputs may also be "" (= absent), an integral number written
 * with a fraction or exponent (904.0) is an integer as JSON Schema says, and string
 * lengths count code points, not bytes. A check the schema cannot express (strict
 * UTF-8, duplicate keys, size, depth, callbackId == id) is marked "outside the schema".
 *
 * The first fault found is reported, with its JSON path. An object type the action
 * does not take is remembered and reported only when nothing else is wrong, so that
 * UNSUPPORTED_OBJECT_TYPE always means "a good event from the wrong workflow".
 *
 * The message is read from a tape (common/jtape.h), not a json-c tree: the same strict
 * parser and the same getter rules, for two allocations per event instead of one per
 * value. The decoded event copies every string it keeps, so the tape is released before
 * event_decode() returns and the event outlives the message buffer.
 */
#include "worker/event.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jtape.h"

/* ---- vocabularies ---------------------------------------------------------------- */

static const struct {
    const char *name, *type, *entity;
    unsigned objects; /* bit per enum hsqb_object_type */
} actions[ACTION_COUNT] = {
    [ACTION_CREATE_INVOICE] = {"create_invoice", "hsqb.action.create_invoice", "Invoice",
                               1u << OBJECT_DEAL | 1u << OBJECT_QUOTE},
    [ACTION_CREATE_ESTIMATE] = {"create_estimate", "hsqb.action.create_estimate", "Estimate",
                                1u << OBJECT_DEAL | 1u << OBJECT_QUOTE},
    [ACTION_CREATE_SALES_RECEIPT] = {"create_sales_receipt", "hsqb.action.create_sales_receipt",
                                     "SalesReceipt",
                                     1u << OBJECT_DEAL | 1u << OBJECT_QUOTE |
                                         1u << OBJECT_COMMERCE_PAYMENT},
    [ACTION_CREATE_PAID_INVOICE] = {"create_paid_invoice", "hsqb.action.create_paid_invoice",
                                    "Invoice", 1u << OBJECT_COMMERCE_PAYMENT},
    [ACTION_CREATE_EXPENSE] = {"create_expense", "hsqb.action.create_expense", "Purchase",
                               1u << OBJECT_COMMERCE_PAYMENT},
    [ACTION_CREATE_REFUND_RECEIPT] = {"create_refund_receipt", "hsqb.action.create_refund_receipt",
                                      "RefundReceipt", 1u << OBJECT_COMMERCE_PAYMENT},
};

static const struct {
    const char *name, *type_id, *path;
} object_types[OBJECT_TYPE_COUNT] = {
    [OBJECT_DEAL] = {"DEAL", "0-3", "deals"},
    [OBJECT_QUOTE] = {"QUOTE", "0-14", "quotes"},
    [OBJECT_COMMERCE_PAYMENT] = {"COMMERCE_PAYMENT", "0-101", "commerce_payments"},
};

static const char *const payment_types[] = {"Cash", "Check", "CreditCard"};
static const char *const amount_sources[] = {"fees", "net", "total"};

static const struct {
    const char *name;
    int retryable;
} errors[HSQB_ERR_COUNT] = {
    [HSQB_ERR_INVALID_EVENT] = {"INVALID_EVENT", 0},
    [HSQB_ERR_UNSUPPORTED_OBJECT_TYPE] = {"UNSUPPORTED_OBJECT_TYPE", 0},
    [HSQB_ERR_OBJECT_NOT_FOUND] = {"OBJECT_NOT_FOUND", 0},
    [HSQB_ERR_NO_CONTACT] = {"NO_CONTACT", 0},
    [HSQB_ERR_NO_LINE_ITEMS] = {"NO_LINE_ITEMS", 0},
    [HSQB_ERR_PRODUCT_NOT_FOUND] = {"PRODUCT_NOT_FOUND", 0},
    [HSQB_ERR_TERM_NOT_FOUND] = {"TERM_NOT_FOUND", 0},
    [HSQB_ERR_ACCOUNT_NOT_FOUND] = {"ACCOUNT_NOT_FOUND", 0},
    [HSQB_ERR_VENDOR_NOT_FOUND] = {"VENDOR_NOT_FOUND", 0},
    [HSQB_ERR_TAXABLE_ITEMS_NOT_ALLOWED] = {"TAXABLE_ITEMS_NOT_ALLOWED", 0},
    [HSQB_ERR_NOT_FULLY_REFUNDED] = {"NOT_FULLY_REFUNDED", 0},
    [HSQB_ERR_PAYMENT_NOT_SUCCEEDED] = {"PAYMENT_NOT_SUCCEEDED", 0},
    [HSQB_ERR_ZERO_AMOUNT] = {"ZERO_AMOUNT", 0},
    [HSQB_ERR_QUOTE_STATUS_NOT_ALLOWED] = {"QUOTE_STATUS_NOT_ALLOWED", 0},
    [HSQB_ERR_QUOTE_TOTAL_MISMATCH] = {"QUOTE_TOTAL_MISMATCH", 0},
    [HSQB_ERR_CURRENCY_NOT_SUPPORTED] = {"CURRENCY_NOT_SUPPORTED", 0},
    [HSQB_ERR_QBO_SALES_TAX_OFF] = {"QBO_SALES_TAX_OFF", 0},
    [HSQB_ERR_QBO_TOTAL_MISMATCH] = {"QBO_TOTAL_MISMATCH", 0},
    [HSQB_ERR_QBO_RECORD_INACTIVE] = {"QBO_RECORD_INACTIVE", 0},
    [HSQB_ERR_QBO_COMPANY_NOT_US] = {"QBO_COMPANY_NOT_US", 0},
    [HSQB_ERR_QBO_REAUTH_REQUIRED] = {"QBO_REAUTH_REQUIRED", 0},
    [HSQB_ERR_QBO_VALIDATION] = {"QBO_VALIDATION", 0},
    [HSQB_ERR_HUBSPOT_AUTH] = {"HUBSPOT_AUTH", 0},
    [HSQB_ERR_HUBSPOT_VALIDATION] = {"HUBSPOT_VALIDATION", 0},
    [HSQB_ERR_REALM_NOT_ALLOWED] = {"REALM_NOT_ALLOWED", 0},
    [HSQB_ERR_PORTAL_NOT_CONNECTED] = {"PORTAL_NOT_CONNECTED", 0},
    [HSQB_ERR_BUDGET_EXCEEDED] = {"BUDGET_EXCEEDED", 0},
    [HSQB_ERR_RETRIES_EXHAUSTED] = {"RETRIES_EXHAUSTED", 1},
    [HSQB_ERR_INTERNAL] = {"INTERNAL", 1},
};

const char *event_action_name(enum hsqb_action a)
{
    return (unsigned)a < ACTION_COUNT ? actions[a].name : NULL;
}

const char *event_action_type(enum hsqb_action a)
{
    return (unsigned)a < ACTION_COUNT ? actions[a].type : NULL;
}

const char *event_action_qbo_entity(enum hsqb_action a)
{
    return (unsigned)a < ACTION_COUNT ? actions[a].entity : NULL;
}

int event_action_from_name(const char *s, enum hsqb_action *out)
{
    for (int i = 0; s && i < ACTION_COUNT; i++)
        if (strcmp(s, actions[i].name) == 0) {
            *out = (enum hsqb_action)i;
            return 0;
        }
    return -1;
}

int event_action_from_type(const char *s, enum hsqb_action *out)
{
    for (int i = 0; s && i < ACTION_COUNT; i++)
        if (strcmp(s, actions[i].type) == 0) {
            *out = (enum hsqb_action)i;
            return 0;
        }
    return -1;
}

const char *object_type_name(enum hsqb_object_type t)
{
    return (unsigned)t < OBJECT_TYPE_COUNT ? object_types[t].name : NULL;
}

const char *object_type_path(enum hsqb_object_type t)
{
    return (unsigned)t < OBJECT_TYPE_COUNT ? object_types[t].path : NULL;
}

int object_type_parse(const char *s, enum hsqb_object_type *out)
{
    for (int i = 0; s && i < OBJECT_TYPE_COUNT; i++)
        if (strcmp(s, object_types[i].name) == 0 || strcmp(s, object_types[i].type_id) == 0 ||
            strcmp(s, object_types[i].path) == 0) {
            *out = (enum hsqb_object_type)i;
            return 0;
        }
    return -1;
}

int event_action_accepts(enum hsqb_action a, enum hsqb_object_type t)
{
    if ((unsigned)a >= ACTION_COUNT || (unsigned)t >= OBJECT_TYPE_COUNT)
        return 0;
    return (actions[a].objects >> t) & 1u;
}

const char *payment_type_name(enum expense_payment_type p)
{
    return (unsigned)p < 3 ? payment_types[p] : NULL;
}

const char *amount_source_name(enum expense_amount_source s)
{
    return (unsigned)s < 3 ? amount_sources[s] : NULL;
}

const char *hsqb_error_name(enum hsqb_error e)
{
    return (unsigned)e < HSQB_ERR_COUNT ? errors[e].name : NULL;
}

int hsqb_error_retryable(enum hsqb_error e)
{
    return (unsigned)e < HSQB_ERR_COUNT ? errors[e].retryable : 0;
}

int hsqb_error_from_name(const char *s, enum hsqb_error *out)
{
    for (int i = 0; s && i < HSQB_ERR_COUNT; i++)
        if (strcmp(s, errors[i].name) == 0) {
            *out = (enum hsqb_error)i;
            return 0;
        }
    return -1;
}

enum hsqb_error event_status_error(enum event_status st)
{
    return st == EVENT_UNSUPPORTED_OBJECT ? HSQB_ERR_UNSUPPORTED_OBJECT_TYPE
                                          : HSQB_ERR_INVALID_EVENT;
}

int event_key(int64_t portal_id, enum hsqb_object_type t, int64_t object_id, char *buf,
              size_t bufsz)
{
    if (portal_id < 1 || object_id < 1 || (unsigned)t >= OBJECT_TYPE_COUNT || !buf)
        return -1;
    int n =
        snprintf(buf, bufsz, "%" PRId64 ":%s:%" PRId64, portal_id, object_types[t].name, object_id);
    return n < 0 || (size_t)n >= bufsz ? -1 : n;
}

/* ---- string checks (the schema's string keywords) --------------------------------- */

/* Code points in valid UTF-8 (jtape_parse guarantees validity): maxLength counts
 * these. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Index of the first byte outside lo..hi, or len. */
static size_t first_outside(const char *s, size_t len, unsigned char lo, unsigned char hi)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi)
            return i;
    return len;
}

/* Index of the first control character (U+0000..U+001F, U+007F), or len. */
static size_t first_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7F)
            return i;
    return len;
}

static int str_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Decimal digits of 1..INT64_MAX without sign or leading zero (int64_positive_digits). */
static int parse_pos_digits(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;

    if (len == 0 || len > 19 || s[0] < '1' || s[0] > '9')
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ---- the decoder's state and error reporting -------------------------------------- */

struct dec {
    const struct jtape *t;
    char *errstr;
    size_t errsz;
    const char *in_path; /* "data.inputFields" or "data.fields" */
    int unsupported;     /* object type not taken by the action (reported last) */
    char unsupported_msg[EVENT_ERRSTR_SIZE];
};

/* Sanitised, truncated copy of untrusted text for messages: printable ASCII only. */
static const char *quote(char *buf, size_t bufsz, const char *s, size_t len)
{
    size_t j = 0, max = bufsz > 4 ? bufsz - 4 : 0;

    for (size_t i = 0; i < len && j < max; i++)
        buf[j++] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    if (j < len && bufsz > 4) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    if (bufsz)
        buf[j < bufsz ? j : bufsz - 1] = '\0';
    return buf;
}

__attribute__((format(printf, 3, 4))) static void set_error(struct dec *d, const char *path,
                                                            const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!d->errstr || !d->errsz)
        return;
    n = snprintf(d->errstr, d->errsz, "%s: ", path);
    if (n >= 0 && (size_t)n < d->errsz) {
        va_start(ap, fmt);
        vsnprintf(d->errstr + n, d->errsz - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

/* Record "path: message" and evaluate to -1 (a macro so the -1 is visible to analysers). */
#define FAIL(d, path, ...) (set_error((d), (path), __VA_ARGS__), -1)

/* The node of member key of object obj, or 0 when it is absent or null (the schema's
 * optional members may be null, and a null required one is missing). 0 is the root,
 * never a member. */
static size_t member(const struct dec *d, size_t obj, const char *key)
{
    size_t i = jtape_member(d->t, obj, key);
    return i && d->t->n[i].type != JT_NULL ? i : 0;
}

static int is_type(const struct dec *d, size_t i, enum jtape_type type)
{
    return d->t->n[i].type == type;
}

/* The text of string node i (may hold U+0000: len counts it, strlen stops there). */
static const char *node_str(const struct dec *d, size_t i, size_t *len)
{
    *len = d->t->n[i].count;
    return d->t->arena + d->t->n[i].str;
}

/* json_type_str()'s names, so messages read as they always have. */
static int fail_type(struct dec *d, const char *path, size_t i, const char *want)
{
    static const char *const names[] = {
        [JT_NULL] = "null",     [JT_FALSE] = "boolean", [JT_TRUE] = "boolean",
        [JT_NUMBER] = "number", [JT_STRING] = "string", [JT_ARRAY] = "array",
        [JT_OBJECT] = "object",
    };
    return FAIL(d, path, "wrong type (%s), expected %s", names[d->t->n[i].type], want);
}

/* An optional string member: absent and null give *s = NULL. */
static int opt_string(struct dec *d, size_t obj, const char *key, const char *path, const char **s,
                      size_t *len)
{
    size_t v = member(d, obj, key);

    *s = NULL;
    *len = 0;
    if (!v)
        return 0;
    if (!is_type(d, v, JT_STRING))
        return fail_type(d, path, v, "string");
    *s = node_str(d, v, len);
    return 0;
}

/* A required string member: present, not null, a string. */
static int req_string(struct dec *d, size_t obj, const char *key, const char *path, const char **s,
                      size_t *len)
{
    if (opt_string(d, obj, key, path, s, len) < 0)
        return -1;
    return *s ? 0 : FAIL(d, path, "missing");
}

/* The schema's int64_positive: a JSON integer 1..INT64_MAX, where an integral number
 * written with a fraction or exponent counts as an integer (JSON Schema's rule: the
 * double's value decides, so 1.00000000000000000001 is 1). An integer literal beyond
 * int64 is an integer out of range, never "not an integer". */
static int num_pos_int64(struct dec *d, size_t v, const char *path, int64_t *out)
{
    const struct jtape_node *nd = &d->t->n[v];
    double x;

    if (nd->type != JT_NUMBER)
        return fail_type(d, path, v, "integer");
    if (nd->is_int) {
        if (jtape_val_int64(d->t, v, 1, INT64_MAX, out) != JGET_OK)
            return FAIL(d, path, "out of range (must be 1..%" PRId64 ")", INT64_MAX);
        return 0;
    }
    x = jtape_val_double(d->t, v); /* as the schema validator reads it, in any locale */
    if (!isfinite(x) || x != floor(x))
        return FAIL(d, path, "not an integer");
    if (x < 1.0 || x >= 9223372036854775808.0)
        return FAIL(d, path, "out of range (must be 1..%" PRId64 ")", INT64_MAX);
    *out = (int64_t)x;
    return 0;
}

static int req_pos_int64(struct dec *d, size_t obj, const char *key, const char *path, int64_t *out)
{
    size_t v = member(d, obj, key);

    if (!v)
        return FAIL(d, path, "missing");
    return num_pos_int64(d, v, path, out);
}

static int check_id(struct dec *d, const char *path, const char *s, size_t len)
{
    size_t bad = first_outside(s, len, 0x21, 0x7E);

    if (len == 0)
        return FAIL(d, path, "empty");
    if (bad < len)
        return FAIL(d, path, "byte 0x%02x at offset %zu: must be visible ASCII (no space)",
                    (unsigned char)s[bad], bad);
    if (len > EVENT_ID_MAX)
        return FAIL(d, path, "too long (%zu characters, max %d)", len, EVENT_ID_MAX);
    return 0;
}

/* ---- RFC 3339 (the schema's rfc3339 pattern) -------------------------------------- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Syntax and field ranges exactly as the pattern; the calendar is not checked (timegm
 * normalises 02-30), like the pattern. Sets *ms to epoch milliseconds. A leap second
 * (:60, RFC 3339 5.7) is read deliberately as the second after :59, as POSIX time (and
 * QBO's dates) have no leap seconds; the instant must then still lie within years
 * 0001..9999 UTC (EVENT_TIME_MIN_MS..EVENT_TIME_MAX_MS), offset applied. */
static int parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0, frac_ms = 0;
    size_t p = 19;
    struct tm tm = {0};

    if (len < 20 || len > EVENT_TIME_MAX)
        return -1;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (Y < 1 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    if (s[p] == '.') {
        size_t start = ++p;
        while (p < len && s[p] >= '0' && s[p] <= '9')
            p++;
        if (p == start || p - start > 9)
            return -1;
        for (size_t i = start; i < start + 3; i++)
            frac_ms = frac_ms * 10 + (i < p ? s[i] - '0' : 0);
    }
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        sign = s[p] == '-' ? -1 : 1;
        if (len - p != 6 || digits(s + p + 1, 2, &oh) || s[p + 3] != ':' ||
            digits(s + p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        p += 6;
    } else {
        return -1;
    }
    if (p != len)
        return -1;
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *ms = ((int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 + frac_ms;
    /* an offset or a leap second can carry 9999-12-31 into year 10000, which no date
     * field downstream (QBO's TxnDate, YYYY-MM-DD) can hold */
    return *ms >= EVENT_TIME_MIN_MS && *ms <= EVENT_TIME_MAX_MS ? 0 : -1;
}

/* ---- inputs ---------------------------------------------------------------------- */

static void in_path(struct dec *d, char *buf, size_t bufsz, const char *key)
{
    snprintf(buf, bufsz, "%s.%s", d->in_path, key);
}

/* A name input (in_name_required / in_name_optional). Optional: absent, null and ""
 * leave *out NULL. The copy is owned by the caller. */
static int in_name(struct dec *d, size_t in, const char *key, int required, char **out)
{
    char path[96];
    const char *s = NULL;
    size_t len = 0, bad;

    in_path(d, path, sizeof path, key);
    if (opt_string(d, in, key, path, &s, &len) < 0)
        return -1;
    if (!s || len == 0) {
        if (!required)
            return 0;
        return FAIL(d, path, s ? "empty" : "missing");
    }
    if ((bad = first_control(s, len)) < len)
        return FAIL(d, path, "control character 0x%02x at offset %zu", (unsigned char)s[bad], bad);
    if (utf8_chars(s, len) > EVENT_NAME_MAX)
        return FAIL(d, path, "too long (%zu characters, max %d)", utf8_chars(s, len),
                    EVENT_NAME_MAX);
    if (!(*out = strndup(s, len)))
        return FAIL(d, path, "out of memory");
    return 0;
}

/* An enumerated input: one of names[0..n-1]; absent, null and "" give def when optional
 * (def >= 0), and are faults when required (def < 0). */
static int in_enum(struct dec *d, size_t in, const char *key, const char *const *names, int n,
                   int def, int *out)
{
    char path[96], q[48];
    const char *s = NULL;
    size_t len = 0;

    in_path(d, path, sizeof path, key);
    if (opt_string(d, in, key, path, &s, &len) < 0)
        return -1;
    if (!s || (len == 0 && def >= 0)) {
        if (def < 0)
            return FAIL(d, path, "missing");
        *out = def;
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (str_is(s, len, names[i])) {
            *out = i;
            return 0;
        }
    return FAIL(d, path, "\"%s\" is not one of the allowed values", quote(q, sizeof q, s, len));
}

static int in_realm(struct dec *d, size_t in, struct event_inputs *out)
{
    char path[96];
    const char *s = NULL;
    size_t len = 0;

    in_path(d, path, sizeof path, "qbo_realm_id");
    if (req_string(d, in, "qbo_realm_id", path, &s, &len) < 0)
        return -1;
    if (len == 0 || len > EVENT_REALM_MAX || first_outside(s, len, '0', '9') < len)
        return FAIL(d, path, "must be 1..%d decimal digits", EVENT_REALM_MAX);
    memcpy(out->realm_id, s, len);
    out->realm_id[len] = '\0';
    return 0;
}

static int in_customer(struct dec *d, size_t in, struct event_inputs *out)
{
    static const char prefix[] = "contact:";
    char path[96], q[48];
    const char *s = NULL;
    size_t len = 0;

    in_path(d, path, sizeof path, "customer_source");
    if (opt_string(d, in, "customer_source", path, &s, &len) < 0)
        return -1;
    if (!s || len == 0 || str_is(s, len, "first_associated_contact")) {
        out->customer_source = CUSTOMER_FIRST_ASSOCIATED_CONTACT;
        return 0;
    }
    if (len > sizeof prefix - 1 && memcmp(s, prefix, sizeof prefix - 1) == 0 &&
        parse_pos_digits(s + sizeof prefix - 1, len - (sizeof prefix - 1),
                         &out->customer_contact_id) == 0) {
        out->customer_source = CUSTOMER_CONTACT_ID;
        return 0;
    }
    return FAIL(d, path, "\"%s\": expected first_associated_contact or contact:<id>",
                quote(q, sizeof q, s, len));
}

static int in_bool(struct dec *d, size_t in, const char *key, int *out)
{
    static const char *const names[] = {"false", "true"};
    return in_enum(d, in, key, names, 2, 0, out);
}

static int decode_inputs(struct dec *d, enum hsqb_action a, size_t in, struct event_inputs *out)
{
    int v;

    if (in_realm(d, in, out) < 0)
        return -1;
    switch (a) {
    case ACTION_CREATE_INVOICE:
        if (in_name(d, in, "payment_terms", 0, &out->payment_terms) < 0 ||
            in_bool(d, in, "email_document", &out->email_document) < 0)
            return -1;
        break;
    case ACTION_CREATE_ESTIMATE:
        if (in_bool(d, in, "email_document", &out->email_document) < 0)
            return -1;
        break;
    case ACTION_CREATE_SALES_RECEIPT:
    case ACTION_CREATE_PAID_INVOICE:
        if (in_name(d, in, "deposit_to_account", 0, &out->deposit_to_account) < 0)
            return -1;
        break;
    case ACTION_CREATE_EXPENSE:
        if (in_name(d, in, "expense_account", 1, &out->expense_account) < 0 ||
            in_name(d, in, "paid_from_account", 1, &out->paid_from_account) < 0 ||
            in_enum(d, in, "payment_type", payment_types, 3, -1, &v) < 0)
            return -1;
        out->payment_type = (enum expense_payment_type)v;
        if (in_name(d, in, "vendor", 0, &out->vendor) < 0 ||
            in_enum(d, in, "amount_source", amount_sources, 3, AMOUNT_SOURCE_FEES, &v) < 0)
            return -1;
        out->amount_source = (enum expense_amount_source)v;
        return 0; /* the expense takes no customer and no products */
    case ACTION_CREATE_REFUND_RECEIPT:
        if (in_name(d, in, "refund_from_account", 1, &out->refund_from_account) < 0)
            return -1;
        break;
    default:
        break;
    }
    if (in_customer(d, in, out) < 0 ||
        in_bool(d, in, "create_missing_products", &out->create_missing_products) < 0 ||
        in_name(d, in, "income_account", 0, &out->income_account) < 0)
        return -1;
    return 0;
}

/* ---- the envelope and the execution request --------------------------------------- */

static int decode_object(struct dec *d, size_t data, struct action_event *ev)
{
    size_t obj, v;
    const char *s = NULL;
    size_t len = 0;
    char q[48];

    if (!(obj = member(d, data, "object")))
        return FAIL(d, "data.object", "missing");
    if (!is_type(d, obj, JT_OBJECT))
        return fail_type(d, "data.object", obj, "object");
    if (!(v = member(d, obj, "objectId")))
        return FAIL(d, "data.object.objectId", "missing");
    if (is_type(d, v, JT_STRING)) {
        s = node_str(d, v, &len);
        if (parse_pos_digits(s, len, &ev->object_id) < 0)
            return FAIL(d, "data.object.objectId",
                        "\"%s\": expected the digits of 1..%" PRId64 " (no sign, no leading 0)",
                        quote(q, sizeof q, s, len), INT64_MAX);
    } else if (num_pos_int64(d, v, "data.object.objectId", &ev->object_id) < 0) {
        return -1;
    }
    if (req_string(d, obj, "objectType", "data.object.objectType", &s, &len) < 0)
        return -1;
    if (len != strlen(s) || object_type_parse(s, &ev->object_type) < 0 ||
        !event_action_accepts(ev->action, ev->object_type)) {
        char *m = d->unsupported_msg;
        size_t msz = sizeof d->unsupported_msg;
        int n = snprintf(m, msz, "data.object.objectType: \"%s\" is not accepted by %s (takes",
                         quote(q, sizeof q, s, len), event_action_name(ev->action));
        for (int t = 0; t < OBJECT_TYPE_COUNT && n >= 0 && (size_t)n < msz; t++)
            if (event_action_accepts(ev->action, (enum hsqb_object_type)t))
                n += snprintf(m + n, msz - (size_t)n, " %s", object_types[t].name);
        if (n >= 0 && (size_t)n < msz)
            snprintf(m + n, msz - (size_t)n, ")");
        d->unsupported = 1;
    }
    return 0;
}

static int decode_data(struct dec *d, size_t data, struct action_event *ev)
{
    size_t v, w, in;
    const char *s = NULL;
    size_t len = 0;

    if (req_string(d, data, "callbackId", "data.callbackId", &s, &len) < 0 ||
        check_id(d, "data.callbackId", s, len) < 0)
        return -1;
    if (!str_is(s, len, ev->id)) /* outside the schema */
        return FAIL(d, "data.callbackId", "differs from id");

    if (!(v = member(d, data, "origin")))
        return FAIL(d, "data.origin", "missing");
    if (!is_type(d, v, JT_OBJECT))
        return fail_type(d, "data.origin", v, "object");
    if (req_pos_int64(d, v, "portalId", "data.origin.portalId", &ev->portal_id) < 0)
        return -1;

    if ((v = member(d, data, "context"))) {
        if (!is_type(d, v, JT_OBJECT))
            return fail_type(d, "data.context", v, "object or null");
        if ((w = member(d, v, "workflowId")) &&
            num_pos_int64(d, w, "data.context.workflowId", &ev->workflow_id) < 0)
            return -1;
    }

    if (decode_object(d, data, ev) < 0)
        return -1;

    d->in_path = "data.inputFields";
    if ((in = member(d, data, "inputFields"))) {
        if (!is_type(d, in, JT_OBJECT))
            return fail_type(d, "data.inputFields", in, "object or null");
    } else {
        d->in_path = "data.fields";
        ev->inputs_from_fields = 1;
        if (!(in = member(d, data, "fields")))
            return FAIL(d, "data.inputFields", "missing (and no data.fields to fall back on)");
        if (!is_type(d, in, JT_OBJECT))
            return fail_type(d, "data.fields", in, "object");
    }
    return decode_inputs(d, ev->action, in, &ev->in);
}

static int decode_envelope(struct dec *d, struct action_event *ev)
{
    const size_t root = JTAPE_ROOT;
    size_t v;
    const char *s = NULL;
    size_t len = 0, bad;
    char q[48];

    if (!is_type(d, root, JT_OBJECT))
        return fail_type(d, "(top level)", root, "object");

    if (req_string(d, root, "specversion", "specversion", &s, &len) < 0)
        return -1;
    if (!str_is(s, len, "1.0"))
        return FAIL(d, "specversion", "\"%s\", expected \"1.0\"", quote(q, sizeof q, s, len));

    if (req_string(d, root, "id", "id", &s, &len) < 0 || check_id(d, "id", s, len) < 0)
        return -1;
    memcpy(ev->id, s, len);
    ev->id[len] = '\0';

    if (req_string(d, root, "type", "type", &s, &len) < 0)
        return -1;
    if (len != strlen(s) || event_action_from_type(s, &ev->action) < 0)
        return FAIL(d, "type", "\"%s\" is not an hsqb.action.* type", quote(q, sizeof q, s, len));

    if (req_string(d, root, "source", "source", &s, &len) < 0)
        return -1;
    if (len == 0)
        return FAIL(d, "source", "empty");
    if ((bad = first_outside(s, len, 0x21, 0x7E)) < len)
        return FAIL(d, "source", "byte 0x%02x at offset %zu: must be visible ASCII",
                    (unsigned char)s[bad], bad);
    if (len > EVENT_SOURCE_MAX)
        return FAIL(d, "source", "too long (%zu characters, max %d)", len, EVENT_SOURCE_MAX);
    if (!(ev->source = strndup(s, len)))
        return FAIL(d, "source", "out of memory");

    if (opt_string(d, root, "time", "time", &s, &len) < 0)
        return -1;
    if (s) {
        if (parse_rfc3339(s, len, &ev->time_ms) < 0)
            return FAIL(d, "time", "\"%s\" is not an RFC 3339 date-time",
                        quote(q, sizeof q, s, len));
        memcpy(ev->time, s, len);
        ev->time[len] = '\0';
    }

    if (opt_string(d, root, "datacontenttype", "datacontenttype", &s, &len) < 0)
        return -1;
    if (s && !str_is(s, len, "application/json") &&
        !str_is(s, len, "application/json; charset=utf-8") &&
        !str_is(s, len, "application/json;charset=utf-8") &&
        !str_is(s, len, "application/json; charset=UTF-8") &&
        !str_is(s, len, "application/json;charset=UTF-8"))
        return FAIL(d, "datacontenttype", "\"%s\": data must be application/json",
                    quote(q, sizeof q, s, len));

    if (!(v = member(d, root, "data")))
        return FAIL(d, "data", "missing");
    if (!is_type(d, v, JT_OBJECT))
        return fail_type(d, "data", v, "object");
    return decode_data(d, v, ev);
}

void event_release(struct action_event *ev)
{
    if (!ev)
        return;
    free(ev->source);
    free(ev->in.payment_terms);
    free(ev->in.deposit_to_account);
    free(ev->in.income_account);
    free(ev->in.expense_account);
    free(ev->in.paid_from_account);
    free(ev->in.vendor);
    free(ev->in.refund_from_account);
    memset(ev, 0, sizeof *ev);
}

enum event_status event_decode(const char *buf, size_t len, struct action_event *ev, char *errstr,
                               size_t errsz)
{
    struct jtape t = {0};
    struct dec d = {.t = &t, .errstr = errstr, .errsz = errsz};
    struct action_event tmp = {0};
    enum event_status st = EVENT_INVALID;
    char perr[EVENT_ERRSTR_SIZE];

    if (errstr && errsz)
        errstr[0] = '\0';
    if (len > EVENT_MAX_BYTES) { /* outside the schema */
        set_error(&d, "(message)", "too large (%zu bytes, max %d)", len, EVENT_MAX_BYTES);
        goto out;
    }
    if (!buf)
        buf = "";
    if (jtape_parse_max(&t, buf, len, EVENT_MAX_DEPTH, EVENT_MAX_VALUES, perr, sizeof perr) < 0) {
        set_error(&d, "(message)", "not valid JSON: %s", perr);
        goto out;
    }
    if (t.n[JTAPE_ROOT].type == JT_NULL) { /* a valid tape, but json_parse_strict's refusal */
        set_error(&d, "(message)", "not valid JSON: document is null");
        goto out;
    }
    if (decode_envelope(&d, &tmp) < 0)
        goto out;
    if (d.unsupported) {
        if (errstr && errsz)
            snprintf(errstr, errsz, "%s", d.unsupported_msg);
        st = EVENT_UNSUPPORTED_OBJECT;
        goto out;
    }
    if (event_key(tmp.portal_id, tmp.object_type, tmp.object_id, tmp.key, sizeof tmp.key) < 0) {
        set_error(&d, "(message)", "cannot build the key");
        goto out;
    }
    *ev = tmp;
    memset(&tmp, 0, sizeof tmp);
    st = EVENT_OK;
out:
    event_release(&tmp);
    jtape_release(&t);
    return st;
}

int event_peek_id(const char *buf, size_t len, char *id, size_t idsz)
{
    struct jtape t;
    const char *s = NULL;
    size_t n;
    int rc = -1;

    if (!buf || len > EVENT_MAX_BYTES || !id)
        return -1;
    /* a failed parse leaves t empty; a null document has no members */
    if (jtape_parse_max(&t, buf, len, EVENT_MAX_DEPTH, EVENT_MAX_VALUES, NULL, 0) == 0 &&
        jtape_get_strn(&t, JTAPE_ROOT, "id", &s, &n) == JGET_OK && n >= 1 && n <= EVENT_ID_MAX &&
        first_outside(s, n, 0x21, 0x7E) == n && n < idsz) {
        memcpy(id, s, n);
        id[n] = '\0';
        rc = 0;
    }
    jtape_release(&t);
    return rc;
}
