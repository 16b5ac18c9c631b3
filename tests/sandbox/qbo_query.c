/* qbo_query.c - QBO query statements and exact decimals.
 *
 * A hand-written tokenizer + recursive-descent parser for the documented subset (see
 * qbo_query.h). Parse errors answer 4000 "QueryParserError: Encountered ..." the way the
 * real service words them; semantic errors (unknown entity, property not queryable, page
 * size above 1000) answer 4001 "QueryValidationError: ...", as recorded in reference §4.
 *
 * Which properties are filterable comes from one table (qentities) distilled from Intuit's
 * XSD annotations plus the reference's §12 #11 choice: PrimaryEmailAddr is NOT queryable,
 * so the worker must match customers by name and compare the email itself.
 *
 * Values are compared by the property's type: strings (ASCII case folded when the
 * context says so), booleans, dates (YYYY-MM-DD), date-times (compared as instants),
 * references (their "value"), ids and money (exact decimals).
 */
#include "tests/sandbox/qbo_query.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- decimals ------------------------------------------------------------------------ */

int qbo_dec_parse(const char *s, struct qbo_dec *out)
{
    int neg = 0, scale = 0, ndig = 0, seen_dot = 0;
    int64_t v = 0;
    long exp = 0;

    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    for (; *s; s++) {
        if (*s == '.' && !seen_dot) {
            seen_dot = 1;
            continue;
        }
        if (!isdigit((unsigned char)*s))
            break;
        ndig++;
        if (seen_dot && scale >= QBO_DEC_MAX_SCALE) {
            if (*s != '0')
                return -1; /* more precision than we keep */
            continue;
        }
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
            return -1;
        if (seen_dot)
            scale++;
    }
    if (ndig == 0)
        return -1;
    if (*s == 'e' || *s == 'E') {
        char *end;
        errno = 0;
        exp = strtol(s + 1, &end, 10);
        if (end == s + 1 || *end || errno || exp > 18 || exp < -18)
            return -1;
        s = end;
    }
    if (*s)
        return -1;
    scale -= (int)exp;
    while (scale < 0) {
        if (__builtin_mul_overflow(v, 10, &v))
            return -1;
        scale++;
    }
    while (scale > QBO_DEC_MAX_SCALE) {
        if (v % 10)
            return -1;
        v /= 10;
        scale--;
    }
    out->v = neg ? -v : v;
    out->scale = scale;
    return 0;
}

int qbo_dec_from_json(struct json_object *o, struct qbo_dec *out)
{
    char buf[64];

    switch (json_object_get_type(o)) {
    case json_type_int:
        out->v = json_object_get_int64(o);
        out->scale = 0;
        return 0;
    case json_type_double: {
        /* json-c keeps a parsed number's original text as the serializer's userdata. */
        const char *txt = json_object_get_userdata(o);
        if (!txt) {
            snprintf(buf, sizeof(buf), "%.9f", json_object_get_double(o));
            txt = buf;
        }
        return qbo_dec_parse(txt, out);
    }
    case json_type_string:
        return qbo_dec_parse(json_object_get_string(o), out);
    default:
        return -1;
    }
}

static int dec_align(struct qbo_dec a, int scale, __int128 *out)
{
    __int128 v = a.v;
    for (int s = a.scale; s < scale; s++)
        v *= 10;
    *out = v;
    return 0;
}

int qbo_dec_cmp(struct qbo_dec a, struct qbo_dec b)
{
    int scale = a.scale > b.scale ? a.scale : b.scale;
    __int128 x, y;
    dec_align(a, scale, &x);
    dec_align(b, scale, &y);
    return x < y ? -1 : x > y;
}

static int round_i128(__int128 v, int from_scale, int to_scale, struct qbo_dec *out)
{
    while (from_scale < to_scale) {
        v *= 10;
        from_scale++;
    }
    if (from_scale > to_scale) {
        __int128 div = 1;
        for (int s = to_scale; s < from_scale; s++)
            div *= 10;
        __int128 q = v / div, r = v % div;
        if (r < 0)
            r = -r;
        if (2 * r >= div)
            q += v < 0 ? -1 : 1;
        v = q;
    }
    if (v > INT64_MAX || v < INT64_MIN)
        return -1;
    out->v = (int64_t)v;
    out->scale = to_scale;
    return 0;
}

