/* cmd_credentials.c - `hsqb-worker credentials` (see cmd_credentials.h).
 *
 * The command's own flags are picked out of argv first; everything left is handed to the
 * settings loader, so Redis is addressed exactly as `run` would address it (same file,
 * environment and flags). Secrets enter through a file, stdin or one environment
 * variable, never a flag value, and are wiped from memory after use.
 */
#include "worker/cmd_credentials.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/http.h"
#include "common/redis.h"
#include "common/utf8.h"
#include "common/clock.h"
#include "worker/apierr.h"
#include "worker/atrest.h"
#include "worker/connect_state.h"
#include "worker/exitcode.h"
#include "worker/hubspot.h"
#include "worker/hubspot_oauth.h"
#include "worker/oauth.h"
#include "worker/settings.h"
#include "worker/tenancy.h"

#define CRED_PORTAL_MAX 18     /* digits of a HubSpot portal id (fits int64) */
#define CRED_MAX_ARGS   256    /* setting flags passed through */
#define CRED_SCAN_MAX   100000 /* keys listed, a bound against a runaway SCAN */

struct opts {
    const char *action;
    const char *realm, *portal;
    const char *token_file; /* --refresh-token-file / --token-file */
    int token_stdin;        /* --refresh-token - / --token - */
    int verify;
};

static const char usage_text[] =
    "usage: hsqb-worker credentials qbo --realm R [--portal P] (--refresh-token-file F |"
    " --refresh-token -) [--verify] [settings]\n"
    "       hsqb-worker credentials hubspot --portal P (--token-file F | --token -) [settings]\n"
    "       hsqb-worker credentials bind --realm R --portal P [settings]\n"
    "       hsqb-worker credentials unbind --realm R [--portal P] [settings]\n"
    "       hsqb-worker credentials list [settings]\n"
    "       hsqb-worker credentials delete (--realm R | --portal P) [settings]\n"
    "       hsqb-worker credentials connect-link --portal P [settings]\n"
    "       hsqb-worker credentials reencrypt [settings]\n"
    "qbo --portal P also binds realm R to HubSpot portal P: the worker refuses an event\n"
    "whose realm is not bound to its portal (REALM_NOT_ALLOWED). QBO refresh tokens may\n"
    "also come from HSQB_QBO_REFRESH_TOKEN, HubSpot tokens from HSQB_HUBSPOT_PORTAL_TOKEN.\n"
    "connect-link prints a 15-minute link to the ingress's connect, disconnect and settings\n"
    "pages for portal P (needs ingress.public_url and ingress.session_secret).\n"
    "reencrypt rewrites every stored token under the first key of redis.encryption_keys\n"
    "(tokens stored in plain text too); run it after adding or rotating a key.\n"
    "Settings (--redis.host=..., --config FILE) as for `run`.\n";

static int usage(FILE *err, const char *why)
{
    if (why)
        fprintf(err, "hsqb-worker credentials: %s\n", why);
    fputs(usage_text, err);
    return EXIT_USAGE;
}

static int digits(const char *s, size_t max)
{
    size_t n = s ? strspn(s, "0123456789") : 0;
    return s && n >= 1 && n <= max && s[n] == 0;
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Trim trailing whitespace in buf (n bytes, NUL-terminated); the rest must be non-empty
 * printable ASCII without spaces. 0 or -1 with why. */
static int check_secret(char *buf, size_t n, const char **why)
{
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = 0;
    if (n == 0) {
        *why = "token is empty";
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i] <= ' ' || buf[i] > '~') {
            *why = "token contains spaces or control characters";
            return -1;
        }
    return 0;
}

/* Read a secret of at most max - 1 bytes from f. */
static int read_secret(FILE *f, char *buf, size_t max, const char **why)
{
    size_t n = fread(buf, 1, max, f);
    if (ferror(f)) {
        *why = "could not read the token";
        return -1;
    }
    if (n == max) {
        *why = "token too long";
        return -1;
    }
    buf[n] = 0;
    return check_secret(buf, n, why);
}

