'use strict';
// node-quickbooks (GET queries, entity creates with ?requestid=) and intuit-oauth's
// makeApiCall (POST application/text queries, throttling) against hsqb-sandbox, for every
// QuickBooks Online route the worker calls (design.md §4 steps 4–8) and its errors
// (quickbooks-api.md §3, §4, §7). Tokens here are the seeded static access tokens; the
// 401 + refresh flow is in oauth.test.js.

const { describe, it, before, beforeEach, after } = require('node:test');
const assert = require('node:assert/strict');
const OAuthClient = require('intuit-oauth');
const { sandbox, QBO, INTUIT_TID_RE } = require('../lib/sandbox');
const { qboClient, call, find, todayAt, plusDays } = require('../lib/qbo');

const US1_OFFSET = -7; // seed: US1 company time is UTC-07:00

async function qboState(realm = QBO.US1) {
  return (await sandbox.state({ realm })).qbo[realm];
}

/** Query rows of `entity` from a node-quickbooks find* answer ([] when QueryResponse is {}). */
const rows = (data, entity) => data.QueryResponse[entity] || [];

/** The QBO error of a rejected find*: {status, fault}. */
async function findError(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e.response, `expected an HTTP error, got ${e && e.stack}`);
    return { status: e.response.status, fault: e.response.data.Fault.Error[0], data: e.response.data };
  }
  assert.fail('the query succeeded but an error was expected');
}

describe('QBO query entity-name case (node-quickbooks sends "from customer")', () => {
  // node-quickbooks lower-cases the entity in every find* query, and real QBO answers such
  // queries (third-party reports); the reference (§4) says entity names are case sensitive.
  // The sandbox has a switch; both settings are pinned here, whatever the default is.
  before(() => sandbox.reset());
  after(() => sandbox.reset());

  it('query_entity_case_insensitive=false: a lowercase entity is 400/4001', async () => {
    await sandbox.config({ qbo: { query_entity_case_insensitive: false } });
    const { status, fault } = await findError(find(qboClient(), 'findCustomers', { DisplayName: 'x' }));
    assert.equal(status, 400);
    assert.equal(fault.code, '4001');
    assert.match(fault.Detail, /^QueryValidationError: invalid context declaration: customer/);
  });

  it('query_entity_case_insensitive=true: the same query is served', async () => {
    await sandbox.config({ qbo: { query_entity_case_insensitive: true } });
    const data = await find(qboClient(), 'findCustomers', { DisplayName: 'Dukes Basketball Camp' });
    assert.equal(rows(data, 'Customer').length, 1);
  });
});