int qbo_dec_mul_round(struct qbo_dec a, struct qbo_dec b, int scale, struct qbo_dec *out)
{
    return round_i128((__int128)a.v * b.v, a.scale + b.scale, scale, out);
}

int qbo_dec_rescale(struct qbo_dec a, int scale, struct qbo_dec *out)
{
    return round_i128(a.v, a.scale, scale, out);
}

int qbo_dec_cents(struct qbo_dec a, int64_t *cents)
{
    struct qbo_dec r;
    if (qbo_dec_rescale(a, 2, &r) < 0)
        return -1;
    *cents = r.v;
    return 0;
}

/* Written by hand, not by snprintf: every money member of a QBO write passes here (nine
 * per bench invoice), and snprintf was most of its cost. */
void qbo_cents_str(int64_t cents, char *buf, size_t bufsz)
{
    uint64_t u = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    char tmp[24];
    size_t n = 0, len = 0;
    tmp[n++] = (char)('0' + u % 10);
    tmp[n++] = (char)('0' + u / 10 % 10);
    tmp[n++] = '.';
    u /= 100;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (cents < 0)
        tmp[n++] = '-';
    if (bufsz == 0)
        return;
    while (n > 0 && len + 1 < bufsz) /* cut to bufsz - 1 bytes, as snprintf */
        buf[len++] = tmp[--n];
    buf[len] = '\0';
}

struct json_object *qbo_money_json(int64_t cents)
{
    char buf[32];
    qbo_cents_str(cents, buf, sizeof(buf));
    return json_object_new_double_s((double)cents / 100.0, buf);
}

struct json_object *qbo_dec_json(struct qbo_dec d)
{
    char buf[48];
    uint64_t u = d.v < 0 ? (uint64_t)0 - (uint64_t)d.v : (uint64_t)d.v, div = 1;
    int scale = d.scale;

    while (scale > 0 && u % 10 == 0) {
        u /= 10;
        scale--;
    }
    for (int i = 0; i < scale; i++)
        div *= 10;
    if (scale == 0)
        snprintf(buf, sizeof(buf), "%s%llu", d.v < 0 ? "-" : "", (unsigned long long)u);
    else
        snprintf(buf, sizeof(buf), "%s%llu.%0*llu", d.v < 0 ? "-" : "",
                 (unsigned long long)(u / div), scale, (unsigned long long)(u % div));
    return json_object_new_double_s((d.v < 0 ? -(double)u : (double)u) / (double)div, buf);
}

int qbo_pct_of(int64_t base_cents, struct qbo_dec pct, int64_t *cents)
{
    struct qbo_dec r;
    /* cents x pct / 100: the product has pct.scale decimals, the /100 two more. */
    if (round_i128((__int128)base_cents * pct.v, pct.scale + 2, 0, &r) < 0)
        return -1;
    *cents = r.v;
    return 0;
}

int qbo_prorate(int64_t amount, int64_t part, int64_t whole, int64_t *out)
{
    __int128 num = (__int128)amount * part, q, r;
    if (whole == 0)
        return -1;
    q = num / whole;
    r = num % whole;
    if (r < 0)
        r = -r;
    if (2 * r >= (whole < 0 ? -(__int128)whole : (__int128)whole))
        q += (num < 0) != (whole < 0) ? -1 : 1;
    if (q > INT64_MAX || q < INT64_MIN)
        return -1;
    *out = (int64_t)q;
    return 0;
}

/* ---- date-times -------------------------------------------------------------------- */