/* The token from --*-file, stdin or the environment variable env_name. */
static int get_secret(const struct opts *o, char **envp, FILE *in, const char *env_name, char *buf,
                      size_t max, FILE *err)
{
    const char *why = "bad token", *env;
    int rc;

    if (o->token_file) {
        FILE *f = fopen(o->token_file, "r");
        if (!f) {
            fprintf(err, "hsqb-worker credentials: %s: %s\n", o->token_file, strerror(errno));
            return -1;
        }
        rc = read_secret(f, buf, max, &why);
        fclose(f);
    } else if (o->token_stdin) {
        rc = read_secret(in, buf, max, &why);
    } else if ((env = env_get(envp, env_name)) != NULL) {
        size_t n = strlen(env);
        if (n >= max) {
            why = "token too long";
            rc = -1;
        } else {
            memcpy(buf, env, n + 1);
            rc = check_secret(buf, n, &why);
        }
    } else {
        fprintf(err, "hsqb-worker credentials: no token given (file, '-' for stdin, or %s)\n",
                env_name);
        return -1;
    }
    if (rc < 0)
        fprintf(err, "hsqb-worker credentials: %s\n", why);
    return rc;
}

static struct redis_conn *connect_redis(const struct config *cfg, char *errstr, size_t errsz)
{
    struct redis_opts ro;

    settings_redis_opts(cfg, &ro);
    return redis_conn_new(&ro, errstr, errsz);
}

static void fmt_time(int64_t ms, char *buf, size_t bufsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, bufsz, "unknown");
}

/* ---- actions ----------------------------------------------------------------------- */

static int verify(const struct config *cfg, struct redis_conn *redis, const char *realm, FILE *out,
                  FILE *err)
{
    char e[256], *tok = NULL;
    struct http_client_opts ho;
    struct http_client *http = NULL;
    struct oauth *o = NULL;
    struct ioctx io;
    struct api_error ae;
    int rc = EXIT_FAIL;

    if (!(o = oauth_new(cfg, e, sizeof e))) {
        fprintf(err, "hsqb-worker credentials: --verify: %s\n", e);
        return EXIT_USAGE;
    }
    settings_http_opts(cfg, &ho);
    if (!(http = http_client_new(&ho, e, sizeof e)) || !(tok = malloc(OAUTH_TOKEN_MAX))) {
        fprintf(err, "hsqb-worker credentials: --verify: %s\n", http ? "out of memory" : e);
        goto out;
    }
    io = (struct ioctx){.http = http, .redis = redis};
    if (oauth_get_access(&io, o, realm, tok, OAUTH_TOKEN_MAX, &ae) < 0) {
        char shown[4 * API_MSG_MAX];
        fprintf(err, "hsqb-worker credentials: verification failed (%s): %s\n",
                api_class_name(ae.cls), utf8_printable(ae.message, shown, sizeof shown));
        goto out;
    }
    fprintf(out,
            "verified: Intuit accepted the refresh token of realm %s; the access token "
            "and the rotated refresh token are stored\n",
            realm);
    rc = EXIT_OK;
out:
    if (tok) {
        explicit_bzero(tok, OAUTH_TOKEN_MAX);
        free(tok);
    }
    http_client_free(http);
    oauth_free(o);
    return rc;
}

/* ---- bindings (worker/tenancy.h) ---------------------------------------------------- */

static int bind_realm(const struct opts *op, struct redis_conn *redis, FILE *out, FILE *err)
{
    char e[256];

    if (!op->portal) /* callers validate first; kept for the analyzer and for safety */
        return usage(err, "bind needs --portal");
    if (tenancy_bind(redis, strtoll(op->portal, NULL, 10), op->realm, e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker credentials: binding failed: %s%s\n", e,
                strstr(e, "is bound to portal") ? " (unbind it there first)" : "");
        return EXIT_FAIL;
    }
    fprintf(out, "realm %s is bound to HubSpot portal %s\n", op->realm, op->portal);
    return EXIT_OK;
}

