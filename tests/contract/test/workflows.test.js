'use strict';
// HubSpot's workflow side of hsqb-sandbox (issue 17) against the official Node client:
// the action-definition API through `automation.actions.definitionsApi` with a developer
// API key, and the client's own `Signature.isValid` (v3, and v2) accepting an execution
// request the sandbox's workflow engine POSTed to an actionUrl served here.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const hubspot = require('@hubspot/api-client');
const { Signature } = require('@hubspot/api-client/lib/src/utils/signature');
const { sandbox, HS, apiError } = require('../lib/sandbox');

// tests/sandbox/seed/hubspot.json, hubspot.developer_apps
const APP_ID = 1234567;
const DEV_KEY = 'devkey-11111111-2222-4333-8444-555555555555';
const SECRET = 'hsqb-app-secret-1';

function devClient(developerApiKey = DEV_KEY) {
  return new hubspot.Client({ developerApiKey, basePath: sandbox.hubspotBase });
}

/** An actionUrl: records each request (raw body, headers) and answers BLOCK. */
function startApp() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const out = JSON.stringify({ outputFields: { hs_execution_state: 'BLOCK' } });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': out.length });
      res.end(out);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, requests, url: `http://127.0.0.1:${server.address().port}/hubspot/actions/create_invoice`,
  })));
}

function egg(actionUrl) {
  return {
    actionUrl,
    published: false,
    objectTypes: ['DEAL'],
    functions: [],
    inputFields: [
      { typeDefinition: { name: 'qbo_realm_id', type: 'enumeration', fieldType: 'select',
        optionsUrl: actionUrl.replace(/\/actions\/.*$/, '/options'), options: [],
        externalOptions: false }, supportedValueTypes: ['STATIC_VALUE'], isRequired: true },
      { typeDefinition: { name: 'memo', type: 'string', fieldType: 'text', options: [],
        externalOptions: false }, supportedValueTypes: ['STATIC_VALUE'], isRequired: false },
    ],
    outputFields: [{ typeDefinition: { name: 'qbo_document_id', type: 'string',
      fieldType: 'text', options: [], externalOptions: false } }],
    objectRequestOptions: { properties: ['dealname', 'amount'] },
    labels: { en: { actionName: 'Create a QuickBooks invoice' } },
  };
}