static int parse_digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int qbo_parse_datetime(const char *s, int default_offset_min, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = default_offset_min;
    struct tm tm = {0};

    if (parse_digits(&s, 4, &y) || *s++ != '-' || parse_digits(&s, 2, &mo) || *s++ != '-' ||
        parse_digits(&s, 2, &d))
        return -1;
    if (*s == 'T' || *s == ' ') {
        s++;
        if (parse_digits(&s, 2, &h) || *s++ != ':' || parse_digits(&s, 2, &mi))
            return -1;
        if (*s == ':') {
            s++;
            if (parse_digits(&s, 2, &sec))
                return -1;
        }
        if (*s == '.') {
            int scale = 1000;
            s++;
            if (!isdigit((unsigned char)*s))
                return -1;
            for (; isdigit((unsigned char)*s); s++) {
                scale /= 10;
                frac += (*s - '0') * scale;
            }
        }
        if (*s == 'Z') {
            off = 0;
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh, om;
            s++;
            if (parse_digits(&s, 2, &oh))
                return -1;
            if (*s == ':')
                s++;
            if (parse_digits(&s, 2, &om))
                return -1;
            off = sign * (oh * 60 + om);
        }
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

/* ---- filterable properties ----------------------------------------------------------- */

enum ftype { F_ID, F_STR, F_BOOL, F_DATE, F_DATETIME, F_REF, F_MONEY };

/* Filterable properties per entity as "Name:t" words, t = s(tring) b(oolean) d(ate)
 * r(eference) m(oney). Every entity also has Id (= and IN only) and MetaData.CreateTime /
 * MetaData.LastUpdatedTime (date-times). */
static const struct qentity {
    const char *name;
    const char *fields;
} qentities[] = {
    {"Customer", "DisplayName:s GivenName:s FamilyName:s MiddleName:s CompanyName:s "
                 "FullyQualifiedName:s Active:b Balance:m"},
    {"Vendor", "DisplayName:s GivenName:s FamilyName:s MiddleName:s CompanyName:s Active:b "
               "Balance:m"},
    {"Employee", "DisplayName:s GivenName:s FamilyName:s Active:b"},
    {"Item", "Name:s Sku:s Type:s Active:b FullyQualifiedName:s"},
    {"Term", "Name:s Active:b Type:s"},
    {"Account", "Name:s AccountType:s AccountSubType:s Classification:s Active:b "
                "FullyQualifiedName:s"},
    {"PaymentMethod", "Name:s Active:b Type:s"},
    {"Invoice", "DocNumber:s TxnDate:d DueDate:d CustomerRef:r TotalAmt:m Balance:m"},
    {"Estimate", "DocNumber:s TxnDate:d CustomerRef:r TotalAmt:m TxnStatus:s"},
    {"SalesReceipt", "DocNumber:s TxnDate:d CustomerRef:r TotalAmt:m"},
    {"RefundReceipt", "DocNumber:s TxnDate:d CustomerRef:r TotalAmt:m"},
    {"Payment", "TxnDate:d CustomerRef:r TotalAmt:m PaymentRefNum:s"},
    {"Purchase", "DocNumber:s TxnDate:d TotalAmt:m PaymentType:s"},
    {"CompanyInfo", ""},
    {"Preferences", ""},
};

static const struct qentity *qentity_find(const char *name)
{
    for (size_t i = 0; i < sizeof(qentities) / sizeof(qentities[0]); i++)
        if (strcmp(qentities[i].name, name) == 0)
            return &qentities[i];
    return NULL;
}

/* Type of property `name` of entity e, or -1. "Metadata.X" is accepted for "MetaData.X"
 * (Intuit's own blog example spells it so). */
static int qfield_type(const struct qentity *e, const char *name)
{
    static const char codes[] = "sbdrm";
    static const enum ftype types[] = {F_STR, F_BOOL, F_DATE, F_REF, F_MONEY};
    size_t n = strlen(name);

    if (strcmp(name, "Id") == 0)
        return F_ID;
    if (strncasecmp(name, "MetaData.", 9) == 0)
        return strcmp(name + 9, "CreateTime") == 0 || strcmp(name + 9, "LastUpdatedTime") == 0
                   ? F_DATETIME
                   : -1;
    for (const char *p = e->fields; (p = strstr(p, name)); p += n) {
        const char *colon = strchr(codes, p[n + 1]);
        if ((p == e->fields || p[-1] == ' ') && p[n] == ':' && colon && p[n + 1])
            return types[colon - codes];
    }
    return -1;
}

/* ---- tokenizer ---------------------------------------------------------------------- */

enum ttype { T_END, T_IDENT, T_STR, T_NUM, T_STAR, T_LP, T_RP, T_COMMA, T_OP, T_BAD };

struct tok {
    enum ttype type;
    const char *start; /* in the statement */
    size_t len;
    char *str; /* T_STR: unescaped copy (malloc'd) */
};

struct parser {
    const char *text;
    const char *p;
    struct tok t; /* current token */
    struct qbo_qerr *err;
    int failed;
};

static void tok_clear(struct tok *t)
{
    free(t->str);
    t->str = NULL;
}

static void perr(struct parser *ps, const char *what)
{
    if (ps->failed)
        return;
    ps->failed = 1;
    ps->err->code = "4000";
    ps->err->message = "Error parsing query";
    int col = (int)(ps->t.start - ps->text) + 1;
    if (ps->t.type == T_END)
        snprintf(ps->err->detail, sizeof(ps->err->detail),
                 "QueryParserError: Encountered \"<EOF>\" at line 1, column %d.%s%s", col,
                 what ? " Was expecting: " : "", what ? what : "");
    else
        snprintf(ps->err->detail, sizeof(ps->err->detail),
                 "QueryParserError: Encountered \" \"%.*s\" \" at line 1, column %d.%s%s",
                 (int)(ps->t.len > 60 ? 60 : ps->t.len), ps->t.start, col,
                 what ? " Was expecting: " : "", what ? what : "");
}

static void next(struct parser *ps)
{
    const char *p = ps->p;
    tok_clear(&ps->t);
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    ps->t.start = p;
    ps->t.type = T_BAD;
    if (!*p) {
        ps->t.type = T_END;
        ps->t.len = 0;
        ps->p = p;
        return;
    }
    if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
            p++;
        ps->t.type = T_IDENT;
    } else if (isdigit((unsigned char)*p) || (*p == '-' && isdigit((unsigned char)p[1]))) {
        p++;
        while (isdigit((unsigned char)*p) || *p == '.')
            p++;
        ps->t.type = T_NUM;
    } else if (*p == '\'') {
        /* Backslash escapes any character (\' \\ \%); an unescaped ' ends the literal. */
        size_t cap = strlen(p), n = 0;
        char *s = malloc(cap + 1);
        if (!s) {
            ps->p = p;
            return;
        }
        p++;
        while (*p && *p != '\'') {
            if (*p == '\\' && p[1])
                p++;
            s[n++] = *p++;
        }
        s[n] = 0;
        if (*p != '\'') {
            free(s);
            ps->t.len = strlen(ps->t.start);
            ps->p = p;
            return; /* T_BAD: unterminated */
        }
        p++;
        ps->t.type = T_STR;
        ps->t.str = s;
    } else if (*p == '*') {
        p++;
        ps->t.type = T_STAR;
    } else if (*p == '(') {
        p++;
        ps->t.type = T_LP;
    } else if (*p == ')') {
        p++;
        ps->t.type = T_RP;
    } else if (*p == ',') {
        p++;
        ps->t.type = T_COMMA;
    } else if (*p == '=' || *p == '<' || *p == '>') {
        p++;
        if (p[-1] != '=' && *p == '=')
            p++;
        ps->t.type = T_OP;
    } else {
        p++;
    }
    ps->t.len = (size_t)(p - ps->t.start);
    ps->p = p;
}

static int is_kw(const struct tok *t, const char *kw)
{
    return t->type == T_IDENT && t->len == strlen(kw) && strncasecmp(t->start, kw, t->len) == 0;
}

static int expect_kw(struct parser *ps, const char *kw)
{
    if (!is_kw(&ps->t, kw)) {
        perr(ps, kw);
        return -1;
    }
    next(ps);
    return 0;
}

static char *tok_dup(const struct tok *t)
{
    return strndup(t->start, t->len);
}

static int parse_value(struct parser *ps, struct qbo_qval *v)
{
    if (ps->t.type == T_STR) {
        v->kind = QVAL_STR;
        v->s = ps->t.str;
        ps->t.str = NULL;
    } else if (ps->t.type == T_NUM) {
        v->kind = QVAL_NUM;
        v->s = tok_dup(&ps->t);
    } else if (is_kw(&ps->t, "true") || is_kw(&ps->t, "false")) {
        v->kind = QVAL_BOOL;
        v->s = strdup(is_kw(&ps->t, "true") ? "true" : "false");
    } else {
        perr(ps, "a value");
        return -1;
    }
    if (!v->s) {
        perr(ps, NULL);
        return -1;
    }
    next(ps);
    return 0;
}

static int parse_cond(struct parser *ps, struct qbo_qcond *c)
{
    static const char *const reserved[] = {
        "AND", "OR", "IN", "LIKE", "ORDERBY", "ORDER", "STARTPOSITION", "MAXRESULTS", NULL};
    if (ps->t.type != T_IDENT) {
        perr(ps, "a property name");
        return -1;
    }
    for (int i = 0; reserved[i]; i++)
        if (is_kw(&ps->t, reserved[i])) {
            perr(ps, "a property name");
            return -1;
        }
    c->field = tok_dup(&ps->t);
    next(ps);
    if (is_kw(&ps->t, "IN")) {
        next(ps);
        c->op = QOP_IN;
        if (ps->t.type != T_LP) {
            perr(ps, "\"(\"");
            return -1;
        }
        next(ps);
        c->vals = calloc(QBO_QUERY_MAX_IN, sizeof(*c->vals));
        if (!c->vals) {
            perr(ps, NULL);
            return -1;
        }
        for (;;) {
            if (c->nvals == QBO_QUERY_MAX_IN) {
                perr(ps, "\")\"");
                return -1;
            }
            if (parse_value(ps, &c->vals[c->nvals]) < 0)
                return -1;
            c->nvals++;
            if (ps->t.type == T_RP)
                break;
            if (ps->t.type != T_COMMA) {
                perr(ps, "\",\" or \")\"");
                return -1;
            }
            next(ps);
        }
        next(ps);
        return 0;
    }
    if (is_kw(&ps->t, "LIKE")) {
        c->op = QOP_LIKE;
    } else if (ps->t.type == T_OP) {
        static const struct {
            const char *s;
            enum qbo_qop op;
        } ops[] = {{"=", QOP_EQ}, {"<", QOP_LT}, {">", QOP_GT}, {"<=", QOP_LE}, {">=", QOP_GE}};
        size_t i;
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (strlen(ops[i].s) == ps->t.len && strncmp(ps->t.start, ops[i].s, ps->t.len) == 0)
                break;
        if (i == sizeof(ops) / sizeof(ops[0])) {
            perr(ps, "an operator");
            return -1;
        }
        c->op = ops[i].op;
    } else {
        perr(ps, "\"=\", \"<\", \">\", \"<=\", \">=\", \"IN\" or \"LIKE\"");
        return -1;
    }
    next(ps);
    c->vals = calloc(1, sizeof(*c->vals));
    if (!c->vals) {
        perr(ps, NULL);
        return -1;
    }
    if (parse_value(ps, &c->vals[0]) < 0)
        return -1;
    c->nvals = 1;
    if (c->op == QOP_LIKE && c->vals[0].kind != QVAL_STR) {
        perr(ps, "a quoted pattern");
        return -1;
    }
    return 0;
}

static int parse_int(struct parser *ps, int64_t *out)
{
    char *end;
    if (ps->t.type != T_NUM || ps->t.start[0] == '-') {
        perr(ps, "an integer");
        return -1;
    }
    errno = 0;
    long long v = strtoll(ps->t.start, &end, 10);
    if (end != ps->t.start + ps->t.len || errno) {
        perr(ps, "an integer");
        return -1;
    }
    *out = v;
    next(ps);
    return 0;
}

void qbo_query_free(struct qbo_query *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->nconds; i++) {
        for (int j = 0; j < q->conds[i].nvals; j++)
            free(q->conds[i].vals[j].s);
        free(q->conds[i].vals);
        free(q->conds[i].field);
    }
    /* A condition that failed half-way is counted (nconds bumped before parsing). */
    free(q->entity);
    free(q->order_field);
    free(q);
}