/* Unbind realm from portal (NULL: from whichever portal it is bound to); *was = the portal
 * it was bound to, 0 when none. Unbinding from a portal it is not bound to cleans that
 * portal's index all the same. */
static int unbind_realm(const char *realm, const char *portal, struct redis_conn *redis,
                        int64_t *was, FILE *err)
{
    char e[256];
    int64_t bound = 0;
    int rc = tenancy_portal_of(redis, realm, &bound, e, sizeof e);

    *was = 0;
    if (rc >= 0 && (rc == 1 || portal) &&
        tenancy_unbind(redis, portal ? strtoll(portal, NULL, 10) : bound, realm, e, sizeof e) < 0)
        rc = -1;
    if (rc < 0) {
        fprintf(err, "hsqb-worker credentials: unbinding failed: %s\n", e);
        return EXIT_FAIL;
    }
    *was = bound;
    return EXIT_OK;
}

static int unbind_cmd(const struct opts *op, struct redis_conn *redis, FILE *out, FILE *err)
{
    int64_t was;

    if (unbind_realm(op->realm, op->portal, redis, &was, err) != EXIT_OK)
        return EXIT_FAIL;
    if (was)
        fprintf(out, "realm %s is no longer bound to HubSpot portal %" PRId64 "\n", op->realm, was);
    else
        fprintf(out, "realm %s: not bound to %s\n", op->realm,
                op->portal ? "that portal" : "any portal");
    return EXIT_OK;
}

static void note_unbound(struct redis_conn *redis, const char *realm, FILE *out)
{
    char e[256];
    int64_t p;

    if (tenancy_portal_of(redis, realm, &p, e, sizeof e) == 0)
        fprintf(out,
                "note: realm %s is bound to no HubSpot portal, so the worker refuses its events "
                "(REALM_NOT_ALLOWED) unless tenancy.allow_unbound is on: "
                "hsqb-worker credentials bind --realm %s --portal P\n",
                realm, realm);
}

static void note_no_token(struct redis_conn *redis, const char *realm, FILE *out)
{
    struct oauth_status st;
    char e[256];

    if (oauth_status_get(redis, realm, &st, e, sizeof e) == 0)
        fprintf(out,
                "note: no QuickBooks credentials are stored for realm %s yet "
                "(hsqb-worker credentials qbo --realm %s ...)\n",
                realm, realm);
}

/* The warning `run` logs at start, for the commands that store tokens. */
static void note_plaintext(struct redis_conn *redis, FILE *err)
{
    if (!redis_conn_keyring(redis))
        fprintf(err, "hsqb-worker credentials: note: redis.encryption_keys is not set, so the "
                     "token is stored in Redis in plain text\n");
}