describe('QBO queries with node-quickbooks (GET /query)', () => {
  const qb = qboClient();
  before(async () => {
    await sandbox.reset();
    await sandbox.config({ qbo: { query_entity_case_insensitive: true } });
  });

  it("finds a customer by DisplayName with an apostrophe (\\' escape)", async () => {
    await sandbox.clearRequests();
    const data = await find(qb, 'findCustomers', { DisplayName: "Amy's Bird Sanctuary" });
    const found = rows(data, 'Customer');
    assert.deepEqual(found.map((c) => c.Id), ['1']);
    assert.equal(found[0].DisplayName, "Amy's Bird Sanctuary");
    assert.equal(data.QueryResponse.startPosition, 1);
    assert.equal(data.QueryResponse.maxResults, 1, 'maxResults is the number of rows returned');
    assert.match(data.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-07:00$/);
    const log = await sandbox.requests({ vendor: 'qbo', path: '/v3/company/' + QBO.US1 + '/query' });
    assert.match(log.requests[0].query, /DisplayName = 'Amy\\'s Bird Sanctuary'/);
    assert.match(log.requests[0].query, /minorversion=75/);
  });

  it('finds a customer whose name has an ampersand', async () => {
    const data = await find(qb, 'findCustomers', { DisplayName: 'Robertson & Associates' });
    assert.deepEqual(rows(data, 'Customer').map((c) => c.Id), ['2']);
  });

  it('finds a customer by GivenName + FamilyName (the worker then compares emails)', async () => {
    const data = await find(qb, 'findCustomers', [
      { field: 'GivenName', value: 'Ada' }, { field: 'FamilyName', value: 'Lovelace' }]);
    const found = rows(data, 'Customer');
    assert.deepEqual(found.map((c) => c.Id), ['3']);
    assert.notEqual(found[0].PrimaryEmailAddr.Address.toLowerCase(), 'ada@example.com',
      'seeded: same name as HubSpot contact 301, another email');
  });

  it('no match answers {"QueryResponse":{}} with no entity key and no paging', async () => {
    const data = await find(qb, 'findCustomers', { DisplayName: "Nobody O'Neverseen" });
    assert.deepEqual(data.QueryResponse, {});
    assert.ok(data.time);
  });

  it('count(*) answers totalCount, equal to the rows a full fetch returns', async () => {
    const count = await find(qb, 'findCustomers', { count: true });
    assert.deepEqual(Object.keys(count.QueryResponse), ['totalCount']);
    const all = await find(qb, 'findCustomers', { fetchAll: true });
    assert.equal(count.QueryResponse.totalCount, rows(all, 'Customer').length);
    assert.ok(!rows(all, 'Customer').some((c) => c.Active === false), 'inactive customers hidden');
  });

  it('pages with startposition/maxresults (fetchAll with a page size of 2)', async () => {
    await sandbox.clearRequests();
    const all = await find(qb, 'findCustomers', { fetchAll: true, limit: 2 });
    const got = rows(all, 'Customer').map((c) => Number(c.Id));
    assert.ok(got.length >= 5, `seeded active customers: ${got}`);
    assert.deepEqual(got, [...got].sort((a, b) => a - b), 'rows in Id order');
    assert.equal(new Set(got).size, got.length, 'no row twice across pages');
    const log = await sandbox.requests({ vendor: 'qbo' });
    assert.equal(log.requests.length, Math.floor(got.length / 2) + 1);
    assert.match(log.requests[1].query, /startposition 3 maxresults 2/);
  });

  it('maxresults above 1000 is 400/4001', async () => {
    const { status, fault } = await findError(find(qb, 'findCustomers', { limit: 1001 }));
    assert.equal(status, 400);
    assert.equal(fault.code, '4001');
    assert.match(fault.Detail, /QueryValidationError/);
  });

  it('PrimaryEmailAddr is not queryable (400/4001, reference §12 #11)', async () => {
    const { status, fault } = await findError(find(qb, 'findCustomers',
      { PrimaryEmailAddr: 'ada@example.com' }));
    assert.equal(status, 400);
    assert.equal(fault.code, '4001');
  });

  it('finds items by Sku and by Name', async () => {
    const bySku = await find(qb, 'findItems', { Sku: 'CONS-HR' });
    assert.deepEqual(rows(bySku, 'Item').map((i) => [i.Id, i.Name]), [['3', 'Consulting hour']]);
    const many = await find(qb, 'findItems', { Sku: ['CONS-HR', 'WID-001'] });
    assert.deepEqual(rows(many, 'Item').map((i) => i.Id), ['3', '4']);
    const byName = await find(qb, 'findItems', { Name: 'Widget' });
    assert.deepEqual(rows(byName, 'Item').map((i) => i.Id), ['4']);
    const none = await find(qb, 'findItems', { Sku: 'NO-SUCH-SKU' });
    assert.deepEqual(none.QueryResponse, {});
  });

  it('finds a term by name', async () => {
    const net30 = await find(qb, 'findTerms', { Name: 'Net 30' });
    const t = rows(net30, 'Term');
    assert.deepEqual(t.map((x) => [x.Id, x.DueDays]), [['3', 30]]);
    const net15 = await find(qb, 'findTerms', { Name: 'Net 15' });
    assert.deepEqual(rows(net15, 'Term').map((x) => x.Id), ['2']);
    const none = await find(qb, 'findTerms', { Name: 'Net 45' });
    assert.deepEqual(none.QueryResponse, {});
  });

  it('finds income accounts by AccountType', async () => {
    const data = await find(qb, 'findAccounts', { AccountType: 'Income' });
    const names = rows(data, 'Account').map((a) => a.Name);
    assert.ok(names.includes('Sales') && names.includes('Services'), names.join());
  });

  it('POST /query with an application/text body (intuit-oauth makeApiCall)', async () => {
    const oc = new OAuthClient({ environment: 'sandbox', clientId: QBO.CLIENT_ID,
      clientSecret: QBO.CLIENT_SECRET, token: { access_token: QBO.AT[QBO.US1] } });
    const res = await oc.makeApiCall({
      url: `${sandbox.qboBase}${QBO.US1}/query?minorversion=75`, method: 'POST',
      headers: { 'Content-Type': 'application/text' },
      body: "SELECT * FROM Customer WHERE GivenName = 'Ada' AND FamilyName = 'Lovelace' MAXRESULTS 10 STARTPOSITION 1",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.QueryResponse.Customer.map((c) => c.Id), ['3']);
    assert.match(res.headers.intuit_tid, INTUIT_TID_RE);
  });
});

describe('QBO CompanyInfo and Preferences with node-quickbooks', () => {
  before(() => sandbox.reset());

  it('reads CompanyInfo of a US and of a Canadian company', async () => {
    const us = await call(qboClient(QBO.US1), 'getCompanyInfo', QBO.US1);
    assert.equal(us.err, null);
    assert.equal(us.status, 200);
    assert.equal(us.body.Country, 'US');
    assert.ok(us.body.CompanyName);
    assert.equal(us.res.headers['content-type'], 'application/json;charset=utf-8');
    assert.match(us.res.headers.intuit_tid, INTUIT_TID_RE);
    const ca = await call(qboClient(QBO.CA1), 'getCompanyInfo', QBO.CA1);
    assert.equal(ca.body.Country, 'CA');
  });

  it('reads Preferences (home currency)', async () => {
    const p = await call(qboClient(), 'getPreferences');
    assert.equal(p.body.CurrencyPrefs.HomeCurrency.value, 'USD');
  });

  it("a token of one realm cannot read another realm's company (401)", async () => {
    const r = await call(qboClient(QBO.US2, QBO.AT[QBO.US1]), 'getCompanyInfo', QBO.US2);
    assert.equal(r.status, 401);
  });
});

describe('QBO creates with requestid (node-quickbooks entity.requestId)', () => {
  const qb = qboClient();
  const today = todayAt(US1_OFFSET);
  let invoice;

  before(async () => {
    await sandbox.reset();
    await sandbox.config({ qbo: { query_entity_case_insensitive: true } });
  });

  it('creates a customer; a replay with the same requestid returns the same entity', async () => {
    const body = () => ({
      DisplayName: "Seán O'Brien", GivenName: 'Seán', FamilyName: "O'Brien",
      PrimaryEmailAddr: { Address: 'sean.obrien@example.ie' }, requestId: 'ct-cust-0001',
    });
    const first = await call(qb, 'createCustomer', body());
    assert.equal(first.err, null, JSON.stringify(first.data));
    assert.equal(first.status, 200);
    assert.match(first.body.Id, /^\d+$/);
    assert.equal(first.body.SyncToken, '0');
    assert.equal(first.body.DisplayName, "Seán O'Brien");
    assert.equal(first.body.Active, true);
    const replay = await call(qb, 'createCustomer', body());
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.data, first.data, 'replayed byte for byte (same time, same Id)');
    const st = await qboState();
    assert.equal(st.Customer.filter((c) => c.DisplayName === "Seán O'Brien").length, 1);
    // ... and the query path finds it by the HubSpot contact's names.
    const data = await find(qb, 'findCustomers', [
      { field: 'GivenName', value: 'Seán' }, { field: 'FamilyName', value: "O'Brien" }]);
    assert.deepEqual(rows(data, 'Customer').map((c) => c.Id), [first.body.Id]);
  });

  it('a duplicate DisplayName (any case) is 400/6240 with the recorded body', async () => {
    const r = await call(qb, 'createCustomer', { DisplayName: "amy's bird sanctuary" });
    assert.equal(r.status, 400);
    assert.ok(r.err, 'node-quickbooks reports an error');
    assert.equal(r.data.Fault.type, 'ValidationFault');
    assert.equal(r.fault.code, '6240');
    assert.equal(r.fault.Message, 'Duplicate Name Exists Error');
    assert.equal('element' in r.fault, false);
    assert.equal(r.res.headers['content-type'], 'application/json');
    assert.match(r.res.headers.intuit_tid, INTUIT_TID_RE);
    // Unique across Customer, Vendor and Employee.
    const vendorName = await call(qb, 'createCustomer', { DisplayName: 'Books by Bessie' });
    assert.equal(vendorName.fault.code, '6240');
  });

  it('creates a Service item; replay returns it; a duplicate Name is 6240', async () => {
    const body = () => ({ Name: 'Custom engraving', Type: 'Service', Sku: 'ENG-001',
      IncomeAccountRef: { value: '79' }, UnitPrice: 40, requestId: 'ct-item-0001' });
    const first = await call(qb, 'createItem', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    assert.equal(first.body.Name, 'Custom engraving');
    assert.equal(first.body.Type, 'Service');
    assert.equal(first.body.IncomeAccountRef.value, '79');
    const replay = await call(qb, 'createItem', body());
    assert.deepEqual(replay.data, first.data);
    const dup = await call(qb, 'createItem', { Name: 'CUSTOM ENGRAVING', Type: 'Service',
      IncomeAccountRef: { value: '79' } });
    assert.equal(dup.status, 400);
    assert.equal(dup.fault.code, '6240');
    const bySku = await find(qb, 'findItems', { Sku: 'ENG-001' });
    assert.deepEqual(rows(bySku, 'Item').map((i) => i.Id), [first.body.Id]);
  });

  it('a Service item without IncomeAccountRef is 400/2020 naming the element', async () => {
    const r = await call(qb, 'createItem', { Name: 'No account', Type: 'Service' });
    assert.equal(r.status, 400);
    assert.equal(r.fault.code, '2020');
    assert.equal(r.fault.element, 'IncomeAccountRef');
  });

  it('creates an invoice with the documented defaults; replay creates nothing', async () => {
    const body = () => ({
      CustomerRef: { value: '3' }, SalesTermRef: { value: '3' }, PrivateNote: 'hsqb evt ct-1',
      Line: [
        { DetailType: 'SalesItemLineDetail', Amount: 375, Description: 'Consulting',
          SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 2.5, UnitPrice: 150 } },
        { DetailType: 'SalesItemLineDetail', Amount: 30,
          SalesItemLineDetail: { ItemRef: { value: '4' }, Qty: 0.75, UnitPrice: 40 } },
      ],
      requestId: 'ct-inv-0001',
    });
    const first = await call(qb, 'createInvoice', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    invoice = first.body;
    assert.equal(invoice.DocNumber, '1037', 'next number after the seeded 1036');
    assert.equal(invoice.TxnDate, today);
    assert.equal(invoice.DueDate, plusDays(today, 30), 'Net 30');
    assert.equal(invoice.TotalAmt, 405);
    assert.equal(invoice.Balance, 405);
    assert.equal(invoice.CustomerRef.name, 'Ada Lovelace');
    assert.equal(invoice.SyncToken, '0');
    const last = invoice.Line[invoice.Line.length - 1];
    assert.equal(last.DetailType, 'SubTotalLineDetail');
    assert.equal(last.Amount, 405);
    assert.equal(last.Id, undefined);
    assert.deepEqual(invoice.Line.slice(0, 2).map((l) => [l.Id, l.LineNum]), [['1', 1], ['2', 2]]);
    assert.equal(invoice.Line[0].SalesItemLineDetail.TaxCodeRef.value, 'NON');

    const replay = await call(qb, 'createInvoice', body());
    assert.deepEqual(replay.data, first.data);
    const st = await qboState();
    assert.equal(st.Invoice.filter((i) => i.PrivateNote === 'hsqb evt ct-1').length, 1);
    const read = await call(qb, 'getInvoice', invoice.Id);
    assert.equal(read.body.DocNumber, '1037');
  });

  it('an Amount that is not Qty × UnitPrice is 400/6070', async () => {
    const r = await call(qb, 'createInvoice', {
      CustomerRef: { value: '3' },
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 376,
        SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 2.5, UnitPrice: 150 } }],
      requestId: 'ct-inv-6070',
    });
    assert.equal(r.status, 400);
    assert.equal(r.fault.code, '6070');
    assert.match(r.fault.Message + ' ' + r.fault.Detail, /Amount is not equal to UnitPrice \* Qty/);
    // The fault was stored under the requestid: a replay answers the same fault.
    const replay = await call(qb, 'createInvoice', {
      CustomerRef: { value: '3' },
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 375,
        SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 2.5, UnitPrice: 150 } }],
      requestId: 'ct-inv-6070',
    });
    assert.equal(replay.status, 400);
    assert.deepEqual(replay.data, r.data);
  });

  it('creates an estimate (TxnStatus Pending); replay returns it', async () => {
    const body = () => ({ CustomerRef: { value: '3' }, requestId: 'ct-est-0001',
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 150,
        SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 1, UnitPrice: 150 } }] });
    const first = await call(qb, 'createEstimate', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    assert.equal(first.body.TxnStatus, 'Pending');
    assert.equal(first.body.TotalAmt, 150);
    const replay = await call(qb, 'createEstimate', body());
    assert.deepEqual(replay.data, first.data);
    assert.equal((await qboState()).Estimate.length, 1);
  });

  it('creates a sales receipt deposited to Undeposited Funds; replay returns it', async () => {
    const body = () => ({ CustomerRef: { value: '3' }, requestId: 'ct-sr-0001',
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 59.97,
        SalesItemLineDetail: { ItemRef: { value: '4' }, Qty: 3, UnitPrice: 19.99 } }] });
    const first = await call(qb, 'createSalesReceipt', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    assert.equal(first.body.DepositToAccountRef.value, '4');
    assert.equal(first.body.TotalAmt, 59.97);
    const before = (await qboState()).SalesReceipt.length;
    const replay = await call(qb, 'createSalesReceipt', body());
    assert.deepEqual(replay.data, first.data);
    assert.equal((await qboState()).SalesReceipt.length, before);
  });

  it('creates a payment linked to the invoice: Balance drops once, even on replay', async () => {
    assert.ok(invoice, 'needs the invoice created above');
    const body = () => ({ CustomerRef: { value: '3' }, TotalAmt: 100, requestId: 'ct-pay-0001',
      Line: [{ Amount: 100, LinkedTxn: [{ TxnId: invoice.Id, TxnType: 'Invoice' }] }] });
    const first = await call(qb, 'createPayment', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    const pay = first.body;
    assert.equal(pay.TotalAmt, 100);
    assert.equal(pay.DepositToAccountRef.value, '4');
    const replay = await call(qb, 'createPayment', body());
    assert.deepEqual(replay.data, first.data);
    const inv = (await call(qb, 'getInvoice', invoice.Id)).body;
    assert.equal(inv.Balance, 305);
    assert.equal(inv.SyncToken, '1');
    assert.deepEqual(inv.LinkedTxn, [{ TxnId: pay.Id, TxnType: 'Payment' }]);
  });

  it('reading an unknown invoice is 400/610', async () => {
    const r = await call(qb, 'getInvoice', '999999');
    assert.equal(r.status, 400);
    assert.equal(r.fault.code, '610');
  });
});

