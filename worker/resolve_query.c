/* resolve_query.c - the lookups' one way to QBO's query API (resolve_internal.h's
 * resolve_query_rows()), with the fallback for literals QBO's query parser refuses. */
#include "worker/resolve_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/log.h"

/* ---- literals QBO's query parser refuses ---------------------------------------------
 *
 * Field reports (quickbooks-ruby issues 362 and 309, QuickBooks-V3-PHP-SDK issues 395 and
 * 397) show QBO's query parser answering a lexical error for characters such as ł, ’, “ ”
 * and – inside a WHERE literal: code points above U+00FF. A name that exists must still
 * be found, so when a lookup holding such a literal is refused, each `Field = '...'`
 * condition with one becomes `Field LIKE '<the part before it>%'` (or goes, when the value
 * starts with one), and the rows are compared in C. Our own statements are the only
 * input: conditions joined by " AND ", literals written by qbo_sql_quote(). */

#define RESOLVE_POST_MAX 4

struct post_cond {
    char field[40];
    char value[RESOLVE_NAME_MAX * 2 + 1];
};

static int byte_beyond_latin1(unsigned char b)
{
    return b >= 0xC4 && b < 0xF8; /* the lead byte of a code point >= U+0100 */
}

static int has_beyond_latin1(const char *s)
{
    for (; *s; s++)
        if (byte_beyond_latin1((unsigned char)*s))
            return 1;
    return 0;
}

/* The end of the literal starting at p (on its opening quote): the closing quote, or
 * NULL. The value, unescaped, into val (valsz). */
static const char *literal_end(const char *p, char *val, size_t valsz)
{
    size_t n = 0;

    for (p++; *p && *p != '\''; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 < valsz)
            val[n++] = *p;
    }
    val[n] = '\0';
    return *p == '\'' ? p : NULL;
}

/* Rewrite sql into out as above; 1 when something changed (pc/npc: the comparisons the
 * rows need), 0 when nothing could be (the refusal stands), -1 when out is too small. */
static int rewrite_literals(const char *sql, char *out, size_t outsz, struct post_cond *pc,
                            size_t *npc)
{
    const char *where = strstr(sql, " WHERE "), *cond;
    size_t len;
    int changed = 0, first = 1;

    *npc = 0;
    if (!where)
        return 0;
    len = (size_t)(where - sql);
    if (len >= outsz)
        return -1;
    memcpy(out, sql, len);
    out[len] = '\0';
    for (cond = where + 7;;) {
        /* one condition: up to " AND " outside a literal, or the end */
        char val[RESOLVE_NAME_MAX * 2 + 1], piece[QBO_SQL_MAX];
        const char *end = NULL, *q;
        for (q = cond; *q; q++) {
            if (*q == '\'') {
                if (!(q = literal_end(q, val, sizeof val)))
                    return 0;
                continue;
            }
            if (strncmp(q, " AND ", 5) == 0) {
                end = q;
                break;
            }
        }
        if (!end)
            end = cond + strlen(cond);
        snprintf(piece, sizeof piece, "%.*s", (int)(end - cond), cond);
        /* `Field = '<literal>'` with a refused character: LIKE on the part before it */
        {
            size_t fl = strcspn(piece, " ");
            const char *lit = piece + fl;
            if (fl < sizeof pc[0].field && strncmp(lit, " = '", 4) == 0 &&
                literal_end(lit + 3, val, sizeof val) && has_beyond_latin1(val) &&
                *npc < RESOLVE_POST_MAX) {
                char pre[RESOLVE_NAME_MAX * 2 + 1], quoted[RESOLVE_NAME_MAX * 4 + 8];
                size_t k = 0;
                while (val[k] && !byte_beyond_latin1((unsigned char)val[k]))
                    k++;
                snprintf(pc[*npc].field, sizeof pc[*npc].field, "%.*s", (int)fl, piece);
                snprintf(pc[*npc].value, sizeof pc[*npc].value, "%s", val);
                (*npc)++;
                changed = 1;
                if (k == 0) {
                    piece[0] = '\0'; /* nothing safe to filter on */
                } else {
                    memcpy(pre, val, k);
                    pre[k] = '\0';
                    if (qbo_sql_quote(pre, quoted, sizeof quoted) < 0)
                        return -1;
                    quoted[strlen(quoted) - 1] = '\0'; /* reopen it for the wildcard */
                    snprintf(piece, sizeof piece, "%s LIKE %s%%'", pc[*npc - 1].field, quoted);
                }
            }
        }
        if (piece[0]) {
            len = strlen(out);
            if ((size_t)snprintf(out + len, outsz - len, "%s%s", first ? " WHERE " : " AND ",
                                 piece) >= outsz - len)
                return -1;
            first = 0;
        }
        if (!*end)
            break;
        cond = end + 5;
    }
    return changed;
}

/* Keep the rows whose fields equal the values (ASCII case ignored, as QBO compares). */
static void rows_filter(struct json_object *rows, const struct post_cond *pc, size_t npc)
{
    for (size_t i = json_object_array_length(rows); i-- > 0;) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        for (size_t k = 0; k < npc; k++) {
            const char *v;
            if (json_get_str(row, pc[k].field, &v) != JGET_OK || strcasecmp(v, pc[k].value) != 0) {
                json_object_array_del_idx(rows, i, 1);
                break;
            }
        }
    }
}

struct json_object *resolve_query_rows(const struct resolve_ctx *rc, const char *sql,
                                       struct api_error *err)
{
    struct json_object *rows = NULL;
    struct qbo_paging pg = {.max_rows = RESOLVE_MAX_CANDIDATES};
    struct post_cond pc[RESOLVE_POST_MAX];
    char alt[QBO_SQL_MAX];
    size_t npc = 0;

    if (qbo_query_all(rc->io, rc->qbo, rc->realm, sql, &pg, &rows, err) == 0)
        return rows;
    if (err->http_status != 400 || !has_beyond_latin1(sql) ||
        rewrite_literals(sql, alt, sizeof alt, pc, &npc) != 1)
        return NULL;
    log_info("resolve: QuickBooks refused a lookup literal (%s); matching by prefix instead",
             err->message);
    pg = (struct qbo_paging){.max_rows = RESOLVE_MAX_CANDIDATES};
    api_error_clear(err);
    if (qbo_query_all(rc->io, rc->qbo, rc->realm, alt, &pg, &rows, err) < 0)
        return NULL;
    rows_filter(rows, pc, npc);
    return rows;
}