static int store_qbo(const struct opts *op, const struct config *cfg, struct redis_conn *redis,
                     char **envp, FILE *in, FILE *out, FILE *err)
{
    char tok[OAUTH_REFRESH_TOKEN_MAX], e[256];
    int rc;

    if (get_secret(op, envp, in, "HSQB_QBO_REFRESH_TOKEN", tok, sizeof tok, err) < 0)
        return EXIT_USAGE;
    /* bind first: a realm bound to another portal keeps its token as it is */
    rc = op->portal ? bind_realm(op, redis, out, err) : EXIT_OK;
    if (rc == EXIT_OK && oauth_store_refresh_token(redis, op->realm, tok, 0, e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker credentials: storing the refresh token failed: %s\n", e);
        rc = EXIT_FAIL;
    }
    explicit_bzero(tok, sizeof tok);
    if (rc != EXIT_OK)
        return rc;
    fprintf(out, "stored the QuickBooks refresh token of realm %s\n", op->realm);
    note_plaintext(redis, err);
    if (!op->portal)
        note_unbound(redis, op->realm, out);
    return op->verify ? verify(cfg, redis, op->realm, out, err) : EXIT_OK;
}

static int hs_key(struct redis_conn *redis, const char *portal, char *key, size_t keysz)
{
    if (!portal) /* callers validate first; kept for the analyzer and for safety */
        return -1;
    return hubspot_token_key(key, keysz, redis_conn_prefix(redis), strtoll(portal, NULL, 10));
}

static int store_hubspot(const struct opts *op, struct redis_conn *redis, char **envp, FILE *in,
                         FILE *out, FILE *err)
{
    char tok[OAUTH_TOKEN_MAX], sealed[ATREST_STORED_MAX(OAUTH_TOKEN_MAX) + 1];
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *r = NULL;

    if (hs_key(redis, op->portal, key, sizeof key) < 0)
        return usage(err, "portal id too long");
    if (get_secret(op, envp, in, "HSQB_HUBSPOT_PORTAL_TOKEN", tok, sizeof tok, err) < 0)
        return EXIT_USAGE;
    if (atrest_seal(redis, key, "", tok, sealed, sizeof sealed, e, sizeof e) == 0)
        r = redis_command(redis, e, sizeof e, "SET %s %s", key, sealed);
    explicit_bzero(tok, sizeof tok);
    explicit_bzero(sealed, sizeof sealed);
    /* a private-app token now: whatever refreshes OAuth installs must leave it alone */
    if (!r || hubspot_oauth_forget(redis, strtoll(op->portal, NULL, 10), e, sizeof e) < 0) {
        if (r)
            freeReplyObject(r);
        fprintf(err, "hsqb-worker credentials: storing the HubSpot token failed: %s\n", e);
        return EXIT_FAIL;
    }
    freeReplyObject(r);
    fprintf(out, "stored the HubSpot token of portal %s\n", op->portal);
    note_plaintext(redis, err);
    return EXIT_OK;
}

/* P's connect and disconnect URLs (worker/connect.h), signed with ingress.session_secret. */
static int connect_link(const struct opts *op, const struct config *cfg, FILE *out, FILE *err)
{
    const char *secret = config_get_str(cfg, "ingress.session_secret");
    const char *pu = config_get_str(cfg, "ingress.public_url");
    struct connect_secret k = {secret, strlen(secret)};
    char link[CONNECT_TOKEN_MAX + 1];
    int64_t portal;

    if (!op->portal) /* callers validate first; kept for the analyzer and for safety */
        return usage(err, "connect-link needs --portal");
    portal = strtoll(op->portal, NULL, 10);
    if (!*secret || !*pu) {
        fprintf(err, "hsqb-worker credentials: connect-link needs ingress.session_secret and "
                     "ingress.public_url (the ingress's own)\n");
        return EXIT_USAGE;
    }
    if (connect_token_mint(&k, CONNECT_PURPOSE_LINK, portal, clock_wall_ms() + CONNECT_LINK_TTL_MS,
                           link, sizeof link) < 0) {
        fprintf(err, "hsqb-worker credentials: could not sign the link\n");
        return EXIT_FAIL;
    }
    fprintf(out, "connect:    %s/qbo/connect?portal=%lld&link=%s\n", pu, (long long)portal, link);
    fprintf(out, "disconnect: %s/qbo/disconnect?portal=%lld&link=%s\n", pu, (long long)portal,
            link);
    fprintf(out, "settings:   %s/settings?portal=%lld&link=%s\n", pu, (long long)portal, link);
    fprintf(err,
            "valid for %lld minutes; anyone holding the link may connect QuickBooks "
            "companies to HubSpot portal %lld or disconnect them\n",
            (long long)(CONNECT_LINK_TTL_MS / 60000), (long long)portal);
    return EXIT_OK;
}

/* The text between the first '{' and the following '}' of key. */
static int tag_of(const char *key, size_t len, char *tag, size_t tagsz)
{
    const char *a = memchr(key, '{', len), *b;
    if (!a || !(b = memchr(a, '}', (size_t)(key + len - a))) || (size_t)(b - a - 1) >= tagsz)
        return -1;
    memcpy(tag, a + 1, (size_t)(b - a - 1));
    tag[b - a - 1] = 0;
    return 0;
}

/* SCAN for <prefix><what>{*}; calls show(tag, arg) per key. -1 on a Redis failure. */
static int scan(struct redis_conn *redis, const char *what,
                void (*show)(struct redis_conn *, const char *, void *), void *arg, FILE *err)
{
    char pattern[REDIS_MAX_KEY + 1], cursor[32] = "0", e[256], tag[64];
    const char *prefix = redis_conn_prefix(redis);
    size_t k = 0, seen = 0;

    for (; *prefix && k + 3 < sizeof pattern; prefix++) {
        if (strchr("*?[]\\", *prefix))
            pattern[k++] = '\\';
        pattern[k++] = *prefix;
    }
    snprintf(pattern + k, sizeof pattern - k, "%s{*}", what);
    do {
        redisReply *r =
            redis_command(redis, e, sizeof e, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            fprintf(err, "hsqb-worker credentials: listing failed: %s\n", r ? "bad reply" : e);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements && seen < CRED_SCAN_MAX; i++, seen++) {
            const redisReply *kr = r->element[1]->element[i];
            if (kr->type == REDIS_REPLY_STRING && tag_of(kr->str, kr->len, tag, sizeof tag) == 0)
                show(redis, tag, arg);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0 && seen < CRED_SCAN_MAX);
    return 0;
}

/* "portal P" or "NO PORTAL (...)" for realm's binding, into buf. */
static void binding_text(struct redis_conn *redis, const char *realm, char *buf, size_t bufsz)
{
    char e[256];
    int64_t p;

    switch (tenancy_portal_of(redis, realm, &p, e, sizeof e)) {
    case 1:
        snprintf(buf, bufsz, "portal %" PRId64, p);
        break;
    case 0:
        snprintf(buf, bufsz, "NO PORTAL (events refused unless tenancy.allow_unbound)");
        break;
    default:
        snprintf(buf, bufsz, "portal unknown (%s)", e);
    }
}

static void show_realm(struct redis_conn *redis, const char *realm, void *arg)
{
    FILE *out = arg;
    struct oauth_status st;
    char e[256], rt[32], at[32], up[32], b[300], shown[4 * 64];
    if (oauth_status_get(redis, realm, &st, e, sizeof e) != 1)
        return;
    fmt_time(st.refresh_expires_at_ms, rt, sizeof rt);
    fmt_time(st.access_expires_at_ms, at, sizeof at);
    fmt_time(st.updated_at_ms, up, sizeof up);
    binding_text(redis, realm, b, sizeof b);
    fprintf(
        out, "qbo realm %s: %s, refresh token %s (expires %s), access token %s%s, updated %s%s\n",
        utf8_printable(realm, shown, sizeof shown), b, st.has_refresh_token ? "stored" : "MISSING",
        rt, st.has_access_token ? "valid until " : "none", st.has_access_token ? at : "", up,
        st.reauth_required ? ", REAUTH REQUIRED (Intuit refused the refresh token)" : "");
}

/* A binding whose realm has no QBO credentials (show_realm lists the others). */
static void show_binding(struct redis_conn *redis, const char *realm, void *arg)
{
    FILE *out = arg;
    struct oauth_status st;
    char e[256], b[300], shown[4 * 64];

    if (oauth_status_get(redis, realm, &st, e, sizeof e) != 0)
        return;
    binding_text(redis, realm, b, sizeof b);
    fprintf(out, "qbo realm %s: %s, no QuickBooks credentials stored\n",
            utf8_printable(realm, shown, sizeof shown), b);
}

/* Which portals the default hubspot.token serves (hubspot.token_portals). */
static void show_default_token(const struct config *cfg, FILE *out)
{
    size_t n;
    const char *const *p = config_get_list(cfg, "hubspot.token_portals", &n);

    if (!config_get_str(cfg, "hubspot.token")[0])
        return;
    fprintf(out, "hubspot default token (hubspot.token): serves %s",
            n ? "portals " : "no portal (hubspot.token_portals is empty)");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", strcmp(p[i], "*") == 0 ? "* (any)" : p[i]);
    fputc('\n', out);
}

static void show_portal(struct redis_conn *redis, const char *portal, void *arg)
{
    FILE *out = arg;
    struct hubspot_oauth_status st;
    char e[256], at[32], in[32], shown[4 * 64], dom[4 * (HUBSPOT_OAUTH_DOMAIN_MAX + 1)];

    /* the tag and the stored domain are Redis text: printable only (utf8_printable) */
    utf8_printable(portal, shown, sizeof shown);
    if (hubspot_oauth_status_get(redis, strtoll(portal, NULL, 10), &st, e, sizeof e) != 1) {
        fprintf(out, "hubspot portal %s: token stored\n", shown);
        return;
    }
    fmt_time(st.access_expires_at_ms, at, sizeof at);
    fmt_time(st.installed_at_ms, in, sizeof in);
    fprintf(out,
            "hubspot portal %s: OAuth install%s%s (installed %s), access token valid until %s, "
            "refresh token %s\n",
            shown, st.hub_domain[0] ? " of " : "", utf8_printable(st.hub_domain, dom, sizeof dom),
            in, at, st.has_refresh_token ? "stored" : "MISSING");
}

static int del(const struct opts *op, struct redis_conn *redis, FILE *out, FILE *err)
{
    char key[REDIS_MAX_KEY + 1], e[256];
    redisReply *r;
    int gone;

    if (op->realm ? oauth_key(redis, op->realm, key, sizeof key) < 0
                  : hs_key(redis, op->portal, key, sizeof key) < 0)
        return usage(err, "bad id");
    if (!(r = redis_command(redis, e, sizeof e, "DEL %s", key))) {
        fprintf(err, "hsqb-worker credentials: delete failed: %s\n", e);
        return EXIT_FAIL;
    }
    gone = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    if (!op->realm && hubspot_oauth_forget(redis, strtoll(op->portal, NULL, 10), e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker credentials: delete failed: %s\n", e);
        return EXIT_FAIL;
    }
    fprintf(out, "%s %s %s: %s\n", op->realm ? "qbo" : "hubspot", op->realm ? "realm" : "portal",
            op->realm ? op->realm : op->portal, gone ? "credentials deleted" : "nothing stored");
    return op->realm ? unbind_cmd(&(struct opts){.realm = op->realm}, redis, out, err) : EXIT_OK;
}

/* ---- reencrypt ------------------------------------------------------------------- */

struct reseal_run {
    FILE *out;
    long done, current, failed;
};

/* One stored token under the current key (worker/atrest.h), counted and reported. */
static void reseal_one(struct redis_conn *redis, const char *key, const char *field,
                       struct reseal_run *run)
{
    char e[256], shown[4 * (REDIS_MAX_KEY + 1)];

    switch (atrest_reseal(redis, key, field, e, sizeof e)) {
    case ATREST_RESEAL_DONE:
    case ATREST_RESEAL_RACE: /* a worker wrote it meanwhile, sealed with the current key */
        run->done++;
        break;
    case ATREST_RESEAL_CURRENT:
        run->current++;
        break;
    default:
        run->failed++;
        fprintf(run->out, "%s %s: %s\n", utf8_printable(key, shown, sizeof shown),
                *field ? field : "(value)", e);
    }
}

static void reseal_realm(struct redis_conn *redis, const char *realm, void *arg)
{
    char key[REDIS_MAX_KEY + 1];

    if (oauth_key(redis, realm, key, sizeof key) < 0)
        return;
    reseal_one(redis, key, "access_token", arg);
    reseal_one(redis, key, "refresh_token", arg);
}

static void reseal_portal(struct redis_conn *redis, const char *portal, void *arg)
{
    char key[REDIS_MAX_KEY + 1];

    if (digits(portal, CRED_PORTAL_MAX) && hs_key(redis, portal, key, sizeof key) == 0)
        reseal_one(redis, key, "", arg);
}

static void reseal_install(struct redis_conn *redis, const char *portal, void *arg)
{
    char key[REDIS_MAX_KEY + 1];

    if (digits(portal, CRED_PORTAL_MAX) &&
        hubspot_oauth_key(key, sizeof key, redis_conn_prefix(redis), strtoll(portal, NULL, 10)) ==
            0)
        reseal_one(redis, key, "refresh_token", arg);
}

/* Every stored token re-written under the key ring's first key: after a plain-text
 * deployment gets its first key, and after each rotation (README, "Secrets at rest"). */
static int reencrypt(struct redis_conn *redis, FILE *out, FILE *err)
{
    struct reseal_run run = {out, 0, 0, 0};

    if (!redis_conn_keyring(redis)) {
        fprintf(err, "hsqb-worker credentials: reencrypt needs redis.encryption_keys "
                     "(HSQB_REDIS_ENCRYPTION_KEYS_FILE)\n");
        return EXIT_USAGE;
    }
    if (scan(redis, "oauth:", reseal_realm, &run, err) < 0 ||
        scan(redis, "hstoken:", reseal_portal, &run, err) < 0 ||
        scan(redis, HUBSPOT_OAUTH_KEY, reseal_install, &run, err) < 0)
        return EXIT_FAIL;
    fprintf(out, "reencrypt: %ld tokens re-encrypted under key %s, %ld already were, %ld failed\n",
            run.done, seal_keyring_current(redis_conn_keyring(redis)), run.current, run.failed);
    return run.failed ? EXIT_FAIL : EXIT_OK;
}

/* ---- argument handling ------------------------------------------------------------- */

/* Our flag at argv[*i] ("--name value" or "--name=value"): value, advancing *i. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (!argv[*i] || strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int cmd_credentials_run(int argc, char **argv, char **envp, FILE *in, FILE *out, FILE *err)
{
    struct opts op = {0};
    char *rest[CRED_MAX_ARGS + 1], e[512];
    int nrest = 0, rc = EXIT_FAIL;
    struct config *cfg = NULL;
    struct redis_conn *redis = NULL;
    const char *v;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return argc < 2 ? usage(err, NULL) : (fputs(usage_text, out), EXIT_OK);
    op.action = argv[1];
    rest[nrest++] = argv[0];
    for (int i = 2; i < argc; i++) {
        if ((v = flag_value(argc, argv, &i, "--realm")) != NULL) {
            op.realm = v;
        } else if ((v = flag_value(argc, argv, &i, "--portal")) != NULL) {
            op.portal = v;
        } else if ((v = flag_value(argc, argv, &i, "--refresh-token-file")) != NULL ||
                   (v = flag_value(argc, argv, &i, "--token-file")) != NULL) {
            op.token_file = v;
        } else if ((v = flag_value(argc, argv, &i, "--refresh-token")) != NULL ||
                   (v = flag_value(argc, argv, &i, "--token")) != NULL) {
            if (strcmp(v, "-") != 0)
                return usage(err, "a token is never taken as a flag value (ps would show it): "
                                  "use '-' for stdin, a token file, or the environment");
            op.token_stdin = 1;
        } else if (!argv[i]) {
            break;
        } else if (strcmp(argv[i], "--verify") == 0) {
            op.verify = 1;
        } else if (nrest < CRED_MAX_ARGS) {
            rest[nrest++] = argv[i];
        } else {
            return usage(err, "too many arguments");
        }
    }
    rest[nrest] = NULL;

    if (strcmp(op.action, "qbo") == 0) {
        if (!digits(op.realm, OAUTH_REALM_MAX) ||
            (op.portal && !digits(op.portal, CRED_PORTAL_MAX)))
            return usage(err, "qbo needs --realm <digits> (and --portal <digits> to bind it)");
    } else if (strcmp(op.action, "bind") == 0 || strcmp(op.action, "unbind") == 0) {
        int need_portal = op.action[0] == 'b';
        if (!digits(op.realm, OAUTH_REALM_MAX) || (need_portal && !op.portal) ||
            (op.portal && !digits(op.portal, CRED_PORTAL_MAX)) || op.verify)
            return usage(err, need_portal ? "bind needs --realm <digits> --portal <digits>"
                                          : "unbind needs --realm <digits> [--portal <digits>]");
    } else if (strcmp(op.action, "hubspot") == 0) {
        if (!digits(op.portal, CRED_PORTAL_MAX) || op.realm || op.verify)
            return usage(err, "hubspot needs --portal <digits>");
    } else if (strcmp(op.action, "delete") == 0) {
        if (!op.realm == !op.portal || (op.realm && !digits(op.realm, OAUTH_REALM_MAX)) ||
            (op.portal && !digits(op.portal, CRED_PORTAL_MAX)))
            return usage(err, "delete needs --realm <digits> or --portal <digits>");
    } else if (strcmp(op.action, "connect-link") == 0) {
        if (!digits(op.portal, CRED_PORTAL_MAX) || op.realm || op.verify)
            return usage(err, "connect-link needs --portal <digits>");
    } else if (strcmp(op.action, "reencrypt") == 0) {
        if (op.realm || op.portal || op.verify)
            return usage(err, "reencrypt takes no --realm or --portal: it rewrites every token");
    } else if (strcmp(op.action, "list") != 0) {
        return usage(err, "unknown action");
    }
    if ((op.token_file || op.token_stdin) && strcmp(op.action, "qbo") != 0 &&
        strcmp(op.action, "hubspot") != 0)
        return usage(err, "a token is only taken by qbo and hubspot");

    if (settings_load_flags(&cfg, nrest, rest, envp, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker credentials: %s\n", e);
        return EXIT_USAGE;
    }
    if (strcmp(op.action, "connect-link") == 0) {
        rc = connect_link(&op, cfg, out, err);
        goto out;
    }
    if (!(redis = connect_redis(cfg, e, sizeof e))) {
        fprintf(err, "hsqb-worker credentials: Redis: %s\n", e);
        goto out;
    }
    if (strcmp(op.action, "qbo") == 0) {
        rc = store_qbo(&op, cfg, redis, envp, in, out, err);
    } else if (strcmp(op.action, "hubspot") == 0) {
        rc = store_hubspot(&op, redis, envp, in, out, err);
    } else if (strcmp(op.action, "bind") == 0) {
        rc = bind_realm(&op, redis, out, err);
        if (rc == EXIT_OK)
            note_no_token(redis, op.realm, out);
    } else if (strcmp(op.action, "unbind") == 0) {
        rc = unbind_cmd(&op, redis, out, err);
    } else if (strcmp(op.action, "delete") == 0) {
        rc = del(&op, redis, out, err);
    } else if (strcmp(op.action, "reencrypt") == 0) {
        rc = reencrypt(redis, out, err);
    } else {
        rc = scan(redis, "oauth:", show_realm, out, err) < 0 ||
                     scan(redis, TENANCY_REALM_KEY, show_binding, out, err) < 0 ||
                     scan(redis, "hstoken:", show_portal, out, err) < 0
                 ? EXIT_FAIL
                 : EXIT_OK;
        if (rc == EXIT_OK)
            show_default_token(cfg, out);
    }
out:
    redis_conn_free(redis);
    config_free(cfg);
    return rc;
}

int cmd_credentials(int argc, char **argv)
{
    return cmd_credentials_run(argc, argv, (char **)config_environ(), stdin, stdout, stderr);
}
