/* qbo_rules.c - what every QBO entity kind shares, and the name lists' own rules.
 *
 * Shared: the kind table (path, JSON name, flags, writable fields, builder), the name and
 * DocNumber indexes, the helpers builders answer faults with, the write pipeline and the
 * requestid store. Own rules: Customer, Vendor, Employee, Item, Account, Term and
 * PaymentMethod (transactions are qbo_txn.c's).
 *
 * A write is built off to the side in a struct wctx and committed only once every rule
 * passed, so a fault leaves the company as it was:
 *
 *   qbo_do_write: parse body -> operation
 *     create            -> qbo_entity_write
 *     update (or an Id) -> locate -> qbo_entity_write (sparse: merged onto the old one)
 *     delete | void     -> locate -> do_delete | do_void (transactions only)
 *   locate: Id numeric and stored, SyncToken current (else 5010)
 *   qbo_entity_write: strict fields -> copy (a seed or a sparse update; a request's
 *     parsed body is used as it is) -> drop server fields -> kind's build()
 *     (defaults, faults) -> Id, SyncToken + 1, MetaData -> commit (payment application,
 *     indexes, store)
 *
 * Names are unique per kind, and across Customer, Vendor and Employee together (6240);
 * the index keys fold ASCII case while names_case_insensitive is on. requestid: the first
 * answer per id is kept (status, body, request hash) and replayed, bounded by count and
 * age (qbo_set_limits, requestid_max_entries). Everything here runs under qbo.c's lock.
 */
#include "common/clock.h"
#include "tests/sandbox/qbo_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QBO_REQUESTID_MAX_LEN 50
#define QBO_NAME_MAX          500 /* DisplayName, design choice #14 */
#define QBO_ITEM_NAME_MAX     100
#define QBO_JSON_DEPTH        32 /* request body nesting */

/* ---- entity kinds ------------------------------------------------------------------ */

/* Writable top-level properties per kind (strict_fields), as space-separated words. */
#define PERSON_FIELDS                                                                              \
    "Title GivenName MiddleName FamilyName Suffix DisplayName FullyQualifiedName CompanyName "     \
    "PrintOnCheckName Active PrimaryPhone AlternatePhone Mobile Fax PrimaryEmailAddr WebAddr "     \
    "OtherContactInfo CurrencyRef Balance Notes Source GSTIN GSTRegistrationType "                 \
    "BusinessNumber PrimaryAddr BillAddr OtherAddr "

static const char f_customer[] =
    PERSON_FIELDS "ShipAddr DefaultTaxCodeRef Taxable TaxExemptionReasonId Job BillWithParent "
                  "ParentRef Level SalesTermRef PaymentMethodRef OpenBalanceDate BalanceWithJobs "
                  "PreferredDeliveryMethod ResaleNum PrimaryTaxIdentifier SecondaryTaxIdentifier "
                  "ARAccountRef CustomerTypeRef IsProject ClientEntityId TaxRegimeRef";
static const char f_vendor[] =
    PERSON_FIELDS "TaxIdentifier TermRef AcctNum Vendor1099 APAccountRef BillRate CostRate "
                  "HasTPAR T4AEligible T5018Eligible VendorPaymentBankDetail TaxReportingBasis";
static const char f_employee[] = PERSON_FIELDS "EmployeeNumber SSN BillableTime BillRate CostRate "
                                               "BirthDate Gender HiredDate ReleasedDate "
                                               "Organization";
static const char f_item[] =
    "Name Sku Description Active SubItem ParentRef Level FullyQualifiedName Taxable "
    "SalesTaxIncluded UnitPrice Type IncomeAccountRef PurchaseDesc PurchaseTaxIncluded "
    "PurchaseCost ExpenseAccountRef AssetAccountRef TrackQtyOnHand QtyOnHand InvStartDate "
    "SalesTaxCodeRef PurchaseTaxCodeRef AbatementRate ReverseChargeRate ServiceType "
    "ItemCategoryType PrefVendorRef ReorderPoint ClassRef TaxClassificationRef UQCDisplayText "
    "UQCId Source ItemGroupDetail ItemAssemblyDetail";
static const char f_term[] = "Name Active Type DueDays DiscountPercent DiscountDays DayOfMonthDue "
                             "DueNextMonthDays DiscountDayOfMonth";
static const char f_account[] =
    "Name SubAccount ParentRef Description FullyQualifiedName Active Classification "
    "AccountType AccountSubType AcctNum CurrentBalance CurrentBalanceWithSubAccounts "
    "CurrencyRef TaxCodeRef TxnLocationType OpeningBalance OpeningBalanceDate AccountAlias";
static const char f_paymentmethod[] = "Name Active Type";

static int build_person(struct wctx *w);
static int build_item(struct wctx *w);
static int build_term(struct wctx *w);
static int build_account(struct wctx *w);
static int build_paymentmethod(struct wctx *w);

