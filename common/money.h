/* money.h - exact decimal money, quantities and unit prices as scaled int64.
 *
 * Owns: nothing global; every function is pure and reentrant (thread-safe).
 *
 * Three scaled-integer kinds, never mixed up by the caller:
 *   money     int64 cents                      |v| <= MONEY_MAX_CENTS
 *   quantity  int64 units of 10^-7 ("qty7")    |v| <= MONEY_QTY_MAX
 *   price     int64 units of 10^-7 ("price7")  |v| <= MONEY_PRICE_MAX
 * Invariant: every value this module produces is inside its range, so negation never
 * overflows and two money values can be added in plain int64 without UB (2 * max <
 * INT64_MAX); money_add() still checks that the result stays in range.
 *
 * Why these bounds: 10^17 - 1 cents (999,999,999,999,999.99) is far beyond any invoice,
 * symmetric, and leaves headroom in int64 for sums. Quantities and unit prices carry 7
 * decimals because QuickBooks Online stores Qty and UnitPrice with up to 7 decimals
 * (third-party reports; Intuit documents no number); 10^18 - 1 units of 10^-7 (just under
 * 10^11 whole units) keeps them in int64, and qty * price (< 10^36) fits in __int128.
 *
 * Accepted text (money_parse, money_qty_parse, money_price_parse), exactly:
 *     [+|-] digits [ "." [digits] ]   or   [+|-] "." digits
 * i.e. an optional sign, at least one digit, an optional '.', ASCII digits only. So "5",
 * "-0.50", "+1", "007.5", ".5" and "5." are accepted; "-0" is 0. Rejected as syntax:
 * empty, ".", "-", "--1", any whitespace (HubSpot sends clean strings; a space means
 * something upstream changed), exponents ("1e3"), "NaN"/"inf", hex, thousands or decimal
 * commas, embedded NUL bytes (use the *n variants to pass a length). Leading zeros and
 * trailing fractional zeros are unlimited and never cause overflow or precision errors:
 * "1.500" is 150 cents with no rounding mode because the dropped digits are all zero.
 * Errors are reported in this order: syntax, then overflow, then precision.
 *
 * QuickBooks rule 6070 ("Amount calculation incorrect"): a sales line's Amount must equal
 * Qty x UnitPrice. Intuit does not document the comparison. Third-party reports say QBO
 * rounds Qty x UnitPrice to 2 decimals, and one says it compares to 5 decimals and may
 * rewrite UnitPrice. So we only send pairs that pass under every plausible reading:
 * money_unit_price_for() prefers a price whose exact product IS the amount, and otherwise
 * takes one whose product is strictly within half a cent of it (so any round-to-nearest,
 * whatever its tie rule, gives the amount). When no such price exists (or it would
 * overflow), the caller sends Qty 1 and UnitPrice = Amount, which is always exact.
 * NEEDSWORK: confirm QBO's 6070 comparison against a real sandbox company.
 */
#ifndef HSQB_MONEY_H
#define HSQB_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_MAX_CENTS      99999999999999999LL /* 10^17 - 1 */
#define MONEY_QTY_DECIMALS   7
#define MONEY_QTY_SCALE      10000000LL           /* 10^7: 1 unit */
#define MONEY_QTY_MAX        999999999999999999LL /* 10^18 - 1 */
#define MONEY_PRICE_DECIMALS 7
#define MONEY_PRICE_SCALE    10000000LL /* 10^7: 1 currency unit */
#define MONEY_PRICE_MAX      999999999999999999LL

/* Buffer sizes large enough for any int64 in each format, including the NUL. */
#define MONEY_FMT_SIZE 32

enum money_err {
    MONEY_OK = 0,
    MONEY_EINVAL,     /* bad argument: NULL pointer, unknown mode, decimals out of range */
    MONEY_ESYNTAX,    /* text is not a plain decimal number (see grammar above) */
    MONEY_EPRECISION, /* more decimals than the kind allows, or an inexact product,
                         and rounding was not allowed */
    MONEY_EOVERFLOW,  /* magnitude beyond the kind's maximum (after rounding) */
    MONEY_ENOSPACE,   /* output buffer too small */
    MONEY_EINEXACT,   /* no unit price with the allowed decimals reproduces the amount */
};

/* Short English description of an error ("syntax error", ...); never NULL. */
const char *money_err_str(enum money_err err);

/* How extra decimals are rounded away. Rounding works on the magnitude, so it is
 * symmetric around zero: -0.125 is -12 (half_even) or -13 (half_up). */
enum money_round {
    MONEY_ROUND_NONE = 0,  /* extra non-zero decimals are MONEY_EPRECISION */
    MONEY_ROUND_HALF_EVEN, /* banker's rounding: ties go to the even neighbour */
    MONEY_ROUND_HALF_UP,   /* ties go away from zero (commercial rounding) */
};

/* Mode from a configuration name: "none", "half_even" or "bankers", "half_up"
 * (lower case, exact). name may be NULL (-> MONEY_EINVAL). *out set only on success. */
enum money_err money_round_parse(const char *name, enum money_round *out);
/* Canonical name of a mode ("none", "half_even", "half_up"), "?" when unknown. */
const char *money_round_name(enum money_round mode);