int qbo_query_parse(const char *text, struct qbo_query **out, struct qbo_qerr *err)
{
    struct parser ps = {.text = text, .p = text, .err = err};
    struct qbo_query *q = calloc(1, sizeof(*q));
    int have_order = 0, have_start = 0, have_max = 0;

    if (!q)
        return -1;
    q->start = 1;
    q->max = QBO_QUERY_DEFAULT_MAX;
    if (strlen(text) > QBO_QUERY_MAX_LEN) {
        err->code = "4000";
        err->message = "Error parsing query";
        snprintf(err->detail, sizeof(err->detail), "QueryParserError: query is too long");
        free(q);
        return -1;
    }
    next(&ps);
    if (expect_kw(&ps, "SELECT") < 0)
        goto fail;
    if (ps.t.type == T_STAR) {
        next(&ps);
    } else if (is_kw(&ps.t, "COUNT")) {
        next(&ps);
        if (ps.t.type != T_LP) {
            perr(&ps, "\"(\"");
            goto fail;
        }
        next(&ps);
        if (ps.t.type != T_STAR) {
            perr(&ps, "\"*\"");
            goto fail;
        }
        next(&ps);
        if (ps.t.type != T_RP) {
            perr(&ps, "\")\"");
            goto fail;
        }
        next(&ps);
        q->is_count = 1;
    } else {
        perr(&ps, "\"*\" or \"COUNT(*)\"");
        goto fail;
    }
    if (expect_kw(&ps, "FROM") < 0)
        goto fail;
    if (ps.t.type != T_IDENT) {
        perr(&ps, "an entity name");
        goto fail;
    }
    q->entity = tok_dup(&ps.t);
    next(&ps);
    if (is_kw(&ps.t, "WHERE")) {
        next(&ps);
        for (;;) {
            if (q->nconds == QBO_QUERY_MAX_CONDS) {
                perr(&ps, NULL);
                goto fail;
            }
            if (parse_cond(&ps, &q->conds[q->nconds++]) < 0)
                goto fail;
            if (!is_kw(&ps.t, "AND"))
                break;
            next(&ps);
        }
    }
    while (ps.t.type != T_END) {
        if ((is_kw(&ps.t, "ORDERBY") || is_kw(&ps.t, "ORDER")) && !have_order) {
            if (is_kw(&ps.t, "ORDER")) {
                next(&ps);
                if (!is_kw(&ps.t, "BY")) {
                    perr(&ps, "\"BY\"");
                    goto fail;
                }
            }
            next(&ps);
            if (ps.t.type != T_IDENT) {
                perr(&ps, "a property name");
                goto fail;
            }
            q->order_field = tok_dup(&ps.t);
            next(&ps);
            if (is_kw(&ps.t, "ASC") || is_kw(&ps.t, "DESC")) {
                q->order_desc = is_kw(&ps.t, "DESC");
                next(&ps);
            }
            have_order = 1;
        } else if (is_kw(&ps.t, "STARTPOSITION") && !have_start) {
            next(&ps);
            if (parse_int(&ps, &q->start) < 0)
                goto fail;
            have_start = 1;
        } else if (is_kw(&ps.t, "MAXRESULTS") && !have_max) {
            next(&ps);
            if (parse_int(&ps, &q->max) < 0)
                goto fail;
            have_max = 1;
        } else {
            perr(&ps, "\"ORDERBY\", \"STARTPOSITION\", \"MAXRESULTS\" or <EOF>");
            goto fail;
        }
    }
    tok_clear(&ps.t);
    *out = q;
    return 0;
fail:
    tok_clear(&ps.t);
    qbo_query_free(q);
    return -1;
}

