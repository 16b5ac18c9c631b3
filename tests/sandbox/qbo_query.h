/* qbo_query.h - the QuickBooks Online query language (parser + row matcher) and exact
 * decimals, shared by qbo.c.
 *
 * Owns: parsed statements (struct qbo_query, freed with qbo_query_free) and nothing
 * global. The grammar is the documented subset (reference §4):
 *   SELECT * | COUNT(*) FROM Entity [WHERE cond [AND cond]...]
 *     [ORDERBY field [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]
 *   cond := field (= | < | > | <= | >=) value | field IN (value, ...) | field LIKE 'pat'
 * Keywords are case-insensitive; the three trailing clauses may come in any order; string
 * literals are single-quoted with backslash escapes (\' \\ ...). Anything else (OR,
 * projections, JOIN, ...) is a parse error.
 *
 * Which properties are filterable, and their types, is per entity (qbo_query_check); an
 * entity is "known" here when the table in qbo_query.c lists it.
 *
 * Decimals: QBO money and quantities arrive as JSON numbers; qbo.c reads their original
 * text (json-c keeps it) and does all arithmetic on scaled integers, never doubles.
 *
 * Thread-safety: all functions are reentrant; a parsed query may be read concurrently.
 */
#ifndef HSQB_SANDBOX_QBO_QUERY_H
#define HSQB_SANDBOX_QBO_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define QBO_QUERY_MAX_LEN     100000 /* statement bytes */
#define QBO_QUERY_MAX_CONDS   32
#define QBO_QUERY_MAX_IN      1000 /* values inside one IN (...) */
#define QBO_QUERY_DEFAULT_MAX 100
#define QBO_QUERY_LIMIT_MAX   1000

/* ---- exact decimals ---------------------------------------------------------------- */

#define QBO_DEC_MAX_SCALE 9

/* value = v / 10^scale, 0 <= scale <= QBO_DEC_MAX_SCALE. */
struct qbo_dec {
    int64_t v;
    int scale;
};

/* Parse a JSON-number-like text ("150", "-0.5", "1e2", "300.00"); 0 or -1 when it is not
 * a number, has more than QBO_DEC_MAX_SCALE decimals that are not zeros, or overflows. */
int qbo_dec_parse(const char *s, struct qbo_dec *out);
/* Read a JSON number (int or double, original text) or a numeric string; 0 or -1. */
int qbo_dec_from_json(struct json_object *o, struct qbo_dec *out);
/* -1, 0, 1 like strcmp. */
int qbo_dec_cmp(struct qbo_dec a, struct qbo_dec b);
/* a*b rounded half away from zero to `scale` decimals; -1 on overflow. */
int qbo_dec_mul_round(struct qbo_dec a, struct qbo_dec b, int scale, struct qbo_dec *out);
/* Round half away from zero to `scale` decimals (scale <= a.scale), or rescale up. */
int qbo_dec_rescale(struct qbo_dec a, int scale, struct qbo_dec *out);
/* Integer cents (round half away from zero); -1 on overflow. */
int qbo_dec_cents(struct qbo_dec a, int64_t *cents);
/* "123.45" (2 decimals) for cents; buf >= 32 bytes. */
void qbo_cents_str(int64_t cents, char *buf, size_t bufsz);
/* A JSON number with exactly 2 decimals, e.g. 100.00 (new reference). */
struct json_object *qbo_money_json(int64_t cents);
/* A JSON number whose text is d exactly, trailing fractional zeros dropped ("7.25", "10",
 * "1.08"); new reference. */
struct json_object *qbo_dec_json(struct qbo_dec d);
/* The percentage rule of issue 15, shared with the worker: *cents = base_cents * pct / 100
 * rounded once, half away from zero (0.5 cent -> 1 cent, -0.5 -> -1), computed in 128-bit
 * integers. -1 (and *cents untouched) when the result leaves int64. */
int qbo_pct_of(int64_t base_cents, struct qbo_dec pct, int64_t *cents);
/* A pro-rata share: *out = amount * part / whole rounded once, half away from zero;
 * -1 when whole is 0 or the result leaves int64. */
