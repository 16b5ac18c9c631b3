'use strict';
// HubSpot's official Node client (@hubspot/api-client 13.x) against hsqb-sandbox, for
// every HubSpot route the worker calls (design.md §4 steps 3 and 10) and the errors it
// must tell apart (hubspot-api.md §6, §7). The client is redirected with its supported
// `basePath` option; nothing in node_modules is patched.

const { describe, it, before, beforeEach, after } = require('node:test');
const assert = require('node:assert/strict');
const hubspot = require('@hubspot/api-client');
const { sandbox, HS, apiError } = require('../lib/sandbox');

function client(accessToken = HS.TOKEN1, extra = {}) {
  // numberOfApiCallRetries 0 (the default) so error tests see the first answer.
  return new hubspot.Client({ accessToken, basePath: sandbox.hubspotBase, ...extra });
}

const ids = (results) => results.map((r) => r.id);

describe('HubSpot CRM reads with @hubspot/api-client', () => {
  const hs = client();

  before(() => sandbox.reset());

  it('reads a deal with properties and associations (spaced "line items" key)', async () => {
    const info = await hs.crm.deals.basicApi.getByIdWithHttpInfo(
      '1001', ['dealname', 'amount', 'closedate'], undefined, ['contacts', 'line_items']);
    assert.equal(info.httpStatusCode, 200);
    assert.match(info.headers['content-type'], /^application\/json/);
    const deal = info.data;
    assert.equal(deal.id, '1001');
    assert.equal(deal.properties.dealname, 'Engines rollout');
    assert.equal(deal.properties.amount, '2053.97', 'property values are strings');
    assert.equal(deal.properties.hs_object_id, '1001');
    assert.equal(deal.archived, false);
    assert.ok(deal.createdAt instanceof Date && !isNaN(deal.createdAt), 'createdAt parses as a date');
    assert.ok(deal.updatedAt instanceof Date && !isNaN(deal.updatedAt));
    assert.deepEqual(Object.keys(deal.associations).sort(), ['contacts', 'line items']);
    assert.deepEqual(ids(deal.associations.contacts.results), ['301', '302', '303']);
    assert.ok(deal.associations.contacts.results.every((r) => r.type === 'deal_to_contact'));
    assert.deepEqual(ids(deal.associations['line items'].results), ['7001', '7002', '7003']);
    assert.ok(deal.associations['line items'].results.every((r) => r.type === 'deal_to_line_item'));
  });

  it('accepts the object type id (0-3) in place of "deals"', async () => {
    const deal = await hs.crm.objects.basicApi.getById('0-3', '1001', ['dealname']);
    assert.equal(deal.id, '1001');
    assert.equal(deal.properties.dealname, 'Engines rollout');
  });

  it('lists a primary company once per association type (the duplicate quirk)', async () => {
    const deal = await hs.crm.deals.basicApi.getById('1001', ['dealname'], undefined, ['companies']);
    const results = deal.associations.companies.results;
    assert.deepEqual(ids(results), ['900', '900']);
    assert.deepEqual(results.map((r) => r.type).sort(), ['deal_to_company', 'deal_to_company_unlabeled']);
  });

  it('reads a deal with default properties when none are asked for', async () => {
    const deal = await hs.crm.deals.basicApi.getById('1003');
    for (const p of ['dealname', 'amount', 'hs_object_id', 'createdate', 'hs_lastmodifieddate']) {
      assert.ok(p in deal.properties, `default property ${p}`);
    }
    assert.equal(deal.associations, undefined, 'no associations unless asked for');
  });

  it('reads a quote with contacts, line items and deal', async () => {
    const quote = await hs.crm.quotes.basicApi.getById(
      '2001', ['hs_title', 'hs_status', 'hs_quote_amount', 'hs_esign_num_signers_completed'],
      undefined, ['contacts', 'line_items', 'deals']);
    assert.equal(quote.id, '2001');
    assert.equal(quote.properties.hs_status, 'APPROVED');
    assert.equal(quote.properties.hs_quote_amount, '2053.97');
    assert.deepEqual(ids(quote.associations.contacts.results), ['301', '302', '303']);
    assert.ok(quote.associations.contacts.results.every((r) => r.type === 'quote_to_contact'));
    assert.deepEqual(ids(quote.associations['line items'].results), ['7101', '7102', '7103']);
    assert.deepEqual(ids(quote.associations.deals.results), ['1001']);
  });

  // Issue 15: the worker reads a quote's discounts, fees and taxes (tests/sandbox/README.md,
  // "Quote pricing") and must arrive at hs_quote_amount to the cent. The client has a
  // dedicated API for taxes only; discounts and fees go through the generic objects API.
  const PRICING = ['hs_label', 'hs_type', 'hs_value', 'hs_sort_order'];

  /** x * pct / 100 in cents, rounded half away from zero, exactly (BigInt). */
  function pctOf(cents, pct) {
    const [whole, frac = ''] = pct.split('.');
    const scale = 10n ** BigInt(frac.length + 2);
    const num = cents * BigInt(whole + frac);
    const mag = num < 0n ? -num : num;
    const q = (2n * mag + scale) / (2n * scale);
    return num < 0n ? -q : q;
  }
  /** "12.3" -> 1230n, exactly (HubSpot money has at most 2 decimals). */
  function cents(s) {
    const [whole, frac = ''] = s.replace('-', '').split('.');
    assert.ok(frac.length <= 2, `money ${s}`);
    const c = BigInt(whole) * 100n + BigInt(frac.padEnd(2, '0'));
    return s.startsWith('-') ? -c : c;
  }
  function money(c) {
    const mag = c < 0n ? -c : c;
    return `${c < 0n ? '-' : ''}${mag / 100n}.${String(mag % 100n).padStart(2, '0')}`;
  }

  /** Read a quote, its line items and its pricing objects the way the worker will, and
   * recompute the total: discounts (of S), then fees (of A), then taxes (of B), plus line
   * taxes. Returns [HubSpot's hs_quote_amount, ours, the quote]. */
  async function quoteFigures(id) {
    const quote = await hs.crm.quotes.basicApi.getById(id, ['hs_quote_amount', 'hs_currency'],
      undefined, ['contacts', 'line_items', 'discounts', 'fees', 'taxes']);
    const assocIds = (key) => (quote.associations[key] ? ids(quote.associations[key].results) : []);
    const read = async (type, inputIds, properties) => {
      if (!inputIds.length) return [];
      const input = { inputs: inputIds.map((i) => ({ id: i })), properties, propertiesWithHistory: [] };
      const body = type === 'taxes'
        ? await hs.crm.objects.taxes.batchApi.read(input)
        : await hs.crm.objects.batchApi.read(type, input);
      assert.equal(body.status, 'COMPLETE');
      return body.results.map((r) => r.properties);
    };
    const lines = await read('line_items', assocIds('line items'), ['amount', 'hs_tax_amount']);
    const s = lines.reduce((acc, l) => acc + cents(l.amount), 0n);
    const l = lines.reduce((acc, x) => acc + (x.hs_tax_amount ? cents(x.hs_tax_amount) : 0n), 0n);
    const apply = (items, base) => items.reduce((acc, it) => acc
      + (it.hs_type === 'PERCENT' ? pctOf(base, it.hs_value) : cents(it.hs_value)), 0n);
    const a = s - apply(await read('discounts', assocIds('discounts'), PRICING), s);
    const b = a + apply(await read('0-85', assocIds('fees'), PRICING), a);
    const t = apply(await read('taxes', assocIds('taxes'), PRICING), b);
    return [quote.properties.hs_quote_amount, money(b + t + l), quote];
  }

  it('reads a quote with its discounts, fees and taxes, batch-reads them, and its total adds up',
    async () => {
      const [hsAmount, ours, quote] = await quoteFigures('2005');
      assert.deepEqual(Object.keys(quote.associations).sort(),
        ['contacts', 'discounts', 'line items', 'taxes'], 'no fees: no fees key');
      assert.deepEqual(quote.associations.discounts.results.map((r) => [r.id, r.type]),
        [['3102', 'quote_to_discount'], ['3103', 'quote_to_discount']]);
      assert.deepEqual(quote.associations.taxes.results.map((r) => [r.id, r.type]),
        [['3301', 'quote_to_tax']]);
      assert.equal(hsAmount, '514.30');
      assert.equal(ours, hsAmount);
      for (const id of ['2004', '2007']) {
        const [theirs, mine] = await quoteFigures(id);
        assert.equal(mine, theirs, `quote ${id}`);
      }
      const [theirs, mine] = await quoteFigures('2006');
      assert.deepEqual([theirs, mine], ['175.01', '175.00'], 'HubSpot disagrees with its parts');
    });

  it('reads discounts, fees and taxes by name, singular and type id', async () => {
    const d = await hs.crm.objects.basicApi.getById('discount', '3101', PRICING.concat('hs_duration'));
    assert.deepEqual({ ...d.properties }, { ...d.properties, hs_label: 'Loyalty 10%',
      hs_type: 'PERCENT', hs_value: '10', hs_sort_order: '0', hs_duration: 'ONCE' });
    const fee = await hs.crm.objects.basicApi.getById('0-85', '3202', PRICING);
    assert.equal(fee.properties.hs_type, 'FIXED');
    assert.equal(fee.properties.hs_sort_order, null);
    const tax = await hs.crm.objects.taxes.basicApi.getById('3302', PRICING, undefined, ['quotes']);
    assert.equal(tax.properties.hs_value, '19');
    assert.deepEqual(ids(tax.associations.quotes.results), ['2007']);
    const page = await hs.crm.objects.basicApi.getPage('fees', 2, undefined, PRICING);
    assert.deepEqual(ids(page.results), ['3201', '3202']);
    assert.ok(page.paging.next.after);
  });

  it('v4 associations of a quote to its discounts, fees and taxes use 362 / 364 / 366',
    async () => {
      const typeIds = async (from, id, to) => (await hs.crm.associations.v4.basicApi
        .getPage(from, id, to)).results.map((r) => [String(r.toObjectId), r.associationTypes[0].typeId]);
      assert.deepEqual(await typeIds('quotes', '2004', 'discounts'), [['3101', 362]]);
      assert.deepEqual(await typeIds('quotes', '2004', 'fees'), [['3201', 364], ['3202', 364]]);
      assert.deepEqual(await typeIds('quotes', '2005', 'taxes'), [['3301', 366]]);
      assert.deepEqual(await typeIds('taxes', '3301', 'quotes'), [['2005', 367]]);
    });

  it('reads a quote with no contact (no contacts key at all)', async () => {
    const quote = await hs.crm.quotes.basicApi.getById('2003', ['hs_title'], undefined,
      ['contacts', 'line_items']);
    assert.equal(quote.associations.contacts, undefined);
    assert.deepEqual(ids(quote.associations['line items'].results), ['7105']);
  });

  it('reads a commerce payment through the generic objects API (name and 0-101)', async () => {
    const props = ['hs_initial_amount', 'hs_fees_amount', 'hs_refunds_amount', 'hs_latest_status',
      'hs_currency_code', 'hs_customer_email'];
    const pay = await hs.crm.objects.basicApi.getById('commerce_payments', '8001', props, undefined,
      ['contacts', 'line_items', 'deals']);
    assert.equal(pay.id, '8001');
    assert.equal(pay.properties.hs_initial_amount, '2053.97');
    assert.equal(pay.properties.hs_fees_amount, '59.87');
    assert.equal(pay.properties.hs_latest_status, 'succeeded');
    assert.deepEqual(ids(pay.associations.contacts.results), ['301']);
    assert.deepEqual(ids(pay.associations['line items'].results), ['7201', '7202', '7203']);
    assert.deepEqual(ids(pay.associations.deals.results), ['1001']);

    const refunded = await hs.crm.objects.basicApi.getById('0-101', '8003', props);
    assert.equal(refunded.properties.hs_latest_status, 'refunded');
    assert.equal(refunded.properties.hs_refunds_amount, refunded.properties.hs_initial_amount);
  });

  it('reads contacts: apostrophes, accents and emoji survive; a missing email is null', async () => {
    const props = ['firstname', 'lastname', 'email'];
    const sean = await hs.crm.contacts.basicApi.getById('302', props);
    assert.equal(sean.properties.firstname, 'Seán');
    assert.equal(sean.properties.lastname, "O'Brien");
    assert.equal(sean.properties.email, 'sean.obrien@example.ie');
    const lukasz = await hs.crm.contacts.basicApi.getById('304', props);
    assert.equal(lukasz.properties.firstname, 'Łukasz 🚀');
    const noEmail = await hs.crm.contacts.basicApi.getById('305', props);
    assert.equal(noEmail.properties.lastname, "D'Souza");
    assert.equal(noEmail.properties.email, null, 'requested property without a value is null (§9 #1)');
  });

  it('batch-reads line items (200, COMPLETE, every property a string)', async () => {
    const properties = ['name', 'quantity', 'price', 'amount', 'hs_sku', 'hs_product_id',
      'description', 'discount', 'hs_tax_rate_group_id'];
    const info = await hs.crm.lineItems.batchApi.readWithHttpInfo({
      inputs: [{ id: '7001' }, { id: '7002' }, { id: '7003' }], properties, propertiesWithHistory: [],
    }, false);
    assert.equal(info.httpStatusCode, 200);
    const body = info.data;
    assert.equal(body.status, 'COMPLETE');
    assert.ok(body.startedAt instanceof Date && body.completedAt instanceof Date);
    assert.equal(body.errors, undefined);
    const byId = Object.fromEntries(body.results.map((r) => [r.id, r.properties]));
    assert.deepEqual(Object.keys(byId).sort(), ['7001', '7002', '7003']);
    assert.equal(byId['7001'].hs_sku, 'CONS-HR');
    assert.equal(byId['7001'].quantity, '10');
    assert.equal(byId['7002'].discount, '2.00');
    assert.equal(byId['7003'].hs_tax_rate_group_id, '1001');
    assert.equal(byId['7003'].hs_sku, null, 'requested property without a value is null');
  });

  it('batch read with missing ids answers 207 with the documented error shape', async () => {
    const info = await hs.crm.lineItems.batchApi.readWithHttpInfo({
      inputs: [{ id: '7004' }, { id: '999001' }, { id: '7005' }, { id: '999002' }],
      properties: ['name', 'quantity'], propertiesWithHistory: [],
    });
    assert.equal(info.httpStatusCode, 207);
    const body = info.data;
    assert.equal(body.status, 'COMPLETE');
    assert.deepEqual(ids(body.results).sort(), ['7004', '7005']);
    assert.equal(body.numErrors, 1);
    assert.equal(body.errors.length, 1);
    const err = body.errors[0];
    assert.equal(err.status, 'error');
    assert.equal(err.category, 'OBJECT_NOT_FOUND');
    assert.match(err.message,
      /^Could not get some LINE_ITEM objects, they may be deleted or not exist\. Check that ids are valid\.$/);
    assert.deepEqual([...err.context.ids].sort(), ['999001', '999002']);
  });

  it('batch read above 100 inputs is a 400 VALIDATION_ERROR', async () => {
    const inputs = Array.from({ length: 101 }, (_, i) => ({ id: String(7001 + i) }));
    const e = await apiError(hs.crm.lineItems.batchApi.read({ inputs, properties: ['name'],
      propertiesWithHistory: [] }));
    assert.equal(e.code, 400);
    assert.equal(e.body.category, 'VALIDATION_ERROR');
  });

  it('reads v4 associations (numeric toObjectId, associationTypes, paging)', async () => {
    const page = await hs.crm.associations.v4.basicApi.getPage('deals', '1001', 'contacts', undefined, 500);
    assert.deepEqual(page.results.map((r) => String(r.toObjectId)), ['301', '302', '303']);
    for (const r of page.results) {
      assert.deepEqual(r.associationTypes.map((t) => ({ ...t })),
        [{ category: 'HUBSPOT_DEFINED', typeId: 3, label: null }]);
    }
    assert.equal(page.paging, undefined, 'no paging on the last page');

    // The raw body: toObjectId is a JSON number (hubspot-api.md §9 #5).
    const raw = await hs.apiRequest({ method: 'GET',
      path: '/crm/v4/objects/deals/1001/associations/contacts?limit=2' });
    assert.equal(raw.status, 200);
    const json = await raw.json();
    assert.equal(typeof json.results[0].toObjectId, 'number');
    assert.equal(json.results.length, 2);
    assert.ok(json.paging.next.after, 'paging.next.after when more remain');

    const rest = await hs.crm.associations.v4.basicApi.getPage('deals', '1001', 'contacts',
      json.paging.next.after, 2);
    assert.deepEqual(rest.results.map((r) => String(r.toObjectId)), ['303']);
  });

  it('v4 associations carry every type of one target (primary + unlabeled company)', async () => {
    const page = await hs.crm.associations.v4.basicApi.getPage('deals', '1001', 'companies');
    assert.equal(page.results.length, 1);
    const types = page.results[0].associationTypes.map((t) => t.typeId).sort((a, b) => a - b);
    assert.deepEqual(types, [5, 341]);
    const primary = page.results[0].associationTypes.find((t) => t.typeId === 5);
    assert.equal(primary.label, 'Primary');
  });

  it('v4 associations of a payment and a quote use the reference type ids', async () => {
    const pay = await hs.crm.associations.v4.basicApi.getPage('commerce_payments', '8001', 'contacts');
    assert.deepEqual(pay.results.map((r) => [String(r.toObjectId), r.associationTypes[0].typeId]),
      [['301', 387]]);
    const quote = await hs.crm.associations.v4.basicApi.getPage('quotes', '2001', 'line_items');
    assert.deepEqual(quote.results.map((r) => r.associationTypes[0].typeId), [67, 67, 67]);
  });
});

