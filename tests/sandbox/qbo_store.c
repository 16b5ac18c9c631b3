/* qbo_store.c - where a company's entities live: trees for the name lists, text for the
 * transactions.
 *
 * Why: a json-c tree costs about 1 KB per JSON object (each object is a hash table), so
 * one stored invoice of ten lines took some 35 KB and the bench's 20,000-document drain
 * grew the sandbox to 1 GB. Transactions (KF_TXN kinds) are written once and read rarely,
 * so they are kept as the exact text they were answered with (a json-c string in
 * r->ents[k], ~2.5 KB) and parsed again only when a rule, a read or a query needs them.
 * Name-list entities (accounts, items, customers, ...) are few and consulted by every
 * write, so they stay trees.
 *
 * Lifecycle of a transaction's tree, all under qbo.c's lock:
 *
 *   text in ents[k] --qbo_ent_get()--> open (parsed, listed in r->open, borrowed by rules,
 *                                       which may change it in place)
 *   new tree --qbo_ent_put()---------> open (replaces any earlier tree of that Id)
 *   open --qbo_settle()--------------> text again: re-serialised, stored only when it
 *                                       differs, tree freed
 *   any --qbo_ent_del()--------------> gone (text and tree)
 *
 * Every public qbo_*() entry point settles its realm before it unlocks, so between
 * requests every transaction is text only. Because the stored text is the serialisation
 * of the tree with the flags the replies use, parse + serialise gives it back byte for
 * byte (json-c keeps a parsed number's original text), and a reply built from an opened
 * tree is the one built before it was stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sandbox/qbo_internal.h"
#include "tests/sandbox/sb_json.h"

#define QBO_STORE_DEPTH 64 /* nesting of a stored entity; deeper than any builder writes */

int qbo_compact(enum kind k)
{
    return (qbo_kinds[k].flags & KF_TXN) != 0;
}

/* The text of tree as the replies write it: by sb_json_tree (json-c's bytes; settling a
 * bench invoice took 112,000 instructions with json-c's serialiser, 88,000 now), or by
 * json-c for a tree nested deeper than sb_json writes. The text lives in w (caller
 * releases) or in the tree. */
static const char *serialise(struct json_object *tree, struct sb_json *w, size_t *len)
{
    sb_json_init(w);
    sb_json_tree(w, tree);
    if (!w->err && w->buf) {
        *len = w->len;
        return w->buf;
    }
    sb_json_release(w);
    return json_object_to_json_string_length(tree, SB_JSON_C_FLAGS, len);
}

struct json_object *qbo_text_parse(struct json_object *text)
{
    struct json_tokener *tok = sb_tokener(QBO_STORE_DEPTH);
    struct json_object *tree = NULL;
    if (!tok)
        return NULL;
    tree = json_tokener_parse_ex(tok, json_object_get_string(text),
                                 json_object_get_string_len(text));
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(tree);
        tree = NULL;
    }
    return tree;
}

static struct qbo_open *open_find(struct realm *r, enum kind k, const char *id)
{
    for (int i = 0; i < r->nopen; i++)
        if (r->open[i].k == k && strcmp(r->open[i].id, id) == 0)
            return &r->open[i];
    return NULL;
}

static struct qbo_open *open_add(struct realm *r, enum kind k, const char *id,
                                 struct json_object *tree)
{
    if (strlen(id) >= sizeof(r->open[0].id))
        return NULL;
    if (r->nopen == r->capopen) {
        int cap = r->capopen ? 2 * r->capopen : 16;
        struct qbo_open *n = realloc(r->open, (size_t)cap * sizeof(*n));
        if (!n)
            return NULL;
        r->open = n;
        r->capopen = cap;
    }
    struct qbo_open *o = &r->open[r->nopen++];
    o->k = k;
    snprintf(o->id, sizeof(o->id), "%s", id);
    o->tree = tree;
    return o;
}

struct json_object *qbo_ent_get(struct realm *r, enum kind k, const char *id)
{
    struct json_object *v, *tree;
    struct qbo_open *o;
    if (!id || !json_object_object_get_ex(r->ents[k], id, &v))
        return NULL;
    if (!qbo_compact(k))
        return v;
    if ((o = open_find(r, k, id)))
        return o->tree;
    if (!(tree = qbo_text_parse(v)))
        return NULL;
    if (!open_add(r, k, id, tree)) {
        json_object_put(tree);
        return NULL;
    }
    return tree;
}

struct json_object *qbo_ent_adopt(struct realm *r, enum kind k, const char *id,
                                  struct json_object *tree)
{
    struct qbo_open *o = open_find(r, k, id);
    if (o) { /* already open: the caller's copy is the same text; keep the one in use */
        json_object_put(tree);
        return o->tree;
    }
    if (!open_add(r, k, id, tree)) {
        json_object_put(tree);
        return NULL;
    }
    return tree;
}

void qbo_ent_put(struct realm *r, enum kind k, const char *id, struct json_object *tree)
{
    struct qbo_open *o;
    if (!qbo_compact(k)) {
        json_object_object_add(r->ents[k], id, tree); /* frees the old tree */
        return;
    }
    if ((o = open_find(r, k, id))) {
        json_object_put(o->tree);
        o->tree = tree;
    } else if (!open_add(r, k, id, tree)) {
        json_object_put(tree); /* out of memory: the old text stays */
        return;
    }
    if (!json_object_object_get_ex(r->ents[k], id, NULL)) /* holds its place in Id order */
        json_object_object_add(r->ents[k], id, json_object_new_string(""));
}

void qbo_ent_del(struct realm *r, enum kind k, const char *id)
{
    struct qbo_open *o = qbo_compact(k) ? open_find(r, k, id) : NULL;
    if (o) {
        json_object_put(o->tree);
        *o = r->open[--r->nopen];
    }
    json_object_object_del(r->ents[k], id);
}

struct json_object *qbo_ent_text(struct realm *r, enum kind k, const char *id)
{
    struct json_object *v;
    if (!qbo_compact(k) || open_find(r, k, id) || !json_object_object_get_ex(r->ents[k], id, &v))
        return NULL;
    return v;
}

void qbo_settle(struct realm *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nopen; i++) {
        struct qbo_open *o = &r->open[i];
        struct json_object *cur;
        struct sb_json w;
        size_t len = 0;
        const char *s = serialise(o->tree, &w, &len);
        if (s && json_object_object_get_ex(r->ents[o->k], o->id, &cur) &&
            ((size_t)json_object_get_string_len(cur) != len ||
             memcmp(json_object_get_string(cur), s, len) != 0))
            json_object_object_add(r->ents[o->k], o->id, json_object_new_string_len(s, (int)len));
        sb_json_release(&w);
        json_object_put(o->tree);
    }
    r->nopen = 0;
}

void qbo_store_free(struct realm *r)
{
    for (int i = 0; i < r->nopen; i++)
        json_object_put(r->open[i].tree);
    free(r->open);
    r->open = NULL;
    r->nopen = r->capopen = 0;
}