describe('action definitions with @hubspot/api-client definitionsApi', () => {
  let app;
  const defs = devClient().automation.actions.definitionsApi;

  before(async () => {
    await sandbox.reset();
    app = await startApp();
  });
  after(() => app.server.close());

  it('create, getPage, getById and update round-trip through the client models', async () => {
    const created = await defs.create(APP_ID, egg(app.url));
    assert.match(created.id, /^\d+$/);
    assert.equal(created.revisionId, '1');
    assert.equal(created.actionUrl, app.url);
    assert.equal(created.published, false);
    assert.deepEqual(created.objectTypes, ['DEAL']);
    assert.equal(created.inputFields[0].typeDefinition.name, 'qbo_realm_id');
    assert.equal(created.inputFields[0].isRequired, true);
    assert.deepEqual(created.objectRequestOptions.properties, ['dealname', 'amount']);
    assert.equal(created.labels.en.actionName, 'Create a QuickBooks invoice');
    const second = await defs.create(APP_ID, egg(app.url));

    const page = await defs.getPage(APP_ID, 1);
    assert.deepEqual(page.results.map((d) => d.id), [created.id]);
    assert.equal(page.paging.next.after, second.id);
    const rest = await defs.getPage(APP_ID, 1, page.paging.next.after);
    assert.deepEqual(rest.results.map((d) => d.id), [second.id]);
    assert.equal(rest.paging, undefined);

    const got = await defs.getById(created.id, APP_ID);
    assert.deepEqual(got, created);

    const updated = await defs.update(created.id, APP_ID, { published: true,
      labels: { en: { actionName: 'Create an invoice' }, fi: { actionName: 'Luo lasku' } } });
    assert.equal(updated.revisionId, '2');
    assert.equal(updated.published, true);
    assert.equal(updated.labels.fi.actionName, 'Luo lasku');
    assert.deepEqual(updated.inputFields, created.inputFields);

    const revs = await devClient().automation.actions.revisionsApi.getPage(created.id, APP_ID);
    assert.deepEqual(revs.results.map((r) => r.revisionId), ['1', '2']);
    assert.ok(revs.results[0].createdAt instanceof Date);
  });

  it('archive, then getById needs archived=true', async () => {
    const d = await defs.create(APP_ID, egg(app.url));
    await defs.archive(d.id, APP_ID);
    assert.equal((await apiError(defs.getById(d.id, APP_ID))).code, 404);
    const archived = await defs.getById(d.id, APP_ID, true);
    assert.ok(archived.archivedAt > 0);
  });

  it('a definition HubSpot would refuse is a 400', async () => {
    const bad = egg(app.url);
    bad.objectTypes = [];
    const e = await apiError(defs.create(APP_ID, bad));
    assert.equal(e.code, 400);
    assert.equal(e.body.category, 'VALIDATION_ERROR');
  });

  it('a wrong developer key, or none, is a 401', async () => {
    const e = await apiError(devClient('devkey-wrong').automation.actions.definitionsApi
      .getPage(APP_ID));
    assert.equal(e.code, 401);
    assert.equal(e.body.category, 'INVALID_AUTHENTICATION');
    // A client with only an access token sends no credentials on these routes (they
    // declare developer_hapikey auth alone), so it meets the 401, not the 403 a raw
    // Bearer header gets (tests/sandbox/test_sandbox_workflows.py).
    const bearer = new hubspot.Client({ accessToken: HS.TOKEN1, basePath: sandbox.hubspotBase });
    const f = await apiError(bearer.automation.actions.definitionsApi.getPage(APP_ID));
    assert.equal(f.code, 401);
  });
});

describe('Signature.isValid accepts a request the sandbox sent', () => {
  let app;
  let sent;

  before(async () => {
    await sandbox.reset();
    app = await startApp();
    const d = await devClient().automation.actions.definitionsApi.create(APP_ID, egg(app.url));
    const res = await fetch(sandbox.base + '/_sandbox/hubspot/workflows/enroll', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ app_id: APP_ID, definition_id: d.id, portal_id: Number(HS.PORTAL1),
        object: { objectType: 'DEAL', objectId: 1001 },
        input_fields: { qbo_realm_id: '4620816365014867780' }, wait: true }),
    });
    assert.equal(res.status, 200);
    const exec = await res.json();
    assert.equal(exec.state, 'BLOCKED');
    assert.equal(app.requests.length, 1);
    [sent] = app.requests;
    assert.equal(JSON.parse(sent.body).callbackId, exec.callbackId);
  });
  after(() => app.server.close());

  it('v3 (HMAC, millisecond timestamp within 5 minutes)', () => {
    assert.equal(Signature.isValid({
      signatureVersion: 'v3', method: 'POST', url: app.url, clientSecret: SECRET,
      requestBody: sent.body, timestamp: Number(sent.headers['x-hubspot-request-timestamp']),
      signature: sent.headers['x-hubspot-signature-v3'],
    }), true);
    assert.equal(Signature.isValid({
      signatureVersion: 'v3', method: 'POST', url: app.url, clientSecret: 'another-secret',
      requestBody: sent.body, timestamp: Number(sent.headers['x-hubspot-request-timestamp']),
      signature: sent.headers['x-hubspot-signature-v3'],
    }), false);
  });

  it('v2 (what HubSpot documents for custom actions)', () => {
    assert.equal(sent.headers['x-hubspot-signature-version'], 'v2');
    assert.equal(Signature.isValid({
      signatureVersion: 'v2', method: 'POST', url: app.url, clientSecret: SECRET,
      requestBody: sent.body, signature: sent.headers['x-hubspot-signature'],
    }), true);
  });
});