const struct kind_def qbo_kinds[K_NKINDS] = {
    [K_CUSTOMER] = {"customer", "Customer", KF_NAMELIST | KF_PERSON, f_customer, build_person},
    [K_VENDOR] = {"vendor", "Vendor", KF_NAMELIST | KF_PERSON, f_vendor, build_person},
    [K_EMPLOYEE] = {"employee", "Employee", KF_NAMELIST | KF_PERSON, f_employee, build_person},
    [K_ITEM] = {"item", "Item", KF_NAMELIST, f_item, build_item},
    [K_TERM] = {"term", "Term", KF_NAMELIST, f_term, build_term},
    [K_ACCOUNT] = {"account", "Account", KF_NAMELIST, f_account, build_account},
    [K_PAYMENTMETHOD] = {"paymentmethod", "PaymentMethod", KF_NAMELIST, f_paymentmethod,
                         build_paymentmethod},
    [K_INVOICE] = {"invoice", "Invoice", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ, qbo_fields_sales,
                   qbo_build_sales},
    [K_ESTIMATE] = {"estimate", "Estimate", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ, qbo_fields_sales,
                    qbo_build_sales},
    [K_SALESRECEIPT] = {"salesreceipt", "SalesReceipt", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ,
                        qbo_fields_sales, qbo_build_sales},
    [K_REFUNDRECEIPT] = {"refundreceipt", "RefundReceipt", KF_TXN | KF_DOCAUTO | KF_DOCUNIQ,
                         qbo_fields_sales, qbo_build_sales},
    [K_PAYMENT] = {"payment", "Payment", KF_TXN, qbo_fields_payment, qbo_build_payment},
    [K_PURCHASE] = {"purchase", "Purchase", KF_TXN, qbo_fields_purchase, qbo_build_purchase},
};

int qbo_kind_by_path(const char *seg, size_t n)
{
    for (int k = 0; k < K_NKINDS; k++)
        if (strlen(qbo_kinds[k].path) == n && strncmp(qbo_kinds[k].path, seg, n) == 0)
            return k;
    return -1;
}

int qbo_kind_by_name(const char *name)
{
    for (int k = 0; k < K_NKINDS; k++)
        if (strcmp(qbo_kinds[k].name, name) == 0)
            return k;
    return -1;
}

int qbo_is_numeric_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- indexes --------------------------------------------------------------------- */

static struct json_object *name_index(struct realm *r, enum kind k)
{
    return r->names[(qbo_kinds[k].flags & KF_PERSON) ? K_CUSTOMER : k];
}

const char *qbo_name_field(enum kind k)
{
    return (qbo_kinds[k].flags & KF_PERSON) ? "DisplayName" : "Name";
}

static void fold_name(const char *name, char *buf, size_t bufsz)
{
    size_t i;
    for (i = 0; name[i] && i + 1 < bufsz; i++)
        buf[i] = g_qbo_opts.names_ci ? (char)tolower((unsigned char)name[i]) : name[i];
    buf[i] = 0;
}

/* "Customer/12" of the record owning a name, or NULL. */
const char *qbo_name_owner(struct realm *r, enum kind k, const char *name)
{
    char key[QBO_NAME_MAX * 2 + 8];
    fold_name(name, key, sizeof(key));
    return jstr(name_index(r, k), key);
}

void qbo_index_add(struct realm *r, enum kind k, struct json_object *ent)
{
    const char *id = jstr(ent, "Id"), *name = jstr(ent, qbo_name_field(k)), *doc;
    char key[QBO_NAME_MAX * 2 + 8], owner[64];
    if (k < K_INVOICE && name) {
        fold_name(name, key, sizeof(key));
        snprintf(owner, sizeof(owner), "%s/%s", qbo_kinds[k].name, id);
        json_object_object_add(name_index(r, k), key, json_object_new_string(owner));
    }
    if ((doc = jstr(ent, "DocNumber")) && (qbo_kinds[k].flags & KF_DOCUNIQ))
        json_object_object_add(r->docnums[k], doc, json_object_new_string(id));
}

void qbo_index_del(struct realm *r, enum kind k, struct json_object *ent)
{
    const char *id = jstr(ent, "Id"), *name = jstr(ent, qbo_name_field(k)), *doc;
    char key[QBO_NAME_MAX * 2 + 8], owner[64];
    if (k < K_INVOICE && name) {
        fold_name(name, key, sizeof(key));
        snprintf(owner, sizeof(owner), "%s/%s", qbo_kinds[k].name, id);
        const char *cur = jstr(name_index(r, k), key);
        if (cur && strcmp(cur, owner) == 0)
            json_object_object_del(name_index(r, k), key);
    }
    if ((doc = jstr(ent, "DocNumber")) && (qbo_kinds[k].flags & KF_DOCUNIQ)) {
        const char *cur = jstr(r->docnums[k], doc);
        if (cur && strcmp(cur, id) == 0)
            json_object_object_del(r->docnums[k], doc);
    }
}

/* ---- write helpers --------------------------------------------------------------- */

static const char *const server_fields[] = {"Id",     "SyncToken", "MetaData",
                                            "domain", "sparse",    NULL};

int qbo_missing(struct wctx *w, const char *element)
{
    return qbo_fault_set(&w->f, "2020", element,
                         "Required param missing, need to supply the required value for the API",
                         "Required parameter %s is missing in the request", element);
}

int qbo_invalid_prop(struct wctx *w, const char *prop)
{
    return qbo_fault_set(&w->f, "2010", NULL, "Request has invalid or unsupported property",
                         "Property Name:%s specified is unsupported or invalid", prop);
}