describe('HubSpot errors with @hubspot/api-client', () => {
  before(() => sandbox.reset());

  it('404 OBJECT_NOT_FOUND for an unknown deal, with the standard error body', async () => {
    const e = await apiError(client().crm.deals.basicApi.getById('999999'));
    assert.equal(e.code, 404);
    assert.equal(e.body.category, 'OBJECT_NOT_FOUND');
    assert.equal(e.body.message, 'resource not found');
    assert.match(e.body.correlationId, /^[0-9a-f-]{36}$/);
  });

  it('401 INVALID_AUTHENTICATION for an unknown token, EXPIRED_AUTHENTICATION for an expired one',
    async () => {
      const unknown = await apiError(
        client('pat-na1-00000000-0000-4000-8000-000000000000').crm.deals.basicApi.getById('1001'));
      assert.equal(unknown.code, 401);
      assert.equal(unknown.body.category, 'INVALID_AUTHENTICATION');
      assert.ok(unknown.body.correlationId);
      const expired = await apiError(client(HS.TOKEN_EXPIRED).crm.deals.basicApi.getById('1001'));
      assert.equal(expired.code, 401);
      assert.equal(expired.body.category, 'EXPIRED_AUTHENTICATION');
    });

  it('403 MISSING_SCOPES for a token without the deals scope', async () => {
    const c = client(HS.TOKEN_CONTACTS_ONLY);
    const contact = await c.crm.contacts.basicApi.getById('301', ['email']);
    assert.equal(contact.properties.email, 'ada@example.com');
    const e = await apiError(c.crm.deals.basicApi.getById('1001'));
    assert.equal(e.code, 403);
    assert.equal(e.body.category, 'MISSING_SCOPES');
    assert.ok(e.body.errors[0].context.requiredGranularScopes.length > 0);
  });

  it("a portal's token cannot read another portal's records", async () => {
    const e = await apiError(client(HS.TOKEN2).crm.deals.basicApi.getById('1001'));
    assert.equal(e.code, 404);
    const own = await client(HS.TOKEN2).crm.deals.basicApi.getById('1101', ['dealname']);
    assert.equal(own.id, '1101');
  });
});

