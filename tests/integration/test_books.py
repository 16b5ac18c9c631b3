"""Books that match HubSpot to the cent (issue 15): the acceptance test.

Several hundred generated deals, quotes and payments (random line counts, quantities,
prices, line discounts, taxable lines, quote discounts/fees/taxes, currencies) are seeded
into the sandbox's HubSpot, booked by two worker replicas into three QuickBooks
companies, and checked from the outside:

  US1   manual sales tax, USD only
  AST1  Automated Sales Tax (QBO would compute its own tax unless told the amount), USD only
  MC1   multicurrency (home USD, EUR and GBP) with Automated Sales Tax

Every expected figure is computed here, independently of the worker, with `decimal`
(the money rules of spec15.md: percentages rounded half up to the cent, one at a time;
quote = discounts of the line subtotal, then fees of what is left, then taxes of that,
plus the line items' own taxes). Before anything is produced those figures are compared
with HubSpot's own (the sandbox's deal `amount`, `hs_quote_amount`, line `hs_tax_amount`).
After all results are in, QuickBooks is read through its query API with the realm's
bearer token, as a client would:

- every succeeded document's TotalAmt is HubSpot's amount to the cent (deal: line amounts
  plus line taxes; quote: hs_quote_amount; payment: the amount), and so is the result's
  total; its lines (Qty x UnitPrice = Amount), discount line, fee lines,
  TxnTaxDetail.TotalTax, CurrencyRef and addresses are HubSpot's (and, on US1, where QBO
  keeps the tax codes sent, each line's TaxCodeRef); its customer is the contact's, in the
  document's currency; a paid invoice has Balance 0 and one Payment linked to it;
- every refusal has its code (QUOTE_TOTAL_MISMATCH, QUOTE_STATUS_NOT_ALLOWED,
  CURRENCY_NOT_SUPPORTED, TAXABLE_ITEMS_NOT_ALLOWED, HUBSPOT_VALIDATION) and a dead letter,
  and happened before any write: no document names its event, and no QBO write in the
  sandbox's request log mentions its event, its (own) contact or its (own) product;
- nothing is duplicated: one document per event, one customer per contact, realm and
  currency, no QBO document that no event explains, results that agree.

Every mismatch is collected and reported together at the end, with the event, the
expected and actual figures and the worker's error, so one run shows all of them.

The random seed is printed; HSQB_BOOKS_SEED overrides it, HSQB_BOOKS_CASES the number of
cases (default 240). Runs on the session stack (conftest.py) with two replicas whose
HubSpot/QBO rate limits are raised, as the sandbox's are, so the run takes seconds.
"""
import collections
import json
import os
import random
import time
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest

import harness
from harness import AST1, MC1, PORTAL1, US1, cents

SEED = int(os.environ.get("HSQB_BOOKS_SEED", "1515"))
N_CASES = int(os.environ.get("HSQB_BOOKS_CASES", "240"))
REALMS = (US1, AST1, MC1)
REALM_NAME = {US1: "US1", AST1: "AST1", MC1: "MC1"}

FAST = {
    "HSQB_HUBSPOT_RATE_LIMIT_PER_10S": "1000",
    "HSQB_QBO_RATE_LIMIT_PER_MIN": "10000",
}
SANDBOX_CONFIG = {
    "hubspot_rate_10s": 0, "qbo_rate_min": 0, "qbo_concurrent": 0,
    # keep every request of the run, with whole bodies: the "before any write" evidence
    "log_entries": 200000, "log_body_max": 262144,
}

# ---- id ranges (none used by the seed files or other tests) ------------------------------
CONTACT0, COMPANY0 = 640000, 641000
OBJECT0 = {"DEAL": 642000, "QUOTE": 643000, "COMMERCE_PAYMENT": 644000}
LINE0, DISCOUNT0, FEE0, TAX0 = 650000, 660000, 661000, 662000
KIND_KEY = {"DEAL": "deals", "QUOTE": "quotes", "COMMERCE_PAYMENT": "commerce_payments"}
TERM_KEY = {"discount": "discounts", "fee": "fees", "tax": "taxes"}
ENTITY = {"create_invoice": "Invoice", "create_estimate": "Estimate",
          "create_sales_receipt": "SalesReceipt", "create_paid_invoice": "Invoice"}
DOC_KINDS = ("Invoice", "Estimate", "SalesReceipt", "Payment")
ALLOWED_STATUSES = ("APPROVAL_NOT_NEEDED", "APPROVED", "ACCEPTED")
REFUSED_STATUSES = ("DRAFT", "PENDING_APPROVAL", "REJECTED")

# ---- realm facts, read from the seed so they cannot drift ---------------------------------


def _realm_facts():
    out = {}
    for r in harness._QBO["qbo"]["realms"]:
        prefs = r.get("Preferences", {})
        cur = prefs.get("CurrencyPrefs", {})
        out[r["realm_id"]] = {
            "home": cur.get("HomeCurrency", {}).get("value", "USD"),
            "multicurrency": bool(cur.get("MultiCurrencyEnabled")),
            "sales_tax": bool(prefs.get("TaxPrefs", {}).get("UsingSalesTax")),
            "ast": bool(prefs.get("TaxPrefs", {}).get("PartnerTaxEnabled")),
            "currencies": set(r.get("exchange_rates", {})),
        }
    return out


REALM = _realm_facts()

# HubSpot tax rate groups: the seed's and ours (seeded by this test).
OUR_TAX_RATES = {"6901": "6.5", "6902": "8.875", "6903": "7.25", "6904": "4.712", "6905": "10"}
TAX_GROUPS = dict(OUR_TAX_RATES)
for _p in harness._HS["portals"]:
    if _p["portalId"] == PORTAL1:
        for _t in _p.get("tax_rates", []):
            TAX_GROUPS[str(_t["id"])] = str(_t["percentageRate"])