int qbo_business(struct wctx *w, const char *element, const char *detail)
{
    return qbo_fault_set(&w->f, "6000", element,
                         "A business validation error has occurred while processing your request",
                         "Business Validation Error: %s", detail);
}

int qbo_sum_add(struct wctx *w, int64_t *sum, int64_t c)
{
    int64_t r;
    if (__builtin_add_overflow(*sum, c, &r) || r > QBO_CENTS_MAX || r < -QBO_CENTS_MAX)
        return qbo_invalid_prop(w, "Amount");
    *sum = r;
    return 0;
}

int qbo_in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* 1 when `word` is one of the space-separated words of `list`. */
static int in_words(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; n && (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return 1;
    return 0;
}

static int check_fields(struct wctx *w, struct json_object *body)
{
    if (!g_qbo_opts.strict_fields)
        return 0;
    json_object_object_foreach(body, key, val)
    {
        (void)val;
        if (!qbo_in_list(server_fields, key) && !in_words(qbo_kinds[w->k].fields, key))
            return qbo_fault_set(&w->f, "2010", NULL, "Request has invalid or unsupported property",
                                 "Property Name:Unrecognized field \"%s\" (class "
                                 "com.intuit.schema.finance.v3.%s), not marked as ignorable "
                                 "specified is unsupported or invalid",
                                 key, qbo_kinds[w->k].name);
    }
    return 0;
}

int qbo_is_us(const struct realm *r)
{
    const char *c = jstr(r->company, "Country");
    return !c || strcmp(c, "US") == 0;
}

int qbo_ref_check(struct wctx *w, struct json_object *holder, const char *key, enum kind k,
                  int required, struct json_object **out)
{
    struct json_object *ref, *e;
    const char *id, *name;

    *out = NULL;
    if (!json_object_object_get_ex(holder, key, &ref) || json_object_is_type(ref, json_type_null))
        return required ? qbo_missing(w, key) : 0;
    if (!json_object_is_type(ref, json_type_object))
        return qbo_invalid_prop(w, key);
    if (!(id = jstr(ref, "value")) || !*id)
        return qbo_missing(w, key);
    if (!(e = ent_get(w->r, k, id)))
        return qbo_fault_set(&w->f, "2500", key, "Invalid Reference Id",
                             "Invalid Reference Id : %s assigned to this transaction has been "
                             "deleted or does not exist: Id %s",
                             qbo_kinds[k].name, id);
    if (!jbool(e, "Active", 1))
        return qbo_fault_set(&w->f, "610", key, "Object Not Found", "%s", qbo_obj_not_found);
    if ((name = jstr(e, qbo_name_field(k))))
        json_object_object_add(ref, "name", json_object_new_string(name));
    *out = e;
    return 0;
}

/* A money-like member as exact decimal; 0 absent, 1 present, -1 fault. */
int qbo_get_dec(struct wctx *w, struct json_object *o, const char *key, struct qbo_dec *d)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double) &&
         !json_object_is_type(v, json_type_string)) ||
        qbo_dec_from_json(v, d) < 0)
        return qbo_invalid_prop(w, key);
    return 1;
}

int qbo_get_cents(struct wctx *w, struct json_object *o, const char *key, int64_t *cents)
{
    struct qbo_dec d;
    int rc = qbo_get_dec(w, o, key, &d);
    if (rc <= 0)
        return rc;
    if (qbo_dec_cents(d, cents) < 0)
        return qbo_invalid_prop(w, key);
    return 1;
}

static int check_name(struct wctx *w, const char *field, const char *name, size_t max)
{
    char self[64];
    const char *owner;
    if (strlen(name) > max)
        return qbo_fault_set(&w->f, "2010", field, "Request has invalid or unsupported property",
                             "Property Name:%s specified is unsupported or invalid: length %zu "
                             "exceeds %zu",
                             field, strlen(name), max);
    if (strpbrk(name, ":\t\n"))
        return qbo_business(w, field, "The name cannot contain a colon, a tab or a newline.");
    owner = qbo_name_owner(w->r, w->k, name);
    snprintf(self, sizeof(self), "%s/%s", qbo_kinds[w->k].name, w->id ? w->id : "");
    if (owner && (!w->id || strcmp(owner, self) != 0))
        return qbo_fault_set(&w->f, "6240", NULL, "Duplicate Name Exists Error",
                             "The name supplied already exists. : null");
    return 0;
}

void qbo_bump(struct realm *r, struct json_object *e)
{
    char ts[48];
    const char *st = jstr(e, "SyncToken");
    struct json_object *meta = jobj(e, "MetaData");
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", st ? atoll(st) + 1 : 1);
    set_str(e, "SyncToken", buf);
    qbo_fmt_time(r, clock_wall_ms(), 0, ts, sizeof(ts));
    if (meta)
        set_str(meta, "LastUpdatedTime", ts);
}

/* ---- name lists ------------------------------------------------------------------ */

