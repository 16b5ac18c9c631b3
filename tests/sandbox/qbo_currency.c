/* qbo_currency.c - currencies of a QBO company: which CurrencyRef a customer, vendor or
 * transaction may carry, the exchange rate a transaction records, and its amounts in the
 * home currency.
 *
 * The model (README "Currencies"): a company has a home currency (Preferences.CurrencyPrefs
 * .HomeCurrency) and, only when MultiCurrencyEnabled, the foreign currencies of its list -
 * here the keys of the sandbox-only seed key `exchange_rates`. A customer or vendor is tied
 * to one currency for life (Intuit: "only one currency can be assigned to a given name list
 * object"); a transaction is in its party's currency. Faults are 400/6000 with element
 * CurrencyRef; their wording is ours (no capture of the real text exists).
 *
 * With multicurrency every transaction records ExchangeRate (home units per foreign unit,
 * 1 for the home currency): the request's, else the seeded rate (or 1 with the option
 * exchange_rate_default "one", as field reports describe the real service), and sales
 * documents get HomeTotalAmt (invoices also HomeBalance) = amount x rate, rounded half
 * away from zero to the cent on exact decimals. Runs under qbo.c's lock.
 */
#include "tests/sandbox/qbo_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QBO_XRATE_MAX 1000000 /* an ExchangeRate above this is refused (2010) */

static const char *const currency_names[][2] = {
    {"USD", "United States Dollar"},
    {"CAD", "Canadian Dollar"},
    {"GBP", "British Pound Sterling"},
    {"EUR", "Euro"},
    {"AUD", "Australian Dollar"},
    {"JPY", "Japanese Yen"},
    {"CHF", "Swiss Franc"},
    {"MXN", "Mexican Peso"},
    {"INR", "Indian Rupee"},
};

const char *qbo_home_currency(const struct realm *r)
{
    const char *cur = jstr(jobj(jobj(r->prefs, "CurrencyPrefs"), "HomeCurrency"), "value");
    return cur ? cur : "USD";
}

int qbo_multicurrency(const struct realm *r)
{
    return jbool(jobj(r->prefs, "CurrencyPrefs"), "MultiCurrencyEnabled", 0);
}

static struct json_object *currency_ref_of(const char *code)
{
    for (size_t i = 0; i < sizeof(currency_names) / sizeof(currency_names[0]); i++)
        if (strcmp(currency_names[i][0], code) == 0)
            return ref_new(code, currency_names[i][1]);
    return ref_new(code, NULL);
}

struct json_object *qbo_currency_ref(const struct realm *r)
{
    return currency_ref_of(qbo_home_currency(r));
}

/* The CurrencyRef member of the entity being built into code (empty when absent or null);
 * a malformed one (not {"value": three capital letters}) is 2010. */
static int currency_member(struct wctx *w, char code[4])
{
    struct json_object *v;
    const char *s;

    code[0] = 0;
    if (!json_object_object_get_ex(w->ent, "CurrencyRef", &v) ||
        json_object_is_type(v, json_type_null))
        return 0;
    if (!(s = jstr(v, "value")) || strlen(s) != 3)
        return qbo_invalid_prop(w, "CurrencyRef");
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return qbo_invalid_prop(w, "CurrencyRef");
    memcpy(code, s, 4);
    return 0;
}

static int currency_fault(struct wctx *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int currency_fault(struct wctx *w, const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return qbo_business(w, "CurrencyRef", detail);
}

/* code is the home currency, or a listed one of a multicurrency company. */
static int currency_usable(struct wctx *w, const char *code)
{
    const char *home = qbo_home_currency(w->r);
    if (strcmp(code, home) == 0)
        return 0;
    if (!qbo_multicurrency(w->r))
        return currency_fault(w,
                              "Multicurrency is not enabled for this company: the currency %s "
                              "differs from the home currency %s.",
                              code, home);
    if (!json_object_object_get_ex(w->r->xrates, code, NULL))
        return currency_fault(w, "The currency %s is not in this company's currency list.", code);
    return 0;
}

int qbo_party_currency(struct wctx *w)
{
    char code[4], was[4] = "";
    const char *old = w->old ? ref_value(w->old, "CurrencyRef") : NULL;

    if (currency_member(w, code) < 0)
        return -1;
    if (old)
        snprintf(was, sizeof(was), "%s", old);
    if (!*code)
        snprintf(code, sizeof(code), "%s", *was ? was : qbo_home_currency(w->r));
    if (*was && strcmp(code, was) != 0)
        return currency_fault(w, "The currency of a name cannot be changed once set (%s to %s).",
                              was, code);
    if (currency_usable(w, code) < 0)
        return -1;
    json_object_object_add(w->ent, "CurrencyRef", currency_ref_of(code));
    return 0;
}

/* The rate a foreign-currency transaction records: the request's, else the seeded one. */
static int exchange_rate(struct wctx *w, const char *code, struct qbo_dec *rate)
{
    struct qbo_dec max = {QBO_XRATE_MAX, 0}, zero = {0, 0};
    const char *seeded = jstr(w->r->xrates, code);
    int got = qbo_get_dec(w, w->ent, "ExchangeRate", rate);

    if (got < 0)
        return -1;
    if (got && (qbo_dec_cmp(*rate, zero) <= 0 || qbo_dec_cmp(*rate, max) > 0))
        return qbo_invalid_prop(w, "ExchangeRate");
    if (!got && (g_qbo_opts.xrate_one || !seeded || qbo_dec_parse(seeded, rate) < 0))
        *rate = (struct qbo_dec){1, 0};
    return 0;
}

int qbo_txn_currency(struct wctx *w, struct json_object *party, enum kind pk)
{
    const char *home = qbo_home_currency(w->r), *pc = NULL, *old;
    char code[4];
    struct qbo_dec rate = {1, 0};

    if (party)
        pc = ref_value(party, "CurrencyRef") ? ref_value(party, "CurrencyRef") : home;
    if (currency_member(w, code) < 0)
        return -1;
    if (!*code) {
        old = w->old ? ref_value(w->old, "CurrencyRef") : NULL;
        snprintf(code, sizeof(code), "%s", old ? old : pc ? pc : home);
    }
    if (currency_usable(w, code) < 0)
        return -1;
    if (pc && strcmp(code, pc) != 0) {
        const char *who = pk == K_VENDOR ? "vendor" : pk == K_EMPLOYEE ? "employee" : "customer";
        return currency_fault(w,
                              "The currency of the transaction must match the %s's currency "
                              "(transaction %s, %s %s).",
                              who, code, who, pc);
    }
    json_object_object_add(w->ent, "CurrencyRef", currency_ref_of(code));
    if (!qbo_multicurrency(w->r))
        return 0;
    if (strcmp(code, home) != 0 && exchange_rate(w, code, &rate) < 0)
        return -1;
    json_object_object_add(w->ent, "ExchangeRate", qbo_dec_json(rate));
    return 0;
}

int qbo_home_amount(const struct realm *r, struct json_object *e, const char *src, const char *dst)
{
    struct json_object *v;
    struct qbo_dec rate = {1, 0}, home;
    int64_t c = cents_of(e, src);

    if (!qbo_multicurrency(r))
        return 0;
    if (json_object_object_get_ex(e, "ExchangeRate", &v) && qbo_dec_from_json(v, &rate) < 0)
        rate = (struct qbo_dec){1, 0};
    if (qbo_dec_mul_round((struct qbo_dec){c, 2}, rate, 2, &home) < 0 || home.v > QBO_CENTS_MAX ||
        home.v < -QBO_CENTS_MAX)
        return -1;
    set_money(e, dst, home.v);
    return 0;
}
