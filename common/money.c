/* money.c - exact decimal parsing, formatting and line arithmetic.
 *
 * Design: parsing never goes through double or strtod. dec_scan() checks the grammar
 * and splits the text into sign, significant integer digits and fraction digits;
 * dec_value() turns those into a magnitude with a fixed number of decimals, looking
 * only at the first dropped digit and whether any later one is non-zero (enough to
 * round exactly, so inputs of any length cost O(n) and no memory). Products are taken
 * in unsigned __int128 on magnitudes and rounded once by div_round(); the sign is put
 * back last, which keeps rounding symmetric around zero.
 */
#include "common/money.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

/* Shown in error messages; the rest of a longer input is elided. */
#define QUOTE_MAX_INPUT 32

/* price7 x qty7 has 14 decimals; cents have 2. */
#define PRODUCT_PER_CENT 1000000000000ULL /* 10^12 */

static const uint64_t pow10_u64[] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

const char *money_err_str(enum money_err err)
{
    switch (err) {
    case MONEY_OK:
        return "ok";
    case MONEY_EINVAL:
        return "invalid argument";
    case MONEY_ESYNTAX:
        return "not a plain decimal number";
    case MONEY_EPRECISION:
        return "too many decimals";
    case MONEY_EOVERFLOW:
        return "out of range";
    case MONEY_ENOSPACE:
        return "buffer too small";
    case MONEY_EINEXACT:
        return "no exact unit price";
    }
    return "unknown money error";
}

enum money_err money_round_parse(const char *name, enum money_round *out)
{
    enum money_round m;

    if (!name || !out)
        return MONEY_EINVAL;
    if (strcmp(name, "none") == 0)
        m = MONEY_ROUND_NONE;
    else if (strcmp(name, "half_even") == 0 || strcmp(name, "bankers") == 0)
        m = MONEY_ROUND_HALF_EVEN;
    else if (strcmp(name, "half_up") == 0)
        m = MONEY_ROUND_HALF_UP;
    else
        return MONEY_EINVAL;
    *out = m;
    return MONEY_OK;
}

const char *money_round_name(enum money_round mode)
{
    switch (mode) {
    case MONEY_ROUND_NONE:
        return "none";
    case MONEY_ROUND_HALF_EVEN:
        return "half_even";
    case MONEY_ROUND_HALF_UP:
        return "half_up";
    }
    return "?";
}

static int mode_valid(enum money_round mode)
{
    return mode == MONEY_ROUND_NONE || mode == MONEY_ROUND_HALF_EVEN || mode == MONEY_ROUND_HALF_UP;
}

/* Writes the input as a C-ish quoted string: printable ASCII as is, '"' and '\\'
 * escaped, everything else as \xNN; at most QUOTE_MAX_INPUT input bytes. */
static void quote_input(char *dst, size_t dstsz, const char *s, size_t len)
{
    size_t o = 0, i, n = len < QUOTE_MAX_INPUT ? len : QUOTE_MAX_INPUT;

    /* Worst case 4 bytes per input byte, quotes, "..." and NUL: callers pass enough. */
    dst[o++] = '"';
    for (i = 0; i < n && o + 8 < dstsz; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            dst[o++] = (char)c;
        } else {
            o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", c);
        }
    }
    dst[o++] = '"';
    if (n < len) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

__attribute__((format(printf, 6, 7))) static void set_err(char *errstr, size_t errsz,
                                                          const char *kind, const char *s,
                                                          size_t len, const char *fmt, ...)
{
    char quoted[4 * QUOTE_MAX_INPUT + 16];
    char detail[128];
    va_list ap;

    if (!errstr || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!s) {
        snprintf(errstr, errsz, "%s: %s", kind, detail);
        return;
    }
    quote_input(quoted, sizeof(quoted), s, len);
    snprintf(errstr, errsz, "%s %s: %s", kind, quoted, detail);
}

/* ---- parsing ------------------------------------------------------------------------ */

struct dec_parts {
    int neg;
    const char *ip; /* significant integer digits (leading zeros skipped) */
    size_t ip_len;
    const char *fp; /* all fraction digits as written */
    size_t fp_len;
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Grammar: [+-] ( digits [ '.' digits? ] | '.' digits ). */
static enum money_err dec_scan(const char *s, size_t len, struct dec_parts *p)
{
    size_t i = 0, start, ndig;