static int build_person(struct wctx *w)
{
    static const char *const parts[] = {"Title", "GivenName", "MiddleName", "FamilyName", "Suffix"};
    struct json_object *e = w->ent, *v, *term;
    const char *dn;
    char derived[QBO_NAME_MAX * 2 + 8] = "";

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (!json_object_object_get_ex(e, parts[i], &v) || json_object_is_type(v, json_type_null))
            continue;
        if (!json_object_is_type(v, json_type_string))
            return qbo_invalid_prop(w, parts[i]);
        const char *s = json_object_get_string(v);
        if (*s && strlen(derived) + strlen(s) + 2 < sizeof(derived)) {
            if (*derived)
                strcat(derived, " ");
            strcat(derived, s);
        }
    }
    if (json_object_object_get_ex(e, "DisplayName", &v) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_string))
        return qbo_invalid_prop(w, "DisplayName");
    dn = jstr(e, "DisplayName");
    if (!dn || !*dn) {
        if (!*derived)
            return qbo_fault_set(
                &w->f, "6080", "", "No Name Provided",
                "No Name Provided : Please provide a DisplayName or at least one of "
                "Title, GivenName, MiddleName, FamilyName, Suffix.");
        set_str(e, "DisplayName", derived);
        dn = jstr(e, "DisplayName");
    }
    if (check_name(w, "DisplayName", dn, QBO_NAME_MAX) < 0)
        return -1;
    if (w->k == K_CUSTOMER && qbo_ref_check(w, e, "SalesTermRef", K_TERM, 0, &term) < 0)
        return -1;
    if (w->k == K_CUSTOMER) {
        set_if_absent(e, "Taxable", json_object_new_boolean(qbo_is_us(w->r)));
        set_if_absent(e, "Job", json_object_new_boolean(0));
        set_if_absent(e, "BillWithParent", json_object_new_boolean(0));
        set_if_absent(e, "Balance", json_object_new_int(0));
        set_if_absent(e, "BalanceWithJobs", json_object_new_int(0));
        set_if_absent(e, "PreferredDeliveryMethod", json_object_new_string("Print"));
        if (qbo_is_us(w->r))
            set_if_absent(e, "DefaultTaxCodeRef", ref_new("2", NULL));
    } else if (w->k == K_VENDOR) {
        set_if_absent(e, "Vendor1099", json_object_new_boolean(0));
        set_if_absent(e, "Balance", json_object_new_int(0));
    } else {
        set_if_absent(e, "BillableTime", json_object_new_boolean(0));
    }
    if (w->k != K_EMPLOYEE && qbo_party_currency(w) < 0)
        return -1;
    set_str(e, "FullyQualifiedName", dn);
    set_if_absent(e, "PrintOnCheckName", json_object_new_string(dn));
    set_if_absent(e, "Active", json_object_new_boolean(1));
    return 0;
}

/* Name member of an item, account, term or payment method: required, checked, unique. */
static int named(struct wctx *w, size_t max)
{
    struct json_object *v;
    if (!json_object_object_get_ex(w->ent, "Name", &v) || json_object_is_type(v, json_type_null))
        return qbo_missing(w, "Name");
    if (!json_object_is_type(v, json_type_string))
        return qbo_invalid_prop(w, "Name");
    if (!*json_object_get_string(v))
        return qbo_missing(w, "Name");
    if (check_name(w, "Name", json_object_get_string(v), max) < 0)
        return -1;
    set_if_absent(w->ent, "Active", json_object_new_boolean(1));
    return 0;
}

static int build_item(struct wctx *w)
{
    static const char *const types[] = {"Service",      "NonInventory", "Inventory", "Group",
                                        "Category",     "Bundle",       "Assembly",  "Fixed Asset",
                                        "Other Charge", "Payment",      "Subtotal",  "Discount",
                                        "Tax",          "Tax Group",    NULL};
    struct json_object *e = w->ent, *acct;
    const char *type, *sku;
    struct qbo_dec d;

    if (named(w, QBO_ITEM_NAME_MAX) < 0)
        return -1;
    if (!(type = jstr(e, "Type")))
        return json_object_object_get_ex(e, "Type", NULL) ? qbo_invalid_prop(w, "Type")
                                                          : qbo_missing(w, "Type");
    if (!qbo_in_list(types, type))
        return qbo_fault_set(&w->f, "2170", "Type", "Invalid Enumeration",
                             "Invalid Enumeration : %s", type);
    int needs_income =
        !strcmp(type, "Service") || !strcmp(type, "NonInventory") || !strcmp(type, "Inventory");
    if (qbo_ref_check(w, e, "IncomeAccountRef", K_ACCOUNT, needs_income, &acct) < 0)
        return -1;
    int inv = strcmp(type, "Inventory") == 0;
    if (qbo_ref_check(w, e, "ExpenseAccountRef", K_ACCOUNT, inv, &acct) < 0 ||
        qbo_ref_check(w, e, "AssetAccountRef", K_ACCOUNT, inv, &acct) < 0)
        return -1;
    if (inv) {
        if (!jbool(e, "TrackQtyOnHand", 0))
            return qbo_missing(w, "TrackQtyOnHand");
        if (qbo_get_dec(w, e, "QtyOnHand", &d) <= 0)
            return w->f.code ? -1 : qbo_missing(w, "QtyOnHand");
        if (!jstr(e, "InvStartDate"))
            return qbo_missing(w, "InvStartDate");
    }
    if (json_object_object_get_ex(e, "Sku", NULL) && (!(sku = jstr(e, "Sku")) || strlen(sku) > 100))
        return qbo_invalid_prop(w, "Sku");
    if (qbo_get_dec(w, e, "UnitPrice", &d) < 0 || qbo_get_dec(w, e, "PurchaseCost", &d) < 0)
        return -1;
    set_str(e, "FullyQualifiedName", jstr(e, "Name"));
    set_if_absent(e, "Taxable", json_object_new_boolean(0));
    set_if_absent(e, "SalesTaxIncluded", json_object_new_boolean(0));
    set_if_absent(e, "UnitPrice", json_object_new_int(0));
    set_if_absent(e, "PurchaseTaxIncluded", json_object_new_boolean(0));
    set_if_absent(e, "PurchaseCost", json_object_new_int(0));
    set_if_absent(e, "TrackQtyOnHand", json_object_new_boolean(inv));
    return 0;
}