describe('HubSpot rate limit (429 TEN_SECONDLY_ROLLING) with @hubspot/api-client', () => {
  beforeEach(async () => {
    await sandbox.reset();
    await sandbox.config({ hubspot_rate_10s: 3 });
  });
  after(() => sandbox.reset());

  /** Spend portal 1's 10-second budget of 3. */
  async function exhaust() {
    for (let i = 0; i < 3; i++) await client().crm.deals.basicApi.getById('1001', ['dealname']);
    assert.equal((await apiError(client().crm.deals.basicApi.getById('1001'))).code, 429);
  }

  it('sends X-HubSpot-RateLimit-* headers, then 429 once the 10-second budget is spent', async () => {
    const hs = client();
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const info = await hs.crm.deals.basicApi.getByIdWithHttpInfo('1001', ['dealname']);
      assert.equal(info.httpStatusCode, 200);
      assert.equal(info.headers['x-hubspot-ratelimit-max'], '3');
      assert.equal(info.headers['x-hubspot-ratelimit-interval-milliseconds'], '10000');
      remaining.push(Number(info.headers['x-hubspot-ratelimit-remaining']));
    }
    assert.deepEqual(remaining, [2, 1, 0]);

    const e = await apiError(hs.crm.deals.basicApi.getById('1001'));
    assert.equal(e.code, 429);
    assert.equal(e.body.message, 'You have reached your ten_secondly_rolling limit.');
    // The key the client's RetryDecorator looks at to wait 10 s × attempt before retrying.
    assert.equal(e.body.policyName, 'TEN_SECONDLY_ROLLING');

    // The raw answer through client.apiRequest().
    const raw = await hs.apiRequest({ method: 'GET', path: '/crm/v3/objects/deals/1001' });
    assert.equal(raw.status, 429);
    const body = await raw.json();
    assert.equal(body.status, 'error');
    assert.equal(body.errorType, 'RATE_LIMIT');
    assert.equal(body.policyName, 'TEN_SECONDLY_ROLLING');
    assert.ok(body.correlationId);
  });

  it('the daily limit answers 429 with policyName DAILY', async () => {
    await sandbox.config({ hubspot: { daily_limit: 2 } });
    const hs = client();
    const info = await hs.crm.deals.basicApi.getByIdWithHttpInfo('1001', ['dealname']);
    assert.equal(info.headers['x-hubspot-ratelimit-daily'], '2');
    assert.equal(info.headers['x-hubspot-ratelimit-daily-remaining'], '1');
    await hs.crm.deals.basicApi.getById('1001', ['dealname']);
    const e = await apiError(hs.crm.deals.basicApi.getById('1001'));
    assert.equal(e.code, 429);
    assert.equal(e.body.policyName, 'DAILY');
    assert.equal(e.body.message, 'You have reached your daily limit.');
  });

  it('the limit is per portal: another portal is still served', async () => {
    await exhaust();
    const deal = await client(HS.TOKEN2).crm.deals.basicApi.getById('1101', ['dealname']);
    assert.equal(deal.id, '1101');
  });

  it('a throttled callback completion is 429 too (the worker retries it)', async () => {
    await exhaust();
    const e = await apiError(client().automation.actions.callbacksApi.complete(HS.CALLBACK_A,
      { outputFields: { hs_execution_state: 'SUCCESS' } }));
    assert.equal(e.code, 429);
  });
});