    memset(p, 0, sizeof(*p));
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        p->neg = s[i] == '-';
        i++;
    }
    start = i;
    while (i < len && is_digit(s[i]))
        i++;
    ndig = i - start;
    while (start < i && s[start] == '0')
        start++;
    p->ip = s + start;
    p->ip_len = i - start;
    if (i < len && s[i] == '.') {
        i++;
        p->fp = s + i;
        while (i < len && is_digit(s[i]))
            i++;
        p->fp_len = (size_t)(s + i - p->fp);
    }
    if (i != len || ndig + p->fp_len == 0)
        return MONEY_ESYNTAX;
    return MONEY_OK;
}

/* True when the magnitude q must be bumped by one given the discarded part:
 * `first` is the first discarded digit (0..9), `sticky` whether anything non-zero
 * follows it. */
static int round_up(enum money_round mode, uint64_t q, int first, int sticky)
{
    if (mode == MONEY_ROUND_HALF_UP)
        return first >= 5;
    if (mode == MONEY_ROUND_HALF_EVEN)
        return first > 5 || (first == 5 && (sticky || (q & 1)));
    return 0;
}

/* Magnitude of p with `decimals` decimals, rounded with mode, at most max. */
static enum money_err dec_value(const struct dec_parts *p, int decimals, uint64_t max,
                                enum money_round mode, uint64_t *out, size_t *ndec)
{
    uint64_t ip = 0, v, frac = 0;
    size_t i, d = (size_t)decimals, sig = p->fp_len;
    int first = 0;
    int sticky = 0;

    for (i = 0; i < p->ip_len; i++) {
        uint64_t digit = (uint64_t)(p->ip[i] - '0');
        if (ip > (UINT64_MAX - digit) / 10)
            return MONEY_EOVERFLOW;
        ip = ip * 10 + digit;
    }
    if (ip > max / pow10_u64[d])
        return MONEY_EOVERFLOW;
    for (i = 0; i < d; i++)
        frac = frac * 10 + (uint64_t)(i < p->fp_len ? p->fp[i] - '0' : 0);
    v = ip * pow10_u64[d] + frac;
    if (v > max)
        return MONEY_EOVERFLOW;
    while (sig > 0 && p->fp[sig - 1] == '0')
        sig--;
    *ndec = sig;
    if (sig > d) {
        if (mode == MONEY_ROUND_NONE)
            return MONEY_EPRECISION;
        first = p->fp[d] - '0';
        sticky = sig > d + 1; /* fp[sig - 1] is a non-zero digit */
        if (round_up(mode, v, first, sticky) && ++v > max)
            return MONEY_EOVERFLOW;
    }
    *out = v;
    return MONEY_OK;
}

/* What a parse reads: its name in messages, its fixed decimals and its largest magnitude. */
struct money_kind {
    const char *name;
    int decimals;
    uint64_t max;
};

static const struct money_kind k_amount = {"amount", 2, MONEY_MAX_CENTS},
                               k_qty = {"quantity", MONEY_QTY_DECIMALS, MONEY_QTY_MAX},
                               k_price = {"unit price", MONEY_PRICE_DECIMALS, MONEY_PRICE_MAX};

static enum money_err parse_kind(const struct money_kind *k, const char *s, size_t len,
                                 enum money_round mode, int64_t *out, char *errstr, size_t errsz)
{
    const char *kind = k->name;
    int decimals = k->decimals;
    uint64_t max = k->max;
    struct dec_parts p;
    enum money_err err;
    uint64_t mag = 0;
    size_t ndec = 0;

    if (!s || !out || !mode_valid(mode)) {
        set_err(errstr, errsz, kind, NULL, 0, "%s", money_err_str(MONEY_EINVAL));
        return MONEY_EINVAL;
    }
    err = dec_scan(s, len, &p);
    if (err == MONEY_OK)
        err = dec_value(&p, decimals, max, mode, &mag, &ndec);
    switch (err) {
    case MONEY_OK:
        *out = p.neg ? -(int64_t)mag : (int64_t)mag;
        return MONEY_OK;
    case MONEY_ESYNTAX:
        set_err(errstr, errsz, kind, s, len,
                "not a plain decimal (optional sign, digits, optional '.' and digits)");
        break;
    case MONEY_EOVERFLOW:
        set_err(errstr, errsz, kind, s, len, "magnitude exceeds the maximum %llu units of 10^-%d",
                (unsigned long long)max, decimals);
        break;
    case MONEY_EPRECISION:
        set_err(errstr, errsz, kind, s, len, "%zu decimals, at most %d allowed%s", ndec, decimals,
                decimals == 2 ? " without a rounding mode" : "");
        break;
    default:
        set_err(errstr, errsz, kind, s, len, "%s", money_err_str(err));
        break;
    }
    return err;
}