static int build_term(struct wctx *w)
{
    struct json_object *e = w->ent, *v;
    static const char *const ints[] = {"DueDays",          "DiscountDays",       "DayOfMonthDue",
                                       "DueNextMonthDays", "DiscountDayOfMonth", NULL};
    if (named(w, 31) < 0)
        return -1;
    for (int i = 0; ints[i]; i++)
        if (json_object_object_get_ex(e, ints[i], &v) && !json_object_is_type(v, json_type_int))
            return qbo_invalid_prop(w, ints[i]);
    int date_driven = json_object_object_get_ex(e, "DayOfMonthDue", NULL);
    set_str(e, "Type", date_driven ? "DATE_DRIVEN" : "STANDARD");
    if (!date_driven)
        set_if_absent(e, "DueDays", json_object_new_int(0));
    return 0;
}

static const struct account_type {
    const char *type, *classification, *subtype;
} account_types[] = {
    {"Bank", "Asset", "Checking"},
    {"Accounts Receivable", "Asset", "AccountsReceivable"},
    {"Other Current Asset", "Asset", "OtherCurrentAssets"},
    {"Fixed Asset", "Asset", "OtherFixedAssets"},
    {"Other Asset", "Asset", "OtherLongTermAssets"},
    {"Accounts Payable", "Liability", "AccountsPayable"},
    {"Credit Card", "Liability", "CreditCard"},
    {"Other Current Liability", "Liability", "OtherCurrentLiabilities"},
    {"Long Term Liability", "Liability", "OtherLongTermLiabilities"},
    {"Equity", "Equity", "OwnersEquity"},
    {"Income", "Revenue", "SalesOfProductIncome"},
    {"Other Income", "Revenue", "OtherMiscellaneousIncome"},
    {"Cost of Goods Sold", "Expense", "SuppliesMaterialsCogs"},
    {"Expense", "Expense", "OtherMiscellaneousServiceCost"},
    {"Other Expense", "Expense", "OtherMiscellaneousExpense"},
};

static int build_account(struct wctx *w)
{
    struct json_object *e = w->ent;
    const char *type;
    size_t i;
    if (named(w, QBO_ITEM_NAME_MAX) < 0)
        return -1;
    if (!(type = jstr(e, "AccountType")))
        return qbo_missing(w, "AccountType");
    for (i = 0; i < sizeof(account_types) / sizeof(account_types[0]); i++)
        if (strcmp(account_types[i].type, type) == 0)
            break;
    if (i == sizeof(account_types) / sizeof(account_types[0]))
        return qbo_fault_set(&w->f, "2170", "AccountType", "Invalid Enumeration",
                             "Invalid Enumeration : %s", type);
    set_str(e, "Classification", account_types[i].classification);
    set_if_absent(e, "AccountSubType", json_object_new_string(account_types[i].subtype));
    set_str(e, "FullyQualifiedName", jstr(e, "Name"));
    set_if_absent(e, "SubAccount", json_object_new_boolean(0));
    set_if_absent(e, "CurrentBalance", json_object_new_int(0));
    set_if_absent(e, "CurrentBalanceWithSubAccounts", json_object_new_int(0));
    set_if_absent(e, "CurrencyRef", qbo_currency_ref(w->r));
    return 0;
}

static int build_paymentmethod(struct wctx *w)
{
    if (named(w, 31) < 0)
        return -1;
    set_if_absent(w->ent, "Type", json_object_new_string("NON_CREDIT_CARD"));
    return 0;
}

/* ---- the write pipeline ------------------------------------------------------------ */

int qbo_entity_write(struct realm *r, enum kind k, struct json_object *body,
                     struct json_object *old, int sparse, int seeding, int allow_dup,
                     struct json_object **out, struct fault *f)
{
    struct wctx w = {.r = r, .k = k, .old = old, .allow_dup_doc = allow_dup};
    char idbuf[24], ts[48], st[24];
    struct json_object *meta = NULL, *v;
    const char *sid;