/* ---- validation ------------------------------------------------------------------- */

static void verr(struct qbo_qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verr(struct qbo_qerr *err, const char *fmt, ...)
{
    va_list ap;
    err->code = "4001";
    err->message = "Invalid query";
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

const char *qbo_query_entity(const struct qbo_query *q, int case_insensitive, struct qbo_qerr *err)
{
    for (size_t i = 0; i < sizeof(qentities) / sizeof(qentities[0]); i++)
        if (case_insensitive ? strcasecmp(qentities[i].name, q->entity) == 0
                             : strcmp(qentities[i].name, q->entity) == 0)
            return qentities[i].name;
    verr(err, "QueryValidationError: invalid context declaration: %s", q->entity);
    return NULL;
}

int qbo_query_check(struct qbo_query *q, const char *entity, struct qbo_qerr *err)
{
    const struct qentity *e = qentity_find(entity);

    if (!e) {
        verr(err, "QueryValidationError: invalid context declaration: %s", entity);
        return -1;
    }
    for (int i = 0; i < q->nconds; i++) {
        struct qbo_qcond *c = &q->conds[i];
        int t = qfield_type(e, c->field);
        if (t < 0) {
            verr(err, "QueryValidationError: property '%s' is not queryable", c->field);
            return -1;
        }
        if (t == F_DATETIME)
            memcpy(c->field, "MetaData.", 9); /* canonical spelling */
        c->ftype = t;
        if (t == F_ID && c->op != QOP_EQ && c->op != QOP_IN) {
            verr(err, "QueryValidationError: operator not supported for property '%s'", c->field);
            return -1;
        }
        if (c->op == QOP_LIKE && t != F_STR) {
            verr(err, "QueryValidationError: LIKE is not supported for property '%s'", c->field);
            return -1;
        }
        for (int j = 0; j < c->nvals; j++) {
            struct qbo_dec d;
            int64_t ms;
            const struct qbo_qval *v = &c->vals[j];
            if ((t == F_MONEY && qbo_dec_parse(v->s, &d) < 0) ||
                (t == F_BOOL && strcasecmp(v->s, "true") && strcasecmp(v->s, "false")) ||
                ((t == F_DATETIME || t == F_DATE) && qbo_parse_datetime(v->s, 0, &ms) < 0)) {
                verr(err, "QueryValidationError: invalid value '%s' for property '%s'", v->s,
                     c->field);
                return -1;
            }
        }
    }
    if (q->order_field) {
        if ((q->order_ftype = qfield_type(e, q->order_field)) < 0) {
            verr(err, "QueryValidationError: property '%s' is not sortable", q->order_field);
            return -1;
        }
        if (q->order_ftype == F_DATETIME)
            memcpy(q->order_field, "MetaData.", 9);
    }
    if (q->max > QBO_QUERY_LIMIT_MAX) {
        verr(err, "QueryValidationError: value %lld is too large. Max allowed value is %d",
             (long long)q->max, QBO_QUERY_LIMIT_MAX);
        return -1;
    }
    if (q->max < 1) {
        verr(err, "QueryValidationError: value %lld is too small. Min allowed value is 1",
             (long long)q->max);
        return -1;
    }
    q->checked = 1;
    return 0;
}

int qbo_query_mentions(const struct qbo_query *q, const char *field)
{
    for (int i = 0; i < q->nconds; i++)
        if (strcmp(q->conds[i].field, field) == 0)
            return 1;
    return 0;
}

int qbo_query_text_may_match(const struct qbo_query *q, const char *text)
{
    for (int i = 0; q->checked && i < q->nconds; i++) {
        const struct qbo_qcond *c = &q->conds[i];
        const char *v = c->nvals == 1 ? c->vals[0].s : NULL;
        if (c->op != QOP_EQ || (c->ftype != F_STR && c->ftype != F_REF) || !v || !*v ||
            c->vals[0].kind != QVAL_STR)
            continue;
        int plain = 1; /* written as is in JSON text: no '"', '\\' or control byte */
        for (const unsigned char *p = (const unsigned char *)v; *p && plain; p++)
            plain = *p >= 0x20 && *p != '"' && *p != '\\';
        if (plain && !strcasestr(text, v))
            return 0;
    }
    return 1;
}

/* ---- evaluation ------------------------------------------------------------------- */

/* The row's value for a field: the member itself, MetaData's member, or a Ref's value. */
static struct json_object *row_value(struct json_object *row, const char *field, enum ftype t)
{
    struct json_object *v = NULL, *meta;
    if (strncasecmp(field, "MetaData.", 9) == 0) {
        if (!json_object_object_get_ex(row, "MetaData", &meta) ||
            !json_object_object_get_ex(meta, field + 9, &v))
            return NULL;
        return v;
    }
    if (!json_object_object_get_ex(row, field, &v))
        return NULL;
    if (t == F_REF && json_object_is_type(v, json_type_object) &&
        !json_object_object_get_ex(v, "value", &v))
        return NULL;
    return v;
}

static int ch_eq(char a, char b, int ci)
{
    return ci ? tolower((unsigned char)a) == tolower((unsigned char)b) : a == b;
}

/* '%' matches any run; everything else literally. Greedy with one backtrack point, so
 * O(len(s) * len(p)) even for patterns like '%a%a%a%b'. */
static int like_match(const char *s, const char *p, int ci)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '%') {
            star = ++p;
            resume = s;
        } else if (*p && ch_eq(*s, *p, ci)) {
            s++;
            p++;
        } else if (star) {
            p = star;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '%')
        p++;
    return *p == 0;
}