# Products: three exist in every realm (by SKU, by SKU, by name), the rest are created by
# the worker on first use (create_missing_products = true).
PRODUCTS = [("Consulting hour", "CONS-HR"), ("Widget", "WID-001"), ("Hours", None),
            ("Gizmo Pro", "GIZ-PRO"), ("Support plan", None), ("Onboarding workshop", "ONB-1"),
            ("Travel expenses", None), ("Licence seat", "LIC-SEAT")]
FEE_ITEM = "Fees"  # quotes.fee_item default
# Rates that put some bases exactly on a half cent (x.xx5), where rounding shows.
HALF_CENT_RATES = ["10", "30", "50", "12.5", "2.5", "7.5", "0.5", "1.5", "5", "15", "25"]

FIRST = ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances",
         "Radia", "Hedy", "Margaret", "Claude", "Sophie", "Niklaus", "Annie", "Seán", "Zoë"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen",
        "Perlman", "Lamarr", "Hamilton", "Shannon", "Wilson", "Wirth", "Easley", "O'Brien"]
PLACES = [("CA", "San Francisco", "94105"), ("NY", "New York", "10001"),
          ("TX", "Austin", "78701"), ("WA", "Seattle", "98101"), ("OR", "Portland", "97201"),
          ("FL", "Miami", "33101")]

# ---- money, exactly ------------------------------------------------------------------------