    if (check_fields(&w, body) < 0)
        goto fail;
    if (old && sparse) {
        json_object_deep_copy(old, &w.ent, NULL);
        json_object_object_foreach(body, key, val)
        {
            struct json_object *cp = NULL;
            if (qbo_in_list(server_fields, key))
                continue;
            json_object_deep_copy(val, &cp, NULL);
            json_object_object_add(w.ent, key, cp);
        }
    } else if (!seeding) {
        /* Nothing below reads body (a seed's Id, SyncToken and MetaData are read from
         * it): build on the request's own tree instead of a copy. It is shared with the
         * caller, who only drops its reference. */
        w.ent = json_object_get(body);
    } else {
        json_object_deep_copy(body, &w.ent, NULL);
    }
    if (seeding && !old && jobj(body, "MetaData"))
        json_object_deep_copy(jobj(body, "MetaData"), &meta, NULL);
    for (int i = 0; server_fields[i]; i++)
        json_object_object_del(w.ent, server_fields[i]);
    if (old) {
        snprintf(idbuf, sizeof(idbuf), "%s", jstr(old, "Id"));
        w.id = idbuf;
    } else if (seeding && (sid = jstr(body, "Id"))) {
        if (!qbo_is_numeric_id(sid) || ent_get(r, k, sid)) {
            qbo_fault_set(&w.f, "2030", "Id", "Invalid ID",
                          "Id should be a valid, unused number. "
                          "Supplied value:%s",
                          sid);
            goto fail;
        }
        snprintf(idbuf, sizeof(idbuf), "%s", sid);
        w.id = idbuf;
    }
    if (qbo_kinds[k].build(&w) < 0)
        goto fail;
    if (!w.id) {
        do
            snprintf(idbuf, sizeof(idbuf), "%lld", (long long)r->next_id[k]++);
        while (ent_get(r, k, idbuf));
        w.id = idbuf;
    } else if (atoll(idbuf) >= r->next_id[k]) {
        r->next_id[k] = atoll(idbuf) + 1;
    }
    if (qbo_kinds[k].flags & KF_NAMELIST)
        set_if_absent(w.ent, "Active", json_object_new_boolean(1));
    set_str(w.ent, "domain", "QBO");
    json_object_object_add(w.ent, "sparse", json_object_new_boolean(0));
    set_str(w.ent, "Id", w.id);
    qbo_fmt_time(r, clock_wall_ms(), 0, ts, sizeof(ts));
    if (old) {
        snprintf(st, sizeof(st), "%lld",
                 atoll(jstr(old, "SyncToken") ? jstr(old, "SyncToken") : "0") + 1);
        meta = NULL;
        json_object_deep_copy(jobj(old, "MetaData"), &meta, NULL);
        if (!meta)
            meta = json_object_new_object();
        set_str(meta, "LastUpdatedTime", ts);
    } else {
        snprintf(st, sizeof(st), "%s",
                 seeding && jstr(body, "SyncToken") ? jstr(body, "SyncToken") : "0");
        if (!meta)
            meta = json_object_new_object();
        if (!json_object_object_get_ex(meta, "CreateTime", &v))
            set_str(meta, "CreateTime", ts);
        if (!json_object_object_get_ex(meta, "LastUpdatedTime", &v))
            set_str(meta, "LastUpdatedTime", jstr(meta, "CreateTime"));
    }
    set_str(w.ent, "SyncToken", st);
    json_object_object_add(w.ent, "MetaData", meta);
    /* Commit: nothing above touched shared state except id/doc counters. */
    if (k == K_PAYMENT)
        qbo_apply_payment(r, w.id, old, w.ent);
    if (old)
        qbo_index_del(r, k, old);
    qbo_index_add(r, k, w.ent);
    qbo_ent_put(r, k, w.id, w.ent); /* frees old */
    *out = w.ent;
    return 0;
fail:
    json_object_put(w.ent);
    *f = w.f;
    return -1;
}

static int json_id_str(struct json_object *body, const char *key, char *buf, size_t bufsz)
{
    struct json_object *v;
    if (!json_object_object_get_ex(body, key, &v))
        return -1;
    if (json_object_is_type(v, json_type_string))
        snprintf(buf, bufsz, "%s", json_object_get_string(v));
    else if (json_object_is_type(v, json_type_int))
        snprintf(buf, bufsz, "%lld", (long long)json_object_get_int64(v));
    else
        return -1;
    return 0;
}

/* The entity an update/delete/void names, if its SyncToken is current (else 5010). */
static struct json_object *locate(struct realm *r, enum kind k, struct json_object *body,
                                  struct fault *f)
{
    char id[64], st[64];
    struct json_object *e;
    struct wctx w = {.r = r, .k = k};

    if (json_id_str(body, "Id", id, sizeof(id)) < 0) {
        qbo_missing(&w, "Id");
        goto fail;
    }
    if (!qbo_is_numeric_id(id)) {
        qbo_fault_set(&w.f, "2030", "Id", "Invalid ID",
                      "Id should be a valid number. Supplied value:%s", id);
        goto fail;
    }
    if (!(e = ent_get(r, k, id))) {
        qbo_fault_set(&w.f, "610", "", "Object Not Found", "%s", qbo_obj_not_found);
        goto fail;
    }
    if (json_id_str(body, "SyncToken", st, sizeof(st)) < 0) {
        qbo_missing(&w, "SyncToken");
        goto fail;
    }
    if (strcmp(st, jstr(e, "SyncToken")) != 0) {
        qbo_fault_set(
            &w.f, "5010", "", "Stale Object Error",
            "Stale Object Error : You and root were working on this at the same time. root "
            "finished before you did, so your work was not saved.");
        goto fail;
    }
    return e;
fail:
    *f = w.f;
    return NULL;
}