describe('HubSpot callback completion with @hubspot/api-client', () => {
  const hs = client();
  before(() => sandbox.reset());

  async function callbackState(id) {
    const st = await sandbox.state({ portal: HS.PORTAL1 });
    return st.hubspot.portals[HS.PORTAL1].callbacks.find((c) => c.callbackId === id);
  }

  it('completes one callback (204) with the execution state and output fields', async () => {
    const info = await hs.automation.actions.callbacksApi.completeWithHttpInfo(HS.CALLBACK_A, {
      outputFields: { hs_execution_state: 'SUCCESS', qbo_invoice_id: '131', qbo_doc_number: '1037' },
    });
    assert.equal(info.httpStatusCode, 204);
    const cbk = await callbackState(HS.CALLBACK_A);
    assert.equal(cbk.completions, 1);
    assert.notEqual(cbk.state, 'PENDING');
  });

  it('completing it again is a 400 VALIDATION_ERROR (§9 #8)', async () => {
    const e = await apiError(hs.automation.actions.callbacksApi.complete(HS.CALLBACK_A,
      { outputFields: { hs_execution_state: 'SUCCESS' } }));
    assert.equal(e.code, 400);
    assert.equal(e.body.category, 'VALIDATION_ERROR');
  });

  it('an unknown callback is 404 OBJECT_NOT_FOUND; an expired one 400', async () => {
    const e404 = await apiError(hs.automation.actions.callbacksApi.complete('ap-102670506-0-0-0',
      { outputFields: { hs_execution_state: 'FAIL_CONTINUE' } }));
    assert.equal(e404.code, 404);
    assert.equal(e404.body.category, 'OBJECT_NOT_FOUND');
    const e400 = await apiError(hs.automation.actions.callbacksApi.complete(HS.CALLBACK_EXPIRED,
      { outputFields: { hs_execution_state: 'SUCCESS' } }));
    assert.equal(e400.code, 400);
  });

  it('completes callbacks in a batch (204, FAIL_CONTINUE with an error output)', async () => {
    const info = await hs.automation.actions.callbacksApi.completeBatchWithHttpInfo({
      inputs: [{ callbackId: HS.CALLBACK_B,
        outputFields: { hs_execution_state: 'FAIL_CONTINUE', errorCode: 'PRODUCT_NOT_FOUND' } }],
    });
    assert.equal(info.httpStatusCode, 204);
    assert.equal((await callbackState(HS.CALLBACK_B)).completions, 1);
  });

  it('a bad execution state is rejected with 400', async () => {
    const e = await apiError(client(HS.TOKEN2).automation.actions.callbacksApi.complete(
      HS.CALLBACK_PORTAL2, { outputFields: { hs_execution_state: 'MAYBE' } }));
    assert.equal(e.code, 400);
  });

  it('a 401 on completion for a bad token', async () => {
    const e = await apiError(client('pat-na1-bogus').automation.actions.callbacksApi.complete(
      HS.CALLBACK_PORTAL2, { outputFields: { hs_execution_state: 'SUCCESS' } }));
    assert.equal(e.code, 401);
  });
});