def fmt(c):
    """int cents -> HubSpot's decimal text."""
    return "%s%d.%02d" % ("-" if c < 0 else "", abs(c) // 100, abs(c) % 100)


def to_cents(d):
    """A Decimal amount -> int cents, half up (away from zero for positive amounts)."""
    return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def pct_of(base_cents, pct):
    """base x pct / 100, rounded once, half up, to the cent (spec15 'Money rules')."""
    return int((Decimal(base_cents) * Decimal(pct) / 100).quantize(Decimal(1),
                                                                    rounding=ROUND_HALF_UP))


# ---- generation ----------------------------------------------------------------------------


class Gen:
    """All HubSpot records of the run and the cases over them."""

    def __init__(self, seed, n):
        self.rng = random.Random(seed)
        self.n = n
        self.contacts, self.companies = [], []
        self.objects = collections.defaultdict(list)  # seed key -> records
        self.cases = []
        self._line = LINE0
        self._term = {"discount": DISCOUNT0, "fee": FEE0, "tax": TAX0}
        self.half_cents = 0  # percentages whose exact result was a half cent
        self.company_addr = {}

    # -- people --
    def contact(self, k):
        rng = self.rng
        first, last = rng.choice(FIRST), "%s-%d" % (rng.choice(LAST), k)
        state, city, zip_ = rng.choice(PLACES)
        cid = str(CONTACT0 + k)
        email = "%s.%s@books.example" % (
            first.encode("ascii", "ignore").decode().lower(),
            last.encode("ascii", "ignore").decode().lower().replace("'", ""))
        self.contacts.append({"id": cid, "properties": {
            "firstname": first, "lastname": last, "email": email,
            "address": "%d Market St" % (100 + k), "city": city, "state": state, "zip": zip_,
            "country": "United States", "company": "Books %d Inc" % k}})
        return {"id": cid, "email": email, "first": first, "last": last,
                "addr": (city, state, zip_)}

    def company(self, k):
        state, city, zip_ = self.rng.choice(PLACES)
        cid = str(COMPANY0 + k)
        self.companies.append({"id": cid, "properties": {
            "name": "Books Company %d" % k, "address": "%d Harbor Rd" % (10 + k), "city": city,
            "state": state, "zip": zip_, "country": "United States"}})
        self.company_addr[cid] = (city, state, zip_)
        return cid

    # -- lines --
    def qty(self):
        rng, r = self.rng, self.rng.random()
        if r < 0.55:
            return str(rng.randint(1, 12))
        if r < 0.85:
            return rng.choice(["0.5", "0.25", "1.5", "2.75", "0.125", "3.333", "1.2", "7.5",
                               "0.1", "12.25"])
        return "%d.%02d" % (rng.randint(0, 9), rng.randint(1, 99))

    def price(self):
        rng = self.rng
        c = int(10 ** rng.uniform(0, 5.7))  # 0.01 .. ~5000.00
        if rng.random() < 0.1:  # a price with a third decimal, as HubSpot allows
            return "%d.%02d%d" % (c // 100, c % 100, rng.randint(1, 9))
        return fmt(c)

    def line(self, currency, cur_on_line=True, taxable=False, product=None):
        """One line item: HubSpot's amount (after its discount) given explicitly, and its
        tax the way HubSpot would have it. Returns the line's spec."""
        rng = self.rng
        self._line += 1
        name, sku = product or rng.choice(PRODUCTS)
        qty, price = self.qty(), self.price()
        q, p = Decimal(qty), Decimal(price)
        gross = to_cents(q * p)
        props = {"name": name, "quantity": qty, "price": price}
        if sku:
            props["hs_sku"] = sku
        r = rng.random()
        if r < 0.15:  # a fixed discount per unit
            d = Decimal(fmt(rng.randint(1, max(1, int(p * 50)))))
            amount = to_cents(q * (p - d))
            props["discount"] = str(d)
        elif r < 0.30:  # a percentage discount
            pct = rng.choice(["5", "10", "12.5", "15", "20", "33.33"])
            amount = to_cents(q * p * (100 - Decimal(pct)) / 100)
            props["hs_discount_percentage"] = pct
        else:
            amount = gross
        if amount != gross:
            props["hs_total_discount"] = fmt(gross - amount)
        props["amount"] = fmt(amount)
        if cur_on_line:
            props["hs_line_item_currency_code"] = currency
        tax, mode = 0, None
        if taxable:
            gid = rng.choice(sorted(TAX_GROUPS))
            props["hs_tax_rate_group_id"] = gid
            mode = rng.choice(["group", "rate", "amount", "both"])
            if mode == "group":  # HubSpot fills the rate and the amount from the group
                tax = pct_of(amount, TAX_GROUPS[gid])
            elif mode == "rate":  # a rate on the line (may differ from the group's)
                rate = self.percent(amount, ["5", "6.5", "7.25", "8.875", "10", "12.5", "2.5",
                                             "0.5", "4.712"])
                props["hs_tax_rate"] = rate
                tax = pct_of(amount, rate)
            else:  # HubSpot's own amount, whatever rounding made it (it wins over a rate)
                rate = Decimal(rng.choice(["6.25", "8.875", "9.5", "7.75"]))
                tax = int((Decimal(amount) * rate / 100).quantize(Decimal(1), ROUND_DOWN))
                props["hs_tax_amount"] = fmt(tax)
                if mode == "both":
                    props["hs_tax_rate"] = str(rate + 1)
        elif rng.random() < 0.05:  # a rate without a tax rate group taxes nothing
            props["hs_tax_rate"] = "8.25"
            mode = "rate without group"
        rec = {"id": str(self._line), "properties": props}
        self.objects["line_items"].append(rec)
        return {"id": rec["id"], "name": name, "sku": sku, "qty": qty, "amount": amount,
                "tax": tax, "taxable": taxable, "tax_mode": mode}

    # -- quote pricing objects --
    def term(self, kind, typ, value, sort=None):
        self._term[kind] += 1
        props = {"hs_label": "%s %s %s" % (kind, typ.lower(), value), "hs_type": typ,
                 "hs_value": value}
        if kind == "discount":
            props["hs_duration"] = "ONCE"
            if sort is not None:
                props["hs_sort_order"] = str(sort)
        rec = {"id": str(self._term[kind]), "properties": props}
        self.objects[TERM_KEY[kind]].append(rec)
        return {"kind": kind, "id": rec["id"], "type": typ, "value": value}

    def percent(self, base, choices):
        """A percentage for base: half the time, when one exists, one whose exact result
        falls on a half cent (where rounding shows), else any of choices."""
        halves = [v for v in HALF_CENT_RATES if (Decimal(base) * Decimal(v) / 100) % 1 == 0.5]
        if halves and self.rng.random() < 0.5:
            return self.rng.choice(halves)
        return self.rng.choice(choices)

    def quote_pricing(self, S):
        """The quote's discounts, fees and taxes, priced as HubSpot does, in order:
        [(kind, hs_type, hs_value, hs_sort_order, cents)], D, fees, T."""
        rng, terms = self.rng, []
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            if rng.random() < 0.6:
                v = self.percent(S, ["5", "10", "12.5", "7.25", "2.5", "15", "33.333", "0.5",
                                     "17.5"])
                terms.append(("discount", "PERCENT", v, pct_of(S, v)))
            else:
                v = fmt(rng.randint(1, max(1, S // 5)))
                terms.append(("discount", "FIXED", v, cents(v)))
        D = sum(t[3] for t in terms)
        if D > S:  # HubSpot would not let discounts exceed the line items
            terms, D = [], 0
        A = S - D
        for _ in range(rng.choice([0, 0, 1, 2])):
            if rng.random() < 0.5:
                v = self.percent(A, ["3", "2.9", "1.5", "2.5", "0.75"])
                terms.append(("fee", "PERCENT", v, pct_of(A, v)))
            else:
                v = fmt(rng.randint(100, 5000))
                terms.append(("fee", "FIXED", v, cents(v)))
        fees = [t[3] for t in terms if t[0] == "fee"]
        B = A + sum(fees)
        for _ in range(rng.choice([0, 0, 1, 2])):
            if rng.random() < 0.6:
                v = self.percent(B, ["8.875", "6.25", "19", "20", "1.5", "7.5", "5.5"])
                terms.append(("tax", "PERCENT", v, pct_of(B, v)))
            else:
                v = fmt(rng.randint(50, 4000))
                terms.append(("tax", "FIXED", v, cents(v)))
        T = sum(t[3] for t in terms if t[0] == "tax")
        self.half_cents += sum(1 for k, typ, v, _ in terms if typ == "PERCENT" and (
            Decimal({"discount": S, "fee": A, "tax": B}[k]) * Decimal(v) / 100) % 1 == 0.5)
        return terms, D, fees, T

    # -- cases --
    def build(self):
        rng = self.rng
        pool = [self.contact(k) for k in range(36)]
        companies = [self.company(k) for k in range(6)]
        combos = [(realm, kind, action) for realm in REALMS
                  for kind, actions in (("DEAL", ("create_invoice", "create_estimate",
                                                  "create_sales_receipt")),
                                        ("QUOTE", ("create_invoice", "create_estimate",
                                                   "create_sales_receipt")),
                                        ("COMMERCE_PAYMENT", ("create_sales_receipt",
                                                              "create_paid_invoice")))
                  for action in actions]
        n_refusals = max(12, self.n // 6)
        refusals = (["QUOTE_TOTAL_MISMATCH", "QUOTE_STATUS_NOT_ALLOWED",
                     "CURRENCY_NOT_SUPPORTED", "TAXABLE_ITEMS_NOT_ALLOWED",
                     "HUBSPOT_VALIDATION", "CURRENCY_NOT_SUPPORTED"] * self.n)[:n_refusals]
        plan = [("ok", combos[i % len(combos)]) for i in range(self.n - n_refusals)]
        plan += [(code, None) for code in refusals]
        rng.shuffle(plan)
        for i, (what, combo) in enumerate(plan):
            if what == "ok":
                self.cases.append(self.ok_case(i, combo, pool, companies))
            else:
                self.cases.append(self.refusal_case(i, what, companies))
        return self.cases

    def ok_case(self, i, combo, pool, companies):
        realm, kind, action = combo
        rng = self.rng
        currency = REALM[realm]["home"]
        if REALM[realm]["multicurrency"] and rng.random() < 0.6:
            currency = rng.choice(sorted(REALM[realm]["currencies"]))
        return self.case(i, kind, action, realm, currency, rng.choice(pool), companies)

    def refusal_case(self, i, code, companies):
        rng = self.rng
        own = self.contact(100 + i)  # nobody else's: a customer for it would be a write
        # a product of its own (fixed width: no probe name is another's prefix)
        probe = ("Probe %d-%05d" % (SEED, i), "PRB-%d-%05d" % (SEED, i))
        if code == "QUOTE_TOTAL_MISMATCH":
            return self.case(i, "QUOTE", rng.choice(list(ENTITY)[:3]), rng.choice(REALMS),
                             "USD", own, companies, probe=probe, skew=rng.choice([-1, 1]))
        if code == "QUOTE_STATUS_NOT_ALLOWED":
            return self.case(i, "QUOTE", rng.choice(list(ENTITY)[:3]), rng.choice(REALMS),
                             "USD", own, companies, probe=probe,
                             status=rng.choice(REFUSED_STATUSES))
        if code == "CURRENCY_NOT_SUPPORTED":
            kind = rng.choice(["DEAL", "QUOTE", "COMMERCE_PAYMENT"])
            action = rng.choice(["create_sales_receipt", "create_paid_invoice"]
                                if kind == "COMMERCE_PAYMENT" else list(ENTITY)[:3])
            realm = rng.choice([r for r in REALMS if not REALM[r]["multicurrency"]])
            return self.case(i, kind, action, realm, rng.choice(["EUR", "GBP"]), own,
                             companies, probe=probe)
        if code == "TAXABLE_ITEMS_NOT_ALLOWED":
            return self.case(i, "COMMERCE_PAYMENT", "create_paid_invoice", rng.choice(REALMS),
                             "USD", own, companies, probe=probe, force_taxable=True)
        if code == "HUBSPOT_VALIDATION":  # the payment is a cent off its line items
            return self.case(i, "COMMERCE_PAYMENT",
                             rng.choice(["create_sales_receipt", "create_paid_invoice"]),
                             rng.choice(REALMS), "USD", own, companies, probe=probe,
                             skew=rng.choice([-1, 1]))
        raise AssertionError(code)

    def case(self, i, kind, action, realm, currency, contact, companies, probe=None,
             skew=0, status=None, force_taxable=False):
        rng = self.rng
        oid = OBJECT0[kind] + i
        paid = action == "create_paid_invoice"
        # Where HubSpot names the currency: on the object (and the lines), or only on the
        # lines (the worker takes theirs), or nowhere (the home currency).
        where = rng.choices(["object", "lines", "none"], [0.8, 0.12, 0.08])[0]
        if currency != REALM[realm]["home"] and where == "none":
            where = "lines"

        def on_line():  # does this line item carry hs_line_item_currency_code?
            return where == "lines" or (where == "object" and rng.random() < 0.8)
        lines = [self.line(currency, on_line(), not paid and rng.random() < 0.35)
                 for _ in range(rng.randint(1, 8))]
        if force_taxable:
            lines.append(self.line(currency, on_line(), True))
        if probe:
            lines.append(self.line(currency, on_line(), False, product=probe))
        props, assoc = {}, {"contacts": [contact["id"]], "line_items": [l["id"] for l in lines]}
        S = sum(l["amount"] for l in lines)
        L = sum(l["tax"] for l in lines)
        c = {"i": i, "kind": kind, "oid": oid, "action": action, "realm": realm,
             "currency": currency if where != "none" else REALM[realm]["home"],
             "contact": contact, "lines": lines, "S": S, "L": L, "D": 0, "fees": [], "T": 0,
             "probe": probe, "status": status, "skew": skew, "T_terms": False, "ship": None}
        if rng.random() < 0.3 and kind != "COMMERCE_PAYMENT":
            co = rng.choice(companies)
            assoc["companies"] = [{"id": co, "primary": True}]
            c["ship"] = self.company_addr[co]
        if kind == "DEAL":
            props = {"dealname": "Books deal %d" % i, "pipeline": "default",
                     "dealstage": "closedwon"}
            if where == "object":
                props["deal_currency_code"] = currency
            c["hubspot_total"] = S + L
        elif kind == "QUOTE":
            c["status"] = status or rng.choice(ALLOWED_STATUSES)
            props = {"hs_title": "Books quote %d" % i, "hs_status": c["status"],
                     "hs_expiration_date": "2027-%02d-%02dT00:00:00.000Z" % (
                         rng.randint(1, 12), rng.randint(1, 28)),
                     "hs_quote_number": "Q-BK-%d" % i}
            if where == "object":
                props["hs_currency"] = currency
            terms, D, fees, T = self.quote_pricing(S)
            B = S - D + sum(fees)
            recs = [self.term(k, t, v, rng.choice([None, 0, 1, 2, 3, 5]) if k == "discount"
                              else None) for k, t, v, _ in terms]
            for k in ("discount", "fee", "tax"):
                ids = [r["id"] for r in recs if r["kind"] == k]
                if ids:
                    assoc[TERM_KEY[k]] = ids
            c.update(D=D, fees=fees, T=T, terms=recs, T_terms=any(t[0] == "tax" for t in terms),
                     expiration=props["hs_expiration_date"][:10])
            c["hubspot_total"] = B + T + L
            if skew:  # HubSpot's own figure disagrees with its components by a cent
                props["hs_quote_amount"] = fmt(B + T + L + skew)
                c["hubspot_total"] = B + T + L + skew
            c["computed_total"] = B + T + L
        else:
            total = S if paid else S + L
            props = {"hs_initial_amount": fmt(total + skew), "hs_latest_status": "succeeded",
                     "hs_initiated_date": "2026-%02d-%02dT%02d:30:00.000Z" % (
                         rng.randint(1, 11), rng.randint(1, 28), rng.randint(0, 23)),
                     "hs_payment_method_type": rng.choice(["card", "ach", "cash", "check"]),
                     "hs_reference_number": "BK-%d-%d" % (SEED, i),
                     "hs_fees_amount": "0.00", "hs_refunds_amount": "0.00"}
            if where == "object":
                props["hs_currency_code"] = currency
            c["hubspot_total"] = total + skew
        self.objects[KIND_KEY[kind]].append({"id": str(oid), "properties": props,
                                              "associations": assoc})
        c["expect"] = expectation(c)
        return c


def expectation(c):
    """What the worker must do with case c: {"code": ...} or the document's figures.
    The order of the refusals is the order of the checks (none writes anything)."""
    realm, paid = REALM[c["realm"]], c["action"] == "create_paid_invoice"
    lines = c["lines"]
    if c["kind"] == "QUOTE" and c["status"] not in ALLOWED_STATUSES:
        return {"code": "QUOTE_STATUS_NOT_ALLOWED"}
    if c["kind"] == "COMMERCE_PAYMENT":
        if paid and any(l["taxable"] for l in lines):
            return {"code": "TAXABLE_ITEMS_NOT_ALLOWED"}
        if c["skew"]:
            return {"code": "HUBSPOT_VALIDATION"}
    if c["kind"] == "QUOTE" and c["skew"]:
        return {"code": "QUOTE_TOTAL_MISMATCH"}
    if c["currency"] != realm["home"] and not realm["multicurrency"]:
        return {"code": "CURRENCY_NOT_SUPPORTED"}
    tax = 0 if paid else c["L"] + c["T"]
    total = c["S"] - c["D"] + sum(c["fees"]) + tax
    assert total == c["hubspot_total"], c  # the oracle agrees with itself
    return {"entity": ENTITY[c["action"]], "total": total, "tax": tax, "discount": c["D"],
            "sales_lines": sorted([l["amount"] for l in lines] + c["fees"]),
            # (amount, TaxCodeRef) of each sales line, as sent: a line with a tax rate group
            # is TAX; a quote's own taxes cover all its lines and fees; a paid invoice is NON
            "tax_codes": sorted([(l["amount"], "NON" if paid else "TAX" if l["taxable"] or
                                  c["T_terms"] else "NON") for l in lines] +
                                [(f, "TAX" if c["T_terms"] else "NON") for f in c["fees"]]),
            "fees": sorted(c["fees"]), "currency": c["currency"]}


# ---- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def books(hsqb):
    """The session's replicas, replaced by two with raised rate limits for this module."""
    with hsqb.replicas_with(FAST) as h:
        yield h


def mix(cases):
    c = collections.Counter()
    for x in cases:
        e = x["expect"]
        c["%s %s %s %s -> %s" % (REALM_NAME[x["realm"]], x["kind"], x["action"], x["currency"],
                                 e.get("code", "ok"))] += 1
    by = collections.Counter()
    for x in cases:
        by[x["expect"].get("code", "succeeded")] += 1
        by[REALM_NAME[x["realm"]]] += 1
        by[x["kind"]] += 1
        by[x["currency"]] += 1
        by["taxable lines"] += sum(l["taxable"] for l in x["lines"])
        by["lines"] += len(x["lines"])
        by["quote discounts/fees/taxes"] += len(x.get("terms", []))
    return by, c


def test_books_match_hubspot_to_the_cent(books):
    h = books
    t0 = time.monotonic()
    print("\nbooks: seed %d (HSQB_BOOKS_SEED), %d cases" % (SEED, N_CASES))
    h.sandbox.config(SANDBOX_CONFIG)
    g = Gen(SEED, N_CASES)
    cases = g.build()
    by, combos = mix(cases)
    by["quote percentages on a half cent"] = g.half_cents
    print("books: mix %s" % dict(sorted(by.items())))
    print("books: cases %s" % "; ".join("%d %s" % (n, k) for k, n in sorted(combos.items())))
    problems = []

    # HubSpot: our tax rates first (a tax_rates document reprices the portal), then all.
    h.sandbox.seed({"hubspot": {"portals": [{"portalId": PORTAL1, "tax_rates": [
        {"id": k, "name": "Books %s%%" % v, "label": "Books %s%%" % v,
         "percentageRate": float(v), "active": True} for k, v in OUR_TAX_RATES.items()]}]}})
    objects = dict(g.objects, contacts=g.contacts, companies=g.companies)
    h.sandbox.seed_hubspot(PORTAL1, **objects)
    check_hubspot_figures(h, cases, problems)

    # QuickBooks before: what the seed holds (nothing of ours may exist yet).
    before = {realm: {k: {d["Id"] for d in h.sandbox.qbo_select(realm, k)} for k in DOC_KINDS}
              for realm in REALMS}
    since = h.sandbox.mark()
    events = []
    for c in cases:
        ev = h.event(c["action"], c["kind"], c["oid"], c["realm"],
                     create_missing_products="true")
        c["ev"] = ev
        events.append(ev)
    t_seeded = time.monotonic()
    h.produce(*events)
    results = h.wait_results([e.id for e in events], timeout=110)
    t_done = time.monotonic()
    print("books: %d results in %.1fs (seeding %.1fs)" % (len(results), t_done - t_seeded,
                                                          t_seeded - t0))
    # A permanent failure's dead letter follows its result: wait for those that failed.
    failed = [e.id for e in events if results[e.id][0].json["data"]["status"] == "failed"]
    if failed:
        h.wait_dlq(failed, timeout=30)
    dlq = h.dlq_for([e.id for e in events])
    results = h.results_for([e.id for e in events])  # with any repeats published meanwhile

    # QuickBooks after, through its query API.
    after = {realm: {k: h.sandbox.qbo_select(realm, k) for k in DOC_KINDS + ("Customer",
                                                                              "Item")}
             for realm in REALMS}
    writes = [r for r in h.sandbox.requests(since=since, vendor="qbo", method="POST")
              if not r["path"].endswith("/query")]
    if h.sandbox.evicted():
        problems.append("sandbox request log evicted %d entries: the write evidence is "
                        "incomplete" % h.sandbox.evicted())

    by_event = docs_by_event(after, before, problems)
    for c in cases:
        res = [r.json for r in results[c["ev"].id]]
        if "code" in c["expect"]:
            check_refusal(c, res, dlq.get(c["ev"].id, []), by_event, writes, after, problems)
        else:
            check_booked(h, c, res, by_event, after, problems)
    check_no_duplicates(cases, after, problems)
    check_documents_explained(cases, writes, problems)
    ours = {e.id + ":result" for e in events}
    invalid = [(r, why) for r, why in h.collector.invalid
               if isinstance(r.json, dict) and r.json.get("id") in ours]
    if invalid:
        problems.append("results not matching the schema: %s" % invalid[:3])

    statuses = collections.Counter(results[c["ev"].id][0].json["data"]["status"] for c in cases)
    print("books: results %s; QBO now holds %s documents of the run; %d QBO writes logged; "
          "checked in %.1fs, total %.1fs" % (
              dict(statuses), sum(len(v) for v in by_event.values()), len(writes),
              time.monotonic() - t_done, time.monotonic() - t0))
    if problems:
        report = "\n".join(problems[:80])
        more = "" if len(problems) <= 80 else "\n... and %d more" % (len(problems) - 80)
        pytest.fail("%d problems (seed %d):\n%s%s" % (len(problems), SEED, report, more),
                    pytrace=False)


# ---- checks --------------------------------------------------------------------------------


def describe(c):
    return "case %d %s %s %d on %s (%s, event %s)" % (
        c["i"], c["action"], c["kind"], c["oid"], REALM_NAME[c["realm"]], c["currency"],
        c["ev"].id if "ev" in c else "-")


def check_hubspot_figures(h, cases, problems):
    """HubSpot's own figures (the sandbox derives them) are the oracle's."""
    objs = h.sandbox.state(portal=PORTAL1)["hubspot"]["portals"][str(PORTAL1)]["objects"]
    index = {(t, o["id"]): o["properties"] for t, recs in objs.items() for o in recs}
    for c in cases:
        props = index.get((KIND_KEY[c["kind"]], str(c["oid"])))
        if props is None:
            problems.append("%s: not in HubSpot after seeding" % describe(c))
            continue
        field = {"DEAL": "amount", "QUOTE": "hs_quote_amount",
                 "COMMERCE_PAYMENT": "hs_initial_amount"}[c["kind"]]
        got = props.get(field)
        if got is None or cents(got) != c["hubspot_total"]:
            problems.append("%s: HubSpot's %s is %s, the oracle's %s" % (
                describe(c), field, got, fmt(c["hubspot_total"])))
        for l in c["lines"]:
            lp = index[("line_items", l["id"])]
            got = lp.get("hs_tax_amount")
            if l["taxable"] and (got is None or cents(got) != l["tax"]):
                problems.append("%s: line item %s (%s) hs_tax_amount %s in HubSpot, oracle %s"
                                % (describe(c), l["id"], l["tax_mode"], got, fmt(l["tax"])))


def docs_by_event(after, before, problems):
    """{event id: [(realm, kind, doc)]} of the documents whose PrivateNote ends with
    " hsqb event <id>"; a new document naming no event is a problem."""
    out = collections.defaultdict(list)
    for realm, kinds in after.items():
        for k in DOC_KINDS:
            for d in kinds[k]:
                note = d.get("PrivateNote") or ""
                if " hsqb event " in note:
                    out[note.rsplit(" hsqb event ", 1)[1]].append((realm, k, d))
                elif d["Id"] not in before[realm][k]:
                    problems.append("%s %s %s on %s names no event (PrivateNote %r)" % (
                        k, d["Id"], d.get("DocNumber"), REALM_NAME[realm], note))
    return out


def worker_says(res):
    if not res:
        return "no result"
    d = res[0]["data"]
    if d["status"] == "failed":
        return "failed %s: %s (details %s)" % (d["error"]["code"], d["error"]["message"],
                                              json.dumps(d["error"].get("details")))
    q = d["qbo"]
    return "succeeded: %s %s total %s %s" % (q["entity"], q["id"], fmt(q["total_cents"]),
                                            q["currency"])


def check_refusal(c, res, dlq, by_event, writes, after, problems):
    e, who = c["expect"], describe(c)
    if not res or res[0]["data"]["status"] != "failed" or \
            res[0]["data"]["error"]["code"] != e["code"]:
        problems.append("%s: expected failed %s, got %s" % (who, e["code"], worker_says(res)))
    else:
        err = res[0]["data"]["error"]
        if err["retryable"] is not False:
            problems.append("%s: %s marked retryable" % (who, e["code"]))
        if e["code"] == "QUOTE_TOTAL_MISMATCH":
            det = err.get("details") or {}
            if (cents(det.get("hubspot_total", "-1")) != c["hubspot_total"] or
                    cents(det.get("computed_total", "-1")) != c["computed_total"]):
                problems.append("%s: details %s, expected hubspot_total %s computed_total %s" % (
                    who, det, fmt(c["hubspot_total"]), fmt(c["computed_total"])))
    if len({json.dumps(r["data"].get("error"), sort_keys=True) for r in res}) > 1:
        problems.append("%s: its results disagree: %s" % (who, [worker_says([r]) for r in res]))
    if not any(r.header("hsqb-error-code") == e["code"] for r in dlq):
        problems.append("%s: no dead letter with code %s (%s)" % (
            who, e["code"], [r.header("hsqb-error-code") for r in dlq]))
    # Before any write: no document, and no QBO write mentions the event, its own
    # contact (a customer) or its own product (an item).
    docs = by_event.get(c["ev"].id, [])
    if docs:
        problems.append("%s: refused, yet documents exist: %s" % (
            who, [(REALM_NAME[r], k, d["Id"]) for r, k, d in docs]))
    marks = [" hsqb event %s\"" % c["ev"].id, "\"%s\"" % c["contact"]["email"],
             "\"%s\"" % c["probe"][0]]  # as JSON strings in the bodies: no prefix matches
    for w in writes:
        body = (w.get("body") or "").lower()
        hit = [m for m in marks if m.lower() in body]
        if hit:
            problems.append("%s: refused, yet QBO write %s %s mentions %s" % (
                who, w["method"], w["path"], hit))
    for realm in REALMS:
        if any((x.get("PrimaryEmailAddr") or {}).get("Address", "").lower() ==
               c["contact"]["email"] for x in after[realm]["Customer"]):
            problems.append("%s: refused, yet %s has a customer for its contact" % (
                who, REALM_NAME[realm]))
        if any(x["Name"] == c["probe"][0] for x in after[realm]["Item"]):
            problems.append("%s: refused, yet %s has its item" % (who, REALM_NAME[realm]))


def money_of(doc, key):
    v = doc.get(key)
    return None if v is None else cents(v)


def check_booked(h, c, res, by_event, after, problems):
    e, who, realm = c["expect"], describe(c), c["realm"]
    if not res or res[0]["data"]["status"] != "succeeded":
        problems.append("%s: expected %s of %s, got %s" % (who, e["entity"], fmt(e["total"]),
                                                           worker_says(res)))
        docs = by_event.get(c["ev"].id, [])
        if docs:
            problems.append("%s:   ... and QBO holds %s" % (who, [
                (REALM_NAME[r], k, d["Id"], d.get("TotalAmt"), d.get("Balance"),
                 (d.get("TxnTaxDetail") or {}).get("TotalTax")) for r, k, d in docs]))
        return
    if len({json.dumps(r["data"]["qbo"], sort_keys=True) for r in res}) > 1:
        problems.append("%s: its results disagree: %s" % (who, [worker_says([r]) for r in res]))
    q = res[0]["data"]["qbo"]
    if q["entity"] != e["entity"] or q["total_cents"] != e["total"] or \
            q["currency"] != e["currency"]:
        problems.append("%s: result %s %s %s %s, expected %s %s %s" % (
            who, q["entity"], q["id"], fmt(q["total_cents"]), q["currency"], e["entity"],
            fmt(e["total"]), e["currency"]))
    # The document, read by its Id through the query API, as an accountant's tool would.
    rows = h.sandbox.qbo_query(realm, "SELECT * FROM %s WHERE Id = '%s'" % (
        e["entity"], q["id"])).get(e["entity"], [])
    if len(rows) != 1:
        problems.append("%s: SELECT %s Id %s -> %d rows" % (who, e["entity"], q["id"],
                                                             len(rows)))
        return
    doc = rows[0]
    bad = []
    if not (doc.get("PrivateNote") or "").endswith(" hsqb event " + c["ev"].id):
        bad.append("PrivateNote %r" % doc.get("PrivateNote"))
    if money_of(doc, "TotalAmt") != e["total"]:
        bad.append("TotalAmt %s, HubSpot %s" % (doc.get("TotalAmt"), fmt(e["total"])))
    tax = money_of(doc.get("TxnTaxDetail") or {}, "TotalTax")
    if REALM[realm]["sales_tax"] and tax != e["tax"]:
        bad.append("TxnTaxDetail.TotalTax %s, HubSpot's tax %s" % (tax, fmt(e["tax"])))
    cur = (doc.get("CurrencyRef") or {}).get("value")
    if cur != e["currency"]:
        bad.append("CurrencyRef %s, HubSpot's currency %s" % (cur, e["currency"]))
    sales = [l for l in doc.get("Line", []) if l.get("DetailType") == "SalesItemLineDetail"]
    got_lines = sorted(cents(l["Amount"]) for l in sales)
    if got_lines != e["sales_lines"]:
        bad.append("sales lines %s, HubSpot's %s" % ([fmt(x) for x in got_lines],
                                                     [fmt(x) for x in e["sales_lines"]]))
    for l in sales:
        det = l["SalesItemLineDetail"]
        qty, price = Decimal(repr(det.get("Qty", 1))), Decimal(repr(det.get("UnitPrice", 0)))
        if to_cents(qty * price) != cents(l["Amount"]):
            bad.append("line %s: Qty %s x UnitPrice %s != Amount %s" % (
                l.get("LineNum"), qty, price, l["Amount"]))
    fee_lines = sorted(cents(l["Amount"]) for l in sales
                       if l["SalesItemLineDetail"]["ItemRef"].get("name") == FEE_ITEM)
    if fee_lines != e["fees"]:
        bad.append("lines on item %s %s, HubSpot's fees %s" % (FEE_ITEM, fee_lines, e["fees"]))
    if REALM[realm]["sales_tax"] and not REALM[realm]["ast"]:
        # Codes stay as sent only without Automated Sales Tax (AST decides them itself).
        codes = sorted((cents(l["Amount"]), ((l["SalesItemLineDetail"].get("TaxCodeRef") or {})
                                            .get("value"))) for l in sales)
        if codes != e["tax_codes"]:
            bad.append("(Amount, TaxCodeRef) of the lines %s, expected %s" % (codes,
                                                                          e["tax_codes"]))
    for key, want in (("BillAddr", c["contact"]["addr"]), ("ShipAddr", c["ship"])):
        a = doc.get(key) or {}
        if want and (a.get("City"), a.get("CountrySubDivisionCode"), a.get("PostalCode")) != want:
            bad.append("%s %s, HubSpot's %s" % (key, a, want))
    disc = [cents(l["Amount"]) for l in doc.get("Line", [])
            if l.get("DetailType") == "DiscountLineDetail"]
    if disc != ([e["discount"]] if e["discount"] else []):
        bad.append("discount lines %s, HubSpot's discounts %s" % (disc, fmt(e["discount"])))
    if e["entity"] == "Invoice":
        want_bal = 0 if c["action"] == "create_paid_invoice" else e["total"]
        if money_of(doc, "Balance") != want_bal:
            bad.append("Balance %s, expected %s" % (doc.get("Balance"), fmt(want_bal)))
    if c["kind"] == "QUOTE" and e["entity"] == "Estimate" and \
            doc.get("ExpirationDate") != c["expiration"]:
        bad.append("ExpirationDate %s, the quote's %s" % (doc.get("ExpirationDate"),
                                                         c["expiration"]))
    cust = next((x for x in after[realm]["Customer"]
                 if x["Id"] == doc["CustomerRef"]["value"]), None)
    if cust is None or (cust.get("PrimaryEmailAddr") or {}).get("Address", "").lower() != \
            c["contact"]["email"].lower():
        bad.append("customer %s is not contact %s's" % (doc["CustomerRef"], c["contact"]["id"]))
    elif (cust.get("CurrencyRef") or {}).get("value", "USD") != e["currency"]:
        bad.append("customer %s in %s" % (cust["Id"], cust.get("CurrencyRef")))
    # Exactly its document(s): the one named in the result, plus a paid invoice's Payment.
    docs = by_event.get(c["ev"].id, [])
    want = [e["entity"]] + (["Payment"] if c["action"] == "create_paid_invoice" else [])
    if sorted(k for r, k, d in docs) != sorted(want) or any(r != realm for r, k, d in docs):
        bad.append("documents of the event %s, expected %s" % (
            [(REALM_NAME[r], k, d["Id"]) for r, k, d in docs], want))
    if c["action"] == "create_paid_invoice":
        pays = [d for r, k, d in docs if k == "Payment"]
        if len(pays) == 1:
            p = pays[0]
            linked = [t.get("TxnId") for l in p.get("Line", []) for t in l.get("LinkedTxn", [])
                      if t.get("TxnType") == "Invoice"]
            if money_of(p, "TotalAmt") != e["total"] or linked != [doc["Id"]] or \
                    q.get("payment_id") != p["Id"]:
                bad.append("Payment %s: TotalAmt %s linked %s (result payment_id %s)" % (
                    p["Id"], p.get("TotalAmt"), linked, q.get("payment_id")))
    if bad:
        problems.append("%s: QBO %s %s: %s" % (who, e["entity"], q["id"], "; ".join(bad)))


def check_no_duplicates(cases, after, problems):
    """One customer per contact, realm and currency; one item per name."""
    emails = {c["contact"]["email"].lower() for c in cases}
    for realm in REALMS:
        seen = collections.Counter()
        for x in after[realm]["Customer"]:
            em = (x.get("PrimaryEmailAddr") or {}).get("Address", "").lower()
            if em in emails:
                seen[(em, (x.get("CurrencyRef") or {}).get("value", "USD"))] += 1
        for k, n in seen.items():
            if n > 1:
                problems.append("%s: %d customers for %s in %s" % (REALM_NAME[realm], n, *k))
        names = collections.Counter(x["Name"].lower() for x in after[realm]["Item"])
        for k, n in names.items():
            if n > 1:
                problems.append("%s: %d items named %s" % (REALM_NAME[realm], n, k))


def check_documents_explained(cases, writes, problems):
    """Every document create the worker sent names an event that was to be booked."""
    booked = {c["ev"].id for c in cases if "code" not in c["expect"]}
    for w in writes:
        body = w.get("body") or ""
        if " hsqb event " not in body:
            continue
        try:
            note = json.loads(body).get("PrivateNote", "")
        except ValueError:
            problems.append("QBO write %s with an unreadable body (%d bytes logged of %d)" % (
                w["path"], len(body), w.get("body_len", -1)))
            continue
        eid = note.rsplit(" hsqb event ", 1)[-1]
        if eid not in booked:
            problems.append("QBO write %s for event %s, which was to be refused" % (
                w["path"], eid))