describe('QBO sales tax, discounts and currencies with node-quickbooks (issue 15)', () => {
  // The worker reads Preferences once per realm, sends TaxCodeRef, one amount-based
  // DiscountLineDetail line and TxnTaxDetail.TotalTax, then checks TotalAmt/Balance.
  before(async () => {
    await sandbox.reset();
    await sandbox.config({ qbo: { query_entity_case_insensitive: true } });
  });

  it('reads Preferences: sales tax, Automated Sales Tax and multicurrency per realm', async () => {
    const want = [[QBO.US1, false, false], [QBO.AST1, true, false], [QBO.MC1, true, true]];
    for (const [realm, ast, mc] of want) {
      const p = await call(qboClient(realm), 'getPreferences');
      assert.equal(p.status, 200, JSON.stringify(p.data));
      assert.equal(p.body.TaxPrefs.UsingSalesTax, true, realm);
      assert.equal(p.body.TaxPrefs.PartnerTaxEnabled, ast, realm);
      assert.equal(p.body.CurrencyPrefs.MultiCurrencyEnabled, mc, realm);
      assert.equal(p.body.CurrencyPrefs.HomeCurrency.value, 'USD', realm);
    }
  });

  it('an AST invoice with a discount line and TotalTax: QBO books exactly that total', async () => {
    const qb = qboClient(QBO.AST1);
    const body = () => ({
      CustomerRef: { value: '2' }, requestId: 'ct-ast-inv-0001', PrivateNote: 'hsqb evt ct-ast',
      Line: [
        { DetailType: 'SalesItemLineDetail', Amount: 300,
          SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 2, UnitPrice: 150, TaxCodeRef: { value: 'TAX' } } },
        { DetailType: 'SalesItemLineDetail', Amount: 19.99,
          SalesItemLineDetail: { ItemRef: { value: '1' }, Qty: 1, UnitPrice: 19.99, TaxCodeRef: { value: 'NON' } } },
        { DetailType: 'DiscountLineDetail', Amount: 31.99, Description: 'Quote discount',
          DiscountLineDetail: { PercentBased: false } },
      ],
      TxnTaxDetail: { TotalTax: 18.03 },
    });
    const first = await call(qb, 'createInvoice', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    const inv = first.body;
    assert.equal(inv.TotalAmt, 306.03, '319.99 - 31.99 + 18.03');
    assert.equal(inv.Balance, 306.03);
    assert.equal(inv.TxnTaxDetail.TotalTax, 18.03, 'AST honours an explicit TotalTax');
    assert.equal(inv.Line[2].DetailType, 'DiscountLineDetail');
    assert.equal(inv.Line[2].Amount, 31.99);
    assert.equal(inv.Line[inv.Line.length - 1].Amount, 319.99, 'subtotal line');
    const replay = await call(qb, 'createInvoice', body());
    assert.deepEqual(replay.data, first.data);
    // Read back the way the worker verifies: by id, and by query.
    const read = await call(qb, 'getInvoice', inv.Id);
    assert.equal(read.body.TotalAmt, 306.03);
    assert.equal(read.body.Balance, 306.03);
    const found = rows(await find(qb, 'findInvoices', { Id: inv.Id }), 'Invoice');
    assert.deepEqual(found.map((i) => [i.Id, i.TotalAmt, i.Balance]), [[inv.Id, 306.03, 306.03]]);
  });

  it('an AST invoice without TotalTax gets the tax AST computes at the ShipAddr rate', async () => {
    const r = await call(qboClient(QBO.AST1), 'createInvoice', {
      CustomerRef: { value: '2' }, // ShipAddr in TX: 6.25 %
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 100,
        SalesItemLineDetail: { ItemRef: { value: '4' }, TaxCodeRef: { value: 'NON' } } }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.equal(r.body.Line[0].SalesItemLineDetail.TaxCodeRef.value, 'TAX', 'AST overrides the code');
    assert.equal(r.body.TxnTaxDetail.TotalTax, 6.25);
    assert.equal(r.body.TotalAmt, 106.25);
  });

  it('multicurrency: a EUR invoice records ExchangeRate and HomeTotalAmt; a mismatch is 6000', async () => {
    const qb = qboClient(QBO.MC1);
    const cust = await call(qb, 'createCustomer', { DisplayName: 'Émile Zola', CurrencyRef: { value: 'EUR' } });
    assert.equal(cust.status, 200, JSON.stringify(cust.data));
    assert.deepEqual(cust.body.CurrencyRef, { value: 'EUR', name: 'Euro' });
    // the company's rate for the day, sent with the invoice: QBO books 1:1 otherwise
    const rate = await call(qb, 'getExchangeRate', { sourcecurrencycode: 'EUR', asofdate: '2024-03-05' });
    assert.equal(rate.status, 200, JSON.stringify(rate.data));
    const xr = rate.body.ExchangeRate; // node-quickbooks hands back the whole answer here
    assert.deepEqual([xr.SourceCurrencyCode, xr.TargetCurrencyCode, xr.Rate],
      ['EUR', 'USD', 1.08]);
    const inv = await call(qb, 'createInvoice', {
      CustomerRef: { value: cust.body.Id }, CurrencyRef: { value: 'EUR' },
      ExchangeRate: xr.Rate,
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 250,
        SalesItemLineDetail: { ItemRef: { value: '1' }, TaxCodeRef: { value: 'NON' } } }],
      TxnTaxDetail: { TotalTax: 0 },
    });
    assert.equal(inv.status, 200, JSON.stringify(inv.data));
    assert.equal(inv.body.CurrencyRef.value, 'EUR');
    assert.equal(inv.body.ExchangeRate, 1.08);
    assert.equal(inv.body.TotalAmt, 250);
    assert.equal(inv.body.HomeTotalAmt, 270);
    const bad = await call(qb, 'createInvoice', {
      CustomerRef: { value: cust.body.Id }, CurrencyRef: { value: 'GBP' },
      Line: [{ DetailType: 'SalesItemLineDetail', Amount: 1, SalesItemLineDetail: { ItemRef: { value: '1' } } }],
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.fault.code, '6000');
    assert.equal(bad.fault.element, 'CurrencyRef');
    const off = await call(qboClient(QBO.US1), 'createCustomer', { DisplayName: 'Émile Zola', CurrencyRef: { value: 'EUR' } });
    assert.equal(off.status, 400, 'multicurrency off: a foreign CurrencyRef is refused');
    assert.equal(off.fault.code, '6000');
  });
});