enum money_err money_parsen(const char *s, size_t len, enum money_round mode, int64_t *cents,
                            char *errstr, size_t errsz)
{
    return parse_kind(&k_amount, s, len, mode, cents, errstr, errsz);
}

enum money_err money_parse(const char *s, enum money_round mode, int64_t *cents, char *errstr,
                           size_t errsz)
{
    return money_parsen(s, s ? strlen(s) : 0, mode, cents, errstr, errsz);
}

enum money_err money_qty_parsen(const char *s, size_t len, int64_t *qty, char *errstr, size_t errsz)
{
    return parse_kind(&k_qty, s, len, MONEY_ROUND_NONE, qty, errstr, errsz);
}

enum money_err money_qty_parse(const char *s, int64_t *qty, char *errstr, size_t errsz)
{
    return money_qty_parsen(s, s ? strlen(s) : 0, qty, errstr, errsz);
}

enum money_err money_price_parsen(const char *s, size_t len, int64_t *price, char *errstr,
                                  size_t errsz)
{
    return parse_kind(&k_price, s, len, MONEY_ROUND_NONE, price, errstr, errsz);
}

enum money_err money_price_parse(const char *s, int64_t *price, char *errstr, size_t errsz)
{
    return money_price_parsen(s, s ? strlen(s) : 0, price, errstr, errsz);
}

/* ---- formatting --------------------------------------------------------------------- */

/* v has `decimals` implied decimals; prints between min_dec and `decimals` of them,
 * trimming trailing zeros beyond min_dec. */
static enum money_err fmt_scaled(int64_t v, int decimals, int min_dec, char *buf, size_t size)
{
    char tmp[MONEY_FMT_SIZE];
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint64_t ip = mag / pow10_u64[decimals], fp = mag % pow10_u64[decimals];
    char frac[24];
    int n, nd = decimals;

    if (!buf)
        return MONEY_EINVAL;
    for (int i = decimals - 1; i >= 0; i--) {
        frac[i] = (char)('0' + fp % 10);
        fp /= 10;
    }
    while (nd > min_dec && frac[nd - 1] == '0')
        nd--;
    n = snprintf(tmp, sizeof(tmp), "%s%llu%s%.*s", v < 0 ? "-" : "", (unsigned long long)ip,
                 nd > 0 ? "." : "", nd, frac);
    if (n < 0 || (size_t)n >= size)
        return MONEY_ENOSPACE;
    memcpy(buf, tmp, (size_t)n + 1);
    return MONEY_OK;
}

enum money_err money_format(int64_t cents, char *buf, size_t size)
{
    return fmt_scaled(cents, 2, 2, buf, size);
}

enum money_err money_qty_format(int64_t qty, char *buf, size_t size)
{
    return fmt_scaled(qty, MONEY_QTY_DECIMALS, 0, buf, size);
}

enum money_err money_price_format(int64_t price, char *buf, size_t size)
{
    return fmt_scaled(price, MONEY_PRICE_DECIMALS, 2, buf, size);
}

/* ---- arithmetic --------------------------------------------------------------------- */

static int in_range(int64_t v, int64_t max)
{
    return v >= -max && v <= max;
}

static uint64_t mag64(int64_t v)
{
    return v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
}

enum money_err money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;

    if (!out)
        return MONEY_EINVAL;
    if (!in_range(a, MONEY_MAX_CENTS) || !in_range(b, MONEY_MAX_CENTS))
        return MONEY_EOVERFLOW;
    r = a + b; /* cannot overflow int64: |a|, |b| < 2^62 */
    if (!in_range(r, MONEY_MAX_CENTS))
        return MONEY_EOVERFLOW;
    *out = r;
    return MONEY_OK;
}

enum money_err money_sum(const int64_t *v, size_t n, int64_t *out)
{
    int64_t acc = 0;
    enum money_err err;

    if (!out || (!v && n > 0))
        return MONEY_EINVAL;
    for (size_t i = 0; i < n; i++) {
        err = money_add(acc, v[i], &acc);
        if (err != MONEY_OK)
            return err;
    }
    *out = acc;
    return MONEY_OK;
}

