'use strict';
// Shared fixtures for the contract tests: where the sandbox is, the seeded ids and
// credentials (tests/sandbox/seed/*.json; see tests/sandbox/README.md), and thin
// helpers for the sandbox's own admin API (/_sandbox/...), which no vendor client knows.
// Vendor calls in the tests always go through the independent clients, never this file.

const assert = require('node:assert/strict');

const BASE = (process.env.HSQB_SANDBOX_URL || '').replace(/\/+$/, '');
if (!BASE) {
  throw new Error('HSQB_SANDBOX_URL is not set: run tests/contract/run.sh, which starts the sandbox');
}

const HS = {
  PORTAL1: '102670506',
  PORTAL2: '243987001',
  TOKEN1: 'pat-na1-11111111-1111-4111-8111-111111111111',
  TOKEN2: 'pat-na1-22222222-2222-4222-8222-222222222222',
  TOKEN_CONTACTS_ONLY: 'pat-na1-contacts-only-0000-000000000000',
  TOKEN_EXPIRED: 'pat-na1-expired-0000-0000-000000000000',
  CALLBACK_A: 'ap-102670506-56776413549-7-0',
  CALLBACK_B: 'ap-102670506-56776413550-7-0',
  CALLBACK_EXPIRED: 'ap-102670506-expired-7-0',
  CALLBACK_PORTAL2: 'ap-243987001-1-1-0',
};

const STATIC_PREFIX = 'eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..';
const QBO = {
  US1: '4620816365014867780',
  US2: '4620816365014867781',
  CA1: '9130357766554433',
  AST1: '4620816365014867790', // Automated Sales Tax on, company in CA, seeded ast_rates
  MC1: '4620816365014867791', // multicurrency (home USD; customer 3 in EUR, 6 in GBP), AST on
  CLIENT_ID: 'ABhsqbSandboxClientId0000000000000000000000000000',
  CLIENT_SECRET: 'hsqbSandboxClientSecret000000000000000000',
  OTHER_CLIENT_ID: 'ABotherAppClientId000000000000000000000000000000',
  OTHER_CLIENT_SECRET: 'otherAppSecret0000000000000000000000000000',
};
QBO.AT = {
  [QBO.US1]: STATIC_PREFIX + 'us1-static-access-token-for-tests-0001',
  [QBO.US2]: STATIC_PREFIX + 'us2-static-access-token-for-tests-0002',
  [QBO.CA1]: STATIC_PREFIX + 'ca1-static-access-token-for-tests-0003',
  [QBO.AST1]: STATIC_PREFIX + 'ast1-static-access-token-for-tests-0004',
  [QBO.MC1]: STATIC_PREFIX + 'mc1-static-access-token-for-tests-0005',
};
QBO.RT = {
  [QBO.US1]: 'RT1-11-H0-1900000000us1seedrefreshtoken01',
  [QBO.US2]: 'RT1-12-H0-1900000000us2seedrefreshtoken02',
  [QBO.CA1]: 'RT1-13-H0-1900000000ca1seedrefreshtoken03',
  [QBO.AST1]: 'RT1-14-H0-1900000000ast1seedrefreshtoken4',
  [QBO.MC1]: 'RT1-15-H0-1900000000mc1seedrefreshtoken05',
};

// Reference formats (quickbooks-api.md §1, §7).
const INTUIT_TID_RE = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;

async function admin(method, path, body) {
  const res = await fetch(BASE + '/_sandbox/' + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `admin ${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const sandbox = {
  base: BASE,
  hubspotBase: BASE,
  qboBase: BASE + '/v3/company/',
  tokenEndpoint: BASE + '/oauth2/v1/tokens/bearer',
  reset: () => admin('POST', 'reset'),
  config: (cfg) => admin('POST', 'config', cfg),
  getConfig: () => admin('GET', 'config'),
  state: (q) => admin('GET', 'state?' + new URLSearchParams(q)),
  requests: (q) => admin('GET', 'requests?' + new URLSearchParams(q || {})),
  clearRequests: () => admin('DELETE', 'requests'),
  addFault: (rule) => admin('POST', 'faults', rule),
};

/** Await a client call that must fail and return the @hubspot/api-client ApiException. */
async function apiError(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(typeof e.code === 'number', `expected an ApiException, got ${e && e.stack}`);
    return e;
  }
  return assert.fail('the call succeeded but an error was expected');
}

/** Await a node-style callback API and resolve with {err, body, res} (never rejects). */
function cb(fn) {
  return new Promise((resolve) => fn((err, body, res) => resolve({ err, body, res })));
}

module.exports = { sandbox, HS, QBO, INTUIT_TID_RE, cb, apiError };