static void do_delete(struct route_ctx *c, enum kind k, struct json_object *body)
{
    struct fault f;
    struct json_object *e, *res, *env;
    char id[24], ts[48];

    if (qbo_kinds[k].flags & KF_NAMELIST) {
        qbo_fault_set(&f, "500", NULL, "Unsupported Operation",
                      "Operation Delete is not supported for %s; set Active to false instead.",
                      qbo_kinds[k].name);
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    if (!(e = locate(c->r, k, body, &f))) {
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    snprintf(id, sizeof(id), "%s", jstr(e, "Id"));
    if (k == K_PAYMENT)
        qbo_apply_payment(c->r, id, e, NULL);
    qbo_index_del(c->r, k, e);
    qbo_ent_del(c->r, k, id);
    res = json_object_new_object();
    set_str(res, "domain", "QBO");
    set_str(res, "status", "Deleted");
    set_str(res, "Id", id);
    env = json_object_new_object();
    json_object_object_add(env, qbo_kinds[k].name, res);
    qbo_fmt_time(c->r, clock_wall_ms(), 1, ts, sizeof(ts));
    set_str(env, "time", ts);
    qbo_reply_set(c->rp, 200, CT_JSON, dup_json(env));
    json_object_put(env);
}

/* Void: amounts to zero, "Voided" note, payment applications undone; the record stays. */
static void do_void(struct route_ctx *c, enum kind k, struct json_object *body)
{
    struct fault f;
    struct json_object *e, *cp = NULL, *lines;
    char id[24];

    if (!(e = locate(c->r, k, body, &f))) {
        qbo_reply_fault(c->rp, c->r, &f);
        return;
    }
    snprintf(id, sizeof(id), "%s", jstr(e, "Id"));
    json_object_deep_copy(e, &cp, NULL);
    if (json_object_object_get_ex(cp, "Line", &lines) &&
        json_object_is_type(lines, json_type_array))
        for (size_t i = 0; i < json_object_array_length(lines); i++)
            set_money(json_object_array_get_idx(lines, i), "Amount", 0);
    set_money(cp, "TotalAmt", 0);
    static const char *const zeroed[] = {"Balance", "HomeBalance", "HomeTotalAmt", "UnappliedAmt"};
    for (size_t i = 0; i < sizeof(zeroed) / sizeof(zeroed[0]); i++)
        if (json_object_object_get_ex(cp, zeroed[i], NULL))
            set_money(cp, zeroed[i], 0);
    if (jobj(cp, "TxnTaxDetail"))
        set_money(jobj(cp, "TxnTaxDetail"), "TotalTax", 0);
    set_str(cp, "PrivateNote", "Voided");
    if (k == K_PAYMENT)
        qbo_apply_payment(c->r, id, e, NULL);
    qbo_bump(c->r, cp);
    qbo_ent_put(c->r, k, id, cp);
    qbo_reply_entity(c->rp, c->r, qbo_kinds[k].name, cp);
}

void qbo_do_write(struct route_ctx *c, enum kind k)
{
    const char *op = sb_req_query(c->req, "operation");
    const char *inc = sb_req_query(c->req, "include");
    struct json_tokener *tok = sb_tokener(QBO_JSON_DEPTH);
    struct json_object *body = NULL, *old, *ent;
    struct fault f;

    if (tok)
        body = json_tokener_parse_ex(tok, c->req->body, (int)c->req->body_len);
    if (!tok || json_tokener_get_error(tok) != json_tokener_success ||
        (size_t)json_tokener_get_parse_end(tok) != c->req->body_len ||
        !json_object_is_type(body, json_type_object)) {
        qbo_fault_set(&f, "2010", NULL, "Request has invalid or unsupported property",
                      "Property Name:Can not parse the request body as a JSON object specified is "
                      "unsupported or invalid");
        qbo_reply_fault(c->rp, c->r, &f);
        goto out;
    }
    int allow_dup = inc && strstr(inc, "allowduplicatedocnum");
    int has_id = json_object_object_get_ex(body, "Id", NULL);
    if (op && strcmp(op, "delete") == 0) {
        do_delete(c, k, body);
    } else if (op && strcmp(op, "void") == 0) {
        if (k == K_INVOICE)
            do_void(c, k, body);
        else
            qbo_reply_unsupported(c->rp, c->r, c->req->path);
    } else if ((op && strcmp(op, "update") == 0) || (!op && has_id)) {
        if (inc && strstr(inc, "void") && (k == K_PAYMENT || k == K_SALESRECEIPT)) {
            do_void(c, k, body);
        } else if (!(old = locate(c->r, k, body, &f)) ||
                   qbo_entity_write(c->r, k, body, old, jbool(body, "sparse", 0), 0, allow_dup,
                                    &ent, &f) < 0) {
            qbo_reply_fault(c->rp, c->r, &f);
        } else {
            qbo_reply_entity(c->rp, c->r, qbo_kinds[k].name, ent);
        }
    } else if (!op || strcmp(op, "create") == 0) {
        if (qbo_entity_write(c->r, k, body, NULL, 0, 0, allow_dup, &ent, &f) < 0)
            qbo_reply_fault(c->rp, c->r, &f);
        else
            qbo_reply_entity(c->rp, c->r, qbo_kinds[k].name, ent);
    } else {
        qbo_reply_unsupported(c->rp, c->r, c->req->path);
    }
out:
    json_object_put(body);
}

/* ---- requestid store ----------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A requestid record is the array [status, hash, mono ms, text...]: the answer is its
 * texts joined. A stored entity's answer is [..., "{\"Invoice\":", <the entity's stored
 * text, shared with r->ents>, ",\"time\":...}"], so remembering a created document costs
 * a few bytes rather than a second copy of it; a later change of the entity stores new
 * text and leaves the record's untouched. */
enum { REC_STATUS, REC_HASH, REC_MONO, REC_TEXT };

static void reqid_purge(struct realm *r)
{
    int64_t now = clock_mono_ms();
    int over = json_object_object_length(r->reqids) - g_qbo_opts.requestid_max_entries;
    struct json_object *dead = NULL;

    if (g_qbo_opts.retention_s <= 0 && over <= 0)
        return;
    /* json-c objects keep insertion order: the oldest entries come first. */
    json_object_object_foreach(r->reqids, k, v)
    {
        int64_t t = json_object_get_int64(json_object_array_get_idx(v, REC_MONO));
        if (over <= 0 && (g_qbo_opts.retention_s <= 0 || now - t < g_qbo_opts.retention_s * 1000LL))
            break;
        if (!dead)
            dead = json_object_new_array();
        json_object_array_add(dead, json_object_new_string(k));
        over--;
    }
    for (size_t i = 0; dead && i < json_object_array_length(dead); i++)
        json_object_object_del(r->reqids,
                               json_object_get_string(json_object_array_get_idx(dead, i)));
    json_object_put(dead);
}

static uint64_t request_hash(const struct sb_request *req)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(req->method, strlen(req->method), h);
    h = fnv1a(req->path, strlen(req->path), h);
    return fnv1a(req->body, req->body_len, h);
}

/* Append rp's body to rec: as head + the stored text of the entity it answers + tail when
 * the body is exactly that (checked byte for byte), else as one copy. */
static void rec_add_body(struct realm *r, struct json_object *rec, const struct reply *rp)
{
    const char *body = rp->body ? rp->body : "";
    size_t blen = strlen(body);
    struct json_object *text = NULL;
    if (rp->ent_kind)
        text = qbo_ent_text(r, (enum kind)(rp->ent_kind - 1), rp->ent_id);
    if (text) {
        const char *t = json_object_get_string(text);
        size_t tlen = (size_t)json_object_get_string_len(text);
        size_t head = strlen(qbo_kinds[rp->ent_kind - 1].name) + 4; /* {"Name": */
        if (tlen && head + tlen <= blen && memcmp(body + head, t, tlen) == 0) {
            json_object_array_add(rec, json_object_new_string_len(body, (int)head));
            json_object_array_add(rec, json_object_get(text));
            json_object_array_add(rec, json_object_new_string(body + head + tlen));
            return;
        }
    }
    json_object_array_add(rec, json_object_new_string_len(body, (int)blen));
}

void qbo_requestid_store(struct realm *r, const char *rid, const struct sb_request *req,
                         const struct reply *rp)
{
    uint64_t hash = request_hash(req);
    struct json_object *rec = json_object_new_array();
    json_object_array_add(rec, json_object_new_int(rp->status));
    json_object_array_add(rec, json_object_new_int64((int64_t)hash));
    json_object_array_add(rec, json_object_new_int64(clock_mono_ms()));
    rec_add_body(r, rec, rp);
    json_object_object_del(r->reqids, rid);
    json_object_object_add(r->reqids, rid, rec);
}

/* The stored answer of a record, joined; caller frees. */
static char *rec_body(struct json_object *rec)
{
    size_t n = json_object_array_length(rec), len = 0;
    for (size_t i = REC_TEXT; i < n; i++)
        len += (size_t)json_object_get_string_len(json_object_array_get_idx(rec, i));
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = REC_TEXT; i < n; i++) {
        struct json_object *part = json_object_array_get_idx(rec, i);
        size_t pl = (size_t)json_object_get_string_len(part);
        memcpy(o, json_object_get_string(part), pl);
        o += pl;
    }
    *o = '\0';
    return out;
}