/* Three-way comparison of a row value with a literal; 2 = incomparable. */
static int cmp_value(enum ftype t, struct json_object *v, const char *lit,
                     const struct qbo_qctx *ctx)
{
    switch (t) {
    case F_BOOL: {
        if (!json_object_is_type(v, json_type_boolean))
            return 2;
        int b = json_object_get_boolean(v), l = strcasecmp(lit, "true") == 0;
        return b == l ? 0 : b < l ? -1 : 1;
    }
    case F_MONEY: {
        struct qbo_dec a, b;
        if (qbo_dec_from_json(v, &a) < 0 || qbo_dec_parse(lit, &b) < 0)
            return 2;
        return qbo_dec_cmp(a, b);
    }
    case F_DATETIME:
    case F_DATE: {
        int64_t a, b;
        if (!json_object_is_type(v, json_type_string) ||
            qbo_parse_datetime(json_object_get_string(v), ctx->utc_offset_min, &a) < 0 ||
            qbo_parse_datetime(lit, ctx->utc_offset_min, &b) < 0)
            return 2;
        return a < b ? -1 : a > b;
    }
    case F_ID:
    case F_REF:
        if (!json_object_is_type(v, json_type_string))
            return 2;
        return strcmp(json_object_get_string(v), lit) ? 1 : 0;
    case F_STR:
    default: {
        if (!json_object_is_type(v, json_type_string))
            return 2;
        int r = ctx->ci ? strcasecmp(json_object_get_string(v), lit)
                        : strcmp(json_object_get_string(v), lit);
        return r < 0 ? -1 : r > 0;
    }
    }
}