describe('QBO lookups the worker makes for accounts, vendors, payment methods, duplicates', () => {
  const qb = qboClient();
  before(async () => {
    await sandbox.reset();
    await sandbox.config({ qbo: { query_entity_case_insensitive: true } });
  });

  it('finds accounts by FullyQualifiedName and Name; inactive ones only when Active is filtered', async () => {
    const fqn = await find(qb, 'findAccounts', { FullyQualifiedName: 'Bank Charges' });
    assert.deepEqual(rows(fqn, 'Account').map((a) => a.Id), ['58']);
    const byName = await find(qb, 'findAccounts', { Name: 'Checking' });
    assert.deepEqual(rows(byName, 'Account').map((a) => [a.Id, a.AccountType]), [['35', 'Bank']]);
    const inactive = await find(qb, 'findAccounts', { Name: 'Old Promotions' });
    assert.deepEqual(inactive.QueryResponse, {}, 'name lists hide inactive rows by default');
    const withActive = await find(qb, 'findAccounts', { Name: 'Old Promotions', Active: false });
    assert.deepEqual(rows(withActive, 'Account').map((a) => a.Id), ['90']);
  });

  it('finds a vendor by DisplayName and a payment method by Name', async () => {
    const v = await find(qb, 'findVendors', { DisplayName: 'Stripe' });
    assert.deepEqual(rows(v, 'Vendor').map((x) => x.Id), ['57']);
    const pm = await find(qb, 'findPaymentMethods', { Name: 'Visa' });
    assert.deepEqual(rows(pm, 'PaymentMethod').map((x) => [x.Id, x.Type]), [['3', 'CREDIT_CARD']]);
  });

  it('finds an invoice by CustomerRef AND TxnDate (the re-send duplicate check)', async () => {
    const hit = await find(qb, 'findInvoices', [
      { field: 'CustomerRef', value: '1' }, { field: 'TxnDate', value: '2024-02-01' }]);
    assert.deepEqual(rows(hit, 'Invoice').map((i) => [i.Id, i.DocNumber]), [['130', '1036']]);
    const miss = await find(qb, 'findInvoices', [
      { field: 'CustomerRef', value: '1' }, { field: 'TxnDate', value: '2024-02-02' }]);
    assert.deepEqual(miss.QueryResponse, {});
  });

  it('reads entities by id: found, unknown (400/610) and non-numeric (400/2030)', async () => {
    const acct = await call(qb, 'getAccount', '79');
    assert.equal(acct.status, 200);
    assert.equal(acct.body.Name, 'Sales');
    const item = await call(qb, 'getItem', '3');
    assert.equal(item.body.Sku, 'CONS-HR');
    const missing = await call(qb, 'getVendor', '4242');
    assert.equal(missing.status, 400);
    assert.equal(missing.fault.code, '610');
    const bad = await call(qb, 'getVendor', 'abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.fault.code, '2030');
  });

  it('creates a vendor with requestid; a name taken by a customer is 6240', async () => {
    const body = () => ({ DisplayName: 'HubSpot Payments', requestId: 'ct-vendor-0001' });
    const first = await call(qb, 'createVendor', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    const replay = await call(qb, 'createVendor', body());
    assert.deepEqual(replay.data, first.data);
    const dup = await call(qb, 'createVendor', { DisplayName: 'Ada Lovelace' });
    assert.equal(dup.status, 400);
    assert.equal(dup.fault.code, '6240');
  });
});

describe('QBO expense and refund documents (Purchase, RefundReceipt)', () => {
  const qb = qboClient();
  before(() => sandbox.reset());

  it('creates a fee Purchase paid from the bank account; replay returns it', async () => {
    const body = () => ({ PaymentType: 'Cash', AccountRef: { value: '35' },
      EntityRef: { value: '57', type: 'Vendor' }, PrivateNote: 'hsqb evt ct-fee', requestId: 'ct-pur-0001',
      Line: [{ DetailType: 'AccountBasedExpenseLineDetail', Amount: 59.87,
        AccountBasedExpenseLineDetail: { AccountRef: { value: '58' } } }] });
    const first = await call(qb, 'createPurchase', body());
    assert.equal(first.status, 200, JSON.stringify(first.data));
    assert.equal(first.body.TotalAmt, 59.87);
    assert.equal(first.body.EntityRef.name, 'Stripe');
    const replay = await call(qb, 'createPurchase', body());
    assert.deepEqual(replay.data, first.data);
    assert.equal((await qboState()).Purchase.length, 1);
  });

  it('a Purchase without PaymentType is rejected (400/2020)', async () => {
    const r = await call(qb, 'createPurchase', { AccountRef: { value: '35' },
      Line: [{ DetailType: 'AccountBasedExpenseLineDetail', Amount: 1,
        AccountBasedExpenseLineDetail: { AccountRef: { value: '58' } } }] });
    assert.equal(r.status, 400);
    assert.equal(r.fault.code, '2020');
  });

  it('creates a RefundReceipt from Checking; without DepositToAccountRef it is 400/2020', async () => {
    const line = [{ DetailType: 'SalesItemLineDetail', Amount: 100,
      SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 1, UnitPrice: 100 } }];
    const ok = await call(qb, 'createRefundReceipt', { CustomerRef: { value: '3' },
      DepositToAccountRef: { value: '35' }, Line: line, requestId: 'ct-rr-0001' });
    assert.equal(ok.status, 200, JSON.stringify(ok.data));
    assert.equal(ok.body.TotalAmt, 100);
    const bad = await call(qb, 'createRefundReceipt', { CustomerRef: { value: '3' }, Line: line });
    assert.equal(bad.status, 400);
    assert.equal(bad.fault.code, '2020');
  });
});

describe('QBO throttling (429 ThrottleExceeded)', () => {
  beforeEach(() => sandbox.reset());
  after(() => sandbox.reset());

  /** Spend US2's per-minute budget (set to 2). */
  async function exhaustUS2() {
    await sandbox.config({ qbo_rate_min: 2 });
    const qb = qboClient(QBO.US2);
    assert.equal((await call(qb, 'getCompanyInfo', QBO.US2)).status, 200);
    assert.equal((await call(qb, 'getPreferences')).status, 200);
    return qb;
  }

  it('answers 429 with the XML body once the per-minute budget is spent', async () => {
    const qb = await exhaustUS2();
    const r = await call(qb, 'getCompanyInfo', QBO.US2);
    assert.equal(r.status, 429);
    assert.match(r.res.headers['content-type'], /xml/);
    assert.match(r.data, /<Error code="3001">/);
    assert.match(r.data, /message=ThrottleExceeded; errorCode=003001; statusCode=429/);
    assert.match(r.res.headers.intuit_tid, INTUIT_TID_RE);
    // Per realm: US1 still has its budget.
    assert.equal((await call(qboClient(QBO.US1), 'getCompanyInfo', QBO.US1)).status, 200);
  });

  it('a throttled create is not stored under its requestid: the retry creates it', async () => {
    const qb = await exhaustUS2();
    const body = () => ({ DisplayName: 'Throttled Customer', requestId: 'ct-429-cust' });
    assert.equal((await call(qb, 'createCustomer', body())).status, 429);
    await sandbox.config({ qbo_rate_min: 0 });
    const r = await call(qb, 'createCustomer', body());
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.equal(r.body.DisplayName, 'Throttled Customer');
  });

  it('more concurrent requests than the per-realm limit: the extra one is 429', async () => {
    await sandbox.config({ latency_ms: 500, qbo_concurrent: 2 });
    const qb = qboClient(QBO.US1);
    const got = await Promise.all([1, 2, 3].map(() => call(qb, 'getCompanyInfo', QBO.US1)));
    assert.deepEqual(got.map((r) => r.status).sort(), [200, 200, 429]);
  });

  it('intuit-oauth makeApiCall maps the 429 to RATE_LIMIT_EXCEEDED', async () => {
    await exhaustUS2();
    const oc = new OAuthClient({ environment: 'sandbox', clientId: QBO.CLIENT_ID,
      clientSecret: QBO.CLIENT_SECRET, token: { access_token: QBO.AT[QBO.US2] } });
    await assert.rejects(
      oc.makeApiCall({ url: `${sandbox.qboBase}${QBO.US2}/companyinfo/${QBO.US2}` }),
      (e) => e.code === 'RATE_LIMIT_EXCEEDED' && INTUIT_TID_RE.test(e.intuitTid));
  });
});