int qbo_requestid_gate(const struct sb_request *req, struct realm *r, const char *rid,
                       struct reply *rp)
{
    struct json_object *rec;
    struct fault f;

    if (strlen(rid) > QBO_REQUESTID_MAX_LEN) {
        qbo_fault_set(&f, "2020", "requestid",
                      "Required param missing, need to supply the required value for the API",
                      "requestid is longer than %d characters", QBO_REQUESTID_MAX_LEN);
        qbo_reply_fault(rp, r, &f);
        return 1;
    }
    reqid_purge(r);
    if (!json_object_object_get_ex(r->reqids, rid, &rec))
        return 0;
    int st = json_object_get_int(json_object_array_get_idx(rec, REC_STATUS));
    uint64_t h = (uint64_t)json_object_get_int64(json_object_array_get_idx(rec, REC_HASH));
    if (h != request_hash(req) && g_qbo_opts.requestid_reject_mismatch) {
        qbo_fault_set(&f, "600", "", "Duplicate request",
                      "RequestId already exists : requestid %s was used for another request", rid);
        qbo_reply_fault(rp, r, &f);
        return 1;
    }
    r->n_replayed++;
    qbo_reply_set(rp, st, st == 200 ? CT_JSON : CT_JSON_ERR, rec_body(rec));
    return 1;
}