/* q = round(num / den) on magnitudes; false when mode is NONE and den does not divide. */
static int div_round(u128 num, u128 den, enum money_round mode, u128 *q)
{
    u128 quot = num / den, rem = num % den;

    if (rem != 0) {
        if (mode == MONEY_ROUND_NONE)
            return 0;
        if (mode == MONEY_ROUND_HALF_UP ? 2 * rem >= den
                                        : 2 * rem > den || (2 * rem == den && (quot & 1)))
            quot++;
    }
    *q = quot;
    return 1;
}

enum money_err money_mul(int64_t qty, int64_t price, enum money_round mode, int64_t *cents)
{
    u128 c;

    if (!cents || !mode_valid(mode) || !in_range(qty, MONEY_QTY_MAX) ||
        !in_range(price, MONEY_PRICE_MAX))
        return MONEY_EINVAL;
    if (!div_round((u128)mag64(qty) * mag64(price), PRODUCT_PER_CENT, mode, &c))
        return MONEY_EPRECISION;
    if (c > (u128)MONEY_MAX_CENTS)
        return MONEY_EOVERFLOW;
    *cents = ((qty < 0) != (price < 0)) ? -(int64_t)c : (int64_t)c;
    return MONEY_OK;
}

enum money_err money_percent(int64_t cents, int64_t pct7, enum money_round mode, int64_t *out)
{
    u128 c;

    if (!out || !mode_valid(mode) || !in_range(cents, MONEY_MAX_CENTS) ||
        !in_range(pct7, MONEY_QTY_MAX))
        return MONEY_EINVAL;
    if (!div_round((u128)mag64(cents) * mag64(pct7), (u128)100 * MONEY_QTY_SCALE, mode, &c))
        return MONEY_EPRECISION;
    if (c > (u128)MONEY_MAX_CENTS)
        return MONEY_EOVERFLOW;
    *out = ((cents < 0) != (pct7 < 0)) ? -(int64_t)c : (int64_t)c;
    return MONEY_OK;
}

int money_line_matches(int64_t qty, int64_t price, int64_t amount_cents, enum money_round mode)
{
    int64_t c;

    return money_mul(qty, price, mode, &c) == MONEY_OK && c == amount_cents;
}

enum money_err money_unit_price_for(int64_t qty, int64_t amount_cents, int max_decimals,
                                    int64_t *price)
{
    u128 q, target, step, k, best = 0, best_err = 0;
    int found = 0, overflow = 0;

    if (!price || max_decimals < 0 || max_decimals > MONEY_PRICE_DECIMALS ||
        !in_range(qty, MONEY_QTY_MAX) || !in_range(amount_cents, MONEY_MAX_CENTS))
        return MONEY_EINVAL;
    if (qty == 0) {
        if (amount_cents != 0)
            return MONEY_EINEXACT;
        *price = 0;
        return MONEY_OK;
    }
    q = mag64(qty);
    /* The ideal price in units of 10^-7 is target / q: qty7 * price7 / 10^12 = cents. */
    target = (u128)mag64(amount_cents) * PRODUCT_PER_CENT;

    /* Exact: the fewest decimals d for which target / q lands on the 10^-d grid. */
    for (int d = 0; d <= max_decimals && !found; d++) {
        step = pow10_u64[MONEY_PRICE_DECIMALS - d];
        if (target % (q * step) == 0) {
            best = target / q;
            found = 1;
        }
    }
    /* Otherwise the grid neighbours of target / q at max_decimals, nearest first. */
    if (!found) {
        step = pow10_u64[MONEY_PRICE_DECIMALS - max_decimals];
        k = target / (q * step);
        for (int i = 0; i < 2; i++) {
            u128 cand = (k + (u128)i) * step, prod = cand * q;
            u128 err = prod > target ? prod - target : target - prod;
            if (2 * err >= PRODUCT_PER_CENT || (found && err >= best_err))
                continue;
            if (cand > (u128)MONEY_PRICE_MAX) {
                overflow = 1;
                continue;
            }
            best = cand;
            best_err = err;
            found = 1;
        }
        if (!found)
            return overflow ? MONEY_EOVERFLOW : MONEY_EINEXACT;
    }
    if (best > (u128)MONEY_PRICE_MAX)
        return MONEY_EOVERFLOW;
    *price = ((qty < 0) != (amount_cents < 0)) ? -(int64_t)best : (int64_t)best;
    return MONEY_OK;
}