static int cond_match(const struct qbo_qcond *c, const struct qbo_qctx *ctx,
                      struct json_object *row)
{
    enum ftype t = (enum ftype)c->ftype;
    struct json_object *v;
    int r;

    if (!(v = row_value(row, c->field, t)))
        return 0;
    switch (c->op) {
    case QOP_IN:
        for (int i = 0; i < c->nvals; i++)
            if (cmp_value(t, v, c->vals[i].s, ctx) == 0)
                return 1;
        return 0;
    case QOP_LIKE:
        return json_object_is_type(v, json_type_string) &&
               like_match(json_object_get_string(v), c->vals[0].s, ctx->ci);
    default:
        r = cmp_value(t, v, c->vals[0].s, ctx);
        if (r == 2)
            return 0;
        switch (c->op) {
        case QOP_EQ:
            return r == 0;
        case QOP_LT:
            return r < 0;
        case QOP_GT:
            return r > 0;
        case QOP_LE:
            return r <= 0;
        case QOP_GE:
            return r >= 0;
        default:
            return 0;
        }
    }
}

int qbo_query_match(const struct qbo_query *q, const struct qbo_qctx *ctx, struct json_object *row)
{
    if (!q->checked)
        return 0;
    for (int i = 0; i < q->nconds; i++)
        if (!cond_match(&q->conds[i], ctx, row))
            return 0;
    return 1;
}

static long long row_id(struct json_object *row)
{
    struct json_object *id;
    if (!json_object_object_get_ex(row, "Id", &id) || !json_object_is_type(id, json_type_string))
        return 0;
    return strtoll(json_object_get_string(id), NULL, 10);
}

int qbo_query_cmp(const struct qbo_query *q, const struct qbo_qctx *ctx, struct json_object *a,
                  struct json_object *b)
{
    int r = 0;

    if (q->checked && q->order_field) {
        enum ftype t = (enum ftype)q->order_ftype;
        struct json_object *va = row_value(a, q->order_field, t);
        struct json_object *vb = row_value(b, q->order_field, t);
        if (!va || !vb) {
            r = (va != NULL) - (vb != NULL); /* rows without the value sort first */
        } else if (t == F_ID) {
            long long x = row_id(a), y = row_id(b);
            r = x < y ? -1 : x > y;
        } else {
            r = cmp_value(t, va, json_object_get_string(vb), ctx);
            if (r == 2)
                r = 0;
        }
        if (q->order_desc)
            r = -r;
    }
    if (r == 0) {
        long long x = row_id(a), y = row_id(b);
        r = x < y ? -1 : x > y;
    }
    return r;
}