/* The parsers. s is borrowed and may be NULL (-> MONEY_EINVAL); the *n variants read
 * exactly len bytes (no NUL needed; a NUL inside is a syntax error). On MONEY_OK *out is
 * set; otherwise *out is untouched and errstr (may be NULL / errsz 0) gets a message
 * quoting at most the first 32 bytes of the input, non-printable bytes escaped. */

/* Money to cents. Beyond 2 decimals, mode decides: NONE accepts only zero digits. */
enum money_err money_parse(const char *s, enum money_round mode, int64_t *cents, char *errstr,
                           size_t errsz);
enum money_err money_parsen(const char *s, size_t len, enum money_round mode, int64_t *cents,
                            char *errstr, size_t errsz);
/* Quantity ("0.5", "2.25") to units of 10^-7. More than 7 non-zero decimals is
 * MONEY_EPRECISION (a quantity is never rounded). A sign is accepted; callers that
 * forbid negative quantities check the result. */
enum money_err money_qty_parse(const char *s, int64_t *qty, char *errstr, size_t errsz);
enum money_err money_qty_parsen(const char *s, size_t len, int64_t *qty, char *errstr,
                                size_t errsz);
/* Unit price ("33.333") to units of 10^-7, same rules as quantities. */
enum money_err money_price_parse(const char *s, int64_t *price, char *errstr, size_t errsz);
enum money_err money_price_parsen(const char *s, size_t len, int64_t *price, char *errstr,
                                  size_t errsz);

/* Formatters write a NUL-terminated decimal into buf (caller-owned, size bytes;
 * MONEY_FMT_SIZE always suffices) and accept any int64. Output re-parses to the same
 * value when the value is in range. buf NULL or too small -> MONEY_EINVAL /
 * MONEY_ENOSPACE, with buf untouched.
 *   money_format:       exactly 2 decimals: "0.00", "-0.50", "1234.56"
 *   money_qty_format:   trailing zeros trimmed, no '.' for whole numbers: "3", "0.5"
 *   money_price_format: at least 2 decimals, at most 7: "150.00", "33.333", "0.005" */
enum money_err money_format(int64_t cents, char *buf, size_t size);
enum money_err money_qty_format(int64_t qty, char *buf, size_t size);
enum money_err money_price_format(int64_t price, char *buf, size_t size);

/* *out = a + b; MONEY_EOVERFLOW if the result leaves [-MONEY_MAX_CENTS, MONEY_MAX_CENTS]
 * or an input is already outside it. out must not be NULL. */
enum money_err money_add(int64_t a, int64_t b, int64_t *out);
/* Sum of n values (v may be NULL when n == 0 -> 0); same overflow rule at every step. */
enum money_err money_sum(const int64_t *v, size_t n, int64_t *out);

/* Line amount in cents = qty x price, computed exactly in 128 bits and rounded once with
 * mode (NONE: a product that is not a whole number of cents is MONEY_EPRECISION).
 * Example: 0.5 x 0.01 = 0.005 -> 0 (half_even), 1 (half_up). Inputs out of their range
 * are MONEY_EINVAL; a result beyond MONEY_MAX_CENTS is MONEY_EOVERFLOW. */
enum money_err money_mul(int64_t qty, int64_t price, enum money_round mode, int64_t *cents);

/* pct percent of cents: cents x pct7 / 100, pct7 a rate in units of 10^-7 percent (parse
 * "7.25" with money_qty_parse(): 72500000), computed exactly in 128 bits and rounded once
 * with mode. Examples: 10% of 0.05 = 0.005 -> 0.01 (half_up), 0.00 (half_even); -10% of
 * 0.15 = -0.015 -> -0.02 (half_up). Signs multiply. Inputs out of their range are
 * MONEY_EINVAL; a result beyond MONEY_MAX_CENTS is MONEY_EOVERFLOW. The quote pricing
 * (discounts, fees, taxes in percent) and line taxes use it. */
enum money_err money_percent(int64_t cents, int64_t pct7, enum money_round mode, int64_t *out);

/* True when qty x price, rounded to cents with mode, equals amount_cents (with NONE: the
 * exact product equals it). False on any out-of-range input. */
int money_line_matches(int64_t qty, int64_t price, int64_t amount_cents, enum money_round mode);

/* A unit price with at most max_decimals (0..MONEY_PRICE_DECIMALS) decimals such that
 * qty x price reproduces amount_cents (see the 6070 note at the top): the price with the
 * fewest decimals whose product is exactly the amount; else the price nearest to
 * amount / qty at max_decimals, if its product is strictly within half a cent. qty == 0
 * works only for amount 0 (price 0). Errors: MONEY_EINEXACT (no such price; use Qty 1,
 * UnitPrice = amount), MONEY_EOVERFLOW (price beyond MONEY_PRICE_MAX, same fallback),
 * MONEY_EINVAL (bad arguments). *price (units of 10^-7) set only on MONEY_OK. */
enum money_err money_unit_price_for(int64_t qty, int64_t amount_cents, int max_decimals,
                                    int64_t *price);

#endif /* HSQB_MONEY_H */
