/* fuzz_connect_state.c - libFuzzer target for the connect flows' pure half: the signed
 * tokens (worker/connect_state.h) and the query/form reader (worker/connect_page.h).
 *
 * States come back from the browser through Intuit and HubSpot, links and forms from
 * whoever holds a URL: every byte is the internet's. Beyond "no crash, no leak" this
 * checks on every input:
 *   - arbitrary bytes are never accepted as a token of a fixed test secret (the only way
 *     to CONNECT_OK is a MAC the fuzzer cannot compute), and a failed check leaves the
 *     claims untouched;
 *   - a token minted for the input's purpose and portal verifies, and changing any one of
 *     its bytes to the input's first byte (when that differs) never verifies;
 *   - the form reader answers 1, 0 or -1 and, on 1, a NUL-terminated value without NUL
 *     bytes inside that fits the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/connect_page.h"
#include "worker/connect_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-secret-0123456789abcdef0123456789";
static const struct connect_secret K = {secret, sizeof secret - 1};
static const char *const purposes[] = {CONNECT_PURPOSE_QBO, CONNECT_PURPOSE_HUBSPOT,
                                       CONNECT_PURPOSE_LINK};

static void check_arbitrary(const uint8_t *data, size_t size)
{
    struct connect_claims c;

    memset(&c, 0xA5, sizeof c);
    for (size_t i = 0; i < 3; i++)
        if (connect_token_check(&K, (const char *)data, size, purposes[i], -1, 0, &c) == CONNECT_OK)
            abort();
    if (((unsigned char *)&c)[0] != 0xA5)
        abort();
}

static void check_minted(const uint8_t *data, size_t size)
{
    char tok[CONNECT_TOKEN_MAX + 1], t[CONNECT_TOKEN_MAX + 1];
    const char *purpose = purposes[size % 3];
    int64_t portal = 0;
    size_t n;

    for (size_t i = 0; i < size && i < 8; i++)
        portal = portal * 256 + data[i];
    portal &= 0xFFFFFFFFFFFFLL;
    if (connect_token_mint(&K, purpose, portal, 1000000000000LL, tok, sizeof tok) < 0)
        abort();
    if (connect_token_check(&K, tok, strlen(tok), purpose, portal, 0, NULL) != CONNECT_OK)
        abort();
    n = strlen(tok);
    if (size == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if ((char)data[0] == tok[i])
            continue;
        memcpy(t, tok, n + 1);
        t[i] = (char)data[0];
        if (connect_token_check(&K, t, n, purpose, -1, 0, NULL) == CONNECT_OK)
            abort();
    }
}

static void check_form(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"code", "state", "realmId", "error", ""};
    char v[64];

    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int r = connect_form_get((const char *)data, size, keys[i], v, sizeof v);

        if (r < -1 || r > 1)
            abort();
        if (r == 1 && strnlen(v, sizeof v) == sizeof v)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_arbitrary(data, size);
    check_minted(data, size);
    check_form(data, size);
    return 0;
}