describe('HubSpot account details with @hubspot/api-client', () => {
  before(() => sandbox.reset());

  /** The zone's offset now, "-08:00", from Node's own ICU time zone data. */
  function zoneOffset(timeZone) {
    const name = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' })
      .formatToParts(new Date()).find((p) => p.type === 'timeZoneName').value;
    return name === 'GMT' ? '+00:00' : name.slice(3);
  }

  // 13.x has no account-info API, so the client's generic apiRequest (same auth and basePath).
  it('reads each portal\'s time zone from /account-info/v3/details', async () => {
    for (const [token, portal, zone] of [[HS.TOKEN1, HS.PORTAL1, 'America/Los_Angeles'],
      [HS.TOKEN2, HS.PORTAL2, 'America/New_York']]) {
      const res = await client(token).apiRequest({ method: 'GET', path: '/account-info/v3/details' });
      assert.equal(res.status, 200);
      const d = await res.json();
      assert.equal(d.portalId, Number(portal));
      assert.equal(d.timeZone, zone);
      assert.equal(d.companyCurrency, 'USD');
      assert.equal(d.accountType, 'STANDARD');
      assert.equal(d.utcOffset, zoneOffset(zone));
      const [h, m] = d.utcOffset.slice(1).split(':').map(Number);
      assert.equal(d.utcOffsetMilliseconds, (d.utcOffset[0] === '-' ? -1 : 1) * (h * 60 + m) * 60000);
    }
    const e = await client('pat-na1-bogus').apiRequest({ method: 'GET', path: '/account-info/v3/details' });
    assert.equal(e.status, 401);
  });
});