int qbo_prorate(int64_t amount, int64_t part, int64_t whole, int64_t *out);

/* ---- statements --------------------------------------------------------------------- */

enum qbo_qop { QOP_EQ, QOP_LT, QOP_GT, QOP_LE, QOP_GE, QOP_IN, QOP_LIKE };

enum qbo_qval_kind { QVAL_STR, QVAL_NUM, QVAL_BOOL };

struct qbo_qval {
    enum qbo_qval_kind kind;
    char *s; /* unescaped string, or the number's text; "true"/"false" for bools */
};

struct qbo_qcond {
    char *field; /* as written, e.g. "DisplayName"; "MetaData." canonical after check */
    int ftype;   /* property type, set by qbo_query_check */
    enum qbo_qop op;
    int nvals; /* 1, or the IN list length */
    struct qbo_qval *vals;
};

struct qbo_query {
    int is_count;
    char *entity; /* as written */
    int nconds;
    struct qbo_qcond conds[QBO_QUERY_MAX_CONDS];
    char *order_field; /* NULL = by Id */
    int order_ftype;   /* set by qbo_query_check */
    int order_desc;
    int checked;   /* qbo_query_check passed: match/cmp refuse unchecked statements */
    int64_t start; /* 1-based; 1 when absent */
    int64_t max;   /* QBO_QUERY_DEFAULT_MAX when absent */
};

/* A query fault: code "4000" (parse error) or "4001" (validation), with the Detail text. */
struct qbo_qerr {
    const char *code;
    const char *message; /* "Error parsing query" / "Invalid query" */
    char detail[512];
};

/* Parse text (NUL-terminated, at most QBO_QUERY_MAX_LEN bytes). On success *out is a new
 * statement (caller frees with qbo_query_free); on failure err is filled. */
int qbo_query_parse(const char *text, struct qbo_query **out, struct qbo_qerr *err);
void qbo_query_free(struct qbo_query *q);

/* Canonical entity name for q->entity ("Customer", ...), or NULL (then err says
 * "invalid context declaration"). case_insensitive: accept "customer" too. */
const char *qbo_query_entity(const struct qbo_query *q, int case_insensitive, struct qbo_qerr *err);

/* Check every WHERE / ORDERBY field against the entity's filterable set and the value
 * types (e.g. Id only with = and IN, MAXRESULTS <= 1000) and resolve the property types;
 * 0 or -1 with err. Required before qbo_query_match / qbo_query_cmp. */
int qbo_query_check(struct qbo_query *q, const char *entity, struct qbo_qerr *err);

/* 1 when WHERE mentions field (e.g. "Active": name lists hide inactive rows otherwise). */
int qbo_query_mentions(const struct qbo_query *q, const char *field);

/* 0 when the JSON text of a row (json-c's serialisation) cannot satisfy the checked
 * statement q: one of its string or reference equalities has a literal, free of JSON
 * escapes, that the text does not contain (ASCII case ignored); else 1. A necessary
 * condition only, so that a scan of stored text parses just the rows that may match. */
int qbo_query_text_may_match(const struct qbo_query *q, const char *text);

/* Evaluation context: string comparisons ignore ASCII case when ci is set; utc_offset_min
 * is the company's offset, used for date-times written without one. */
struct qbo_qctx {
    int ci;
    int utc_offset_min;
};

/* 1 when row (an entity of the checked statement's type) satisfies every WHERE
 * condition; 0 also for a statement that did not pass qbo_query_check. */
int qbo_query_match(const struct qbo_query *q, const struct qbo_qctx *ctx, struct json_object *row);
/* Order rows per ORDERBY (ties and the default: numeric Id ascending); qsort-style. */
int qbo_query_cmp(const struct qbo_query *q, const struct qbo_qctx *ctx, struct json_object *a,
                  struct json_object *b);

/* Parse "2020-09-29", "2020-09-29T05:58:16-07:00", "...T05:58:16.187Z", "...-0700" into
 * epoch ms; a missing offset means default_offset_min. 0 or -1. */
int qbo_parse_datetime(const char *s, int default_offset_min, int64_t *ms);

#endif
