/* ingress_sign.c - the ingress's request signatures (see ingress_sign.h). */
#include "worker/ingress_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"

int ingress_signer_load(struct ingress_signer *s, const struct config *cfg, char *errstr,
                        size_t errsz)
{
    const char *pu = config_get_str(cfg, "ingress.public_url"), *host;
    const char *const *secrets;
    size_t n, hl;

    memset(s, 0, sizeof *s);
    s->log = (struct log_limit)LOG_LIMIT_INIT;
    if (!pu || *pu == '\0') {
        snprintf(errstr, errsz,
                 "ingress.public_url: required (the https URL HubSpot calls, e.g. "
                 "https://hsqb.example.com)");
        return -1;
    }
    if (strncmp(pu, "https://", 8) != 0 &&
        !(strncmp(pu, "http://", 7) == 0 && config_get_bool(cfg, "http.allow_insecure"))) {
        snprintf(errstr, errsz,
                 "ingress.public_url: \"%.100s\" must start with https:// (http:// only with "
                 "http.allow_insecure, for local test stacks)",
                 pu);
        return -1;
    }
    host = strstr(pu, "://") + 3;
    hl = strcspn(host, "/?#");
    if (hl == 0 || hl > INGRESS_HOST_MAX || host[hl] != '\0' || strpbrk(pu, " \t\r\n") != NULL) {
        snprintf(errstr, errsz,
                 "ingress.public_url: \"%.100s\" must be scheme://host[:port] (at most 900 "
                 "characters), without a path",
                 pu);
        return -1;
    }
    snprintf(s->public_url, sizeof s->public_url, "%s", pu);
    snprintf(s->public_host, sizeof s->public_host, "%.*s", (int)hl, host);
    secrets = config_get_list(cfg, "ingress.client_secrets", &n);
    if (n == 0) {
        snprintf(errstr, errsz,
                 "ingress.client_secrets: required (the HubSpot app's client secret; "
                 "HSQB_INGRESS_CLIENT_SECRETS_FILE)");
        return -1;
    }
    for (size_t i = 0; i < n && i < INGRESS_MAX_SECRETS; i++)
        if ((s->secrets[s->nsecrets++] = strdup(secrets[i])) == NULL) {
            snprintf(errstr, errsz, "ingress: out of memory");
            return -1;
        }
    s->require_v3 = config_get_bool(cfg, "ingress.require_signature_v3");
    return 0;
}

void ingress_signer_release(struct ingress_signer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsecrets; i++) {
        if (!s->secrets[i])
            continue;
        explicit_bzero(s->secrets[i], strlen(s->secrets[i]));
        free(s->secrets[i]);
        s->secrets[i] = NULL;
    }
    s->nsecrets = 0;
}

int ingress_signer_may_read(const struct ingress_signer *s, const struct ingress_sig_headers *h)
{
    return h->v3 != NULL || (!s->require_v3 && h->v2 != NULL);
}

int ingress_signer_verify(const struct ingress_signer *s, const struct ingress_sig_headers *h,
                          const char *target, const char *body, size_t len, int64_t now_ms,
                          const char **reason, char *why, size_t whysz)
{
    char uri[INGRESS_PUBLIC_MAX + INGRESS_URI_MAX + 1], e[128] = "";
    struct hubspot_sig_req sr;
    size_t i;

    snprintf(uri, sizeof uri, "%s%s", s->public_url, target ? target : "");
    sr = (struct hubspot_sig_req){"POST", uri, body, len, h->timestamp};
    if (h->v3) {
        for (i = 0; i < s->nsecrets; i++)
            if (hash_hubspot_verify("v3", s->secrets[i], &sr, h->v3, now_ms, e, sizeof e) == 0)
                return 0;
        *reason = strstr(e, "timestamp") == NULL   ? "mismatch"
                  : strstr(e, "malformed") != NULL ? "bad_timestamp"
                                                   : "expired";
        snprintf(why, whysz, "X-HubSpot-Signature-v3: %s", e);
        return -1;
    }
    if (!h->v2) {
        *reason = "missing";
        snprintf(why, whysz, "no X-HubSpot-Signature-v3 or X-HubSpot-Signature header");
        return -1;
    }
    if (!h->version || strcmp(h->version, "v2") != 0) {
        /* v1 covers the body only: a signed body could be replayed to another URL */
        *reason = "mismatch";
        snprintf(why, whysz, "X-HubSpot-Signature-Version must be v2 (or send v3)");
        return -1;
    }
    for (i = 0; i < s->nsecrets; i++)
        if (hash_hubspot_verify("v2", s->secrets[i], &sr, h->v2, now_ms, e, sizeof e) == 0)
            return 0;
    *reason = "mismatch";
    snprintf(why, whysz, "X-HubSpot-Signature: %s", e);
    return -1;
}

void ingress_signer_log_refusal(struct ingress_signer *s, const char *client, const char *what)
{
    uint64_t dropped;

    if (log_limit_take(&s->log, &dropped))
        log_warn("ingress: request from %s refused: %s (%llu more refusals not logged)", client,
                 what, (unsigned long long)dropped);
}
