'use strict';
// Intuit OAuth: intuit-oauth (Intuit's own Node client) and node-quickbooks'
// refreshAccessToken against the sandbox's token endpoint, and the worker's
// "401 → refresh once → retry with the same requestid" flow (design.md §5,
// quickbooks-api.md §9, §10). intuit-oauth is redirected with its supported
// setAuthorizeURLs(); node-quickbooks with QuickBooks.TOKEN_URL (lib/qbo.js).

const { describe, it, before, beforeEach, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');
const OAuthClient = require('intuit-oauth');
const { sandbox, QBO, INTUIT_TID_RE } = require('../lib/sandbox');
const { qboClient, call } = require('../lib/qbo');

function oauthClient(clientId = QBO.CLIENT_ID, clientSecret = QBO.CLIENT_SECRET, extra = {}) {
  const oc = new OAuthClient({ environment: 'sandbox', clientId, clientSecret,
    redirectUri: 'http://127.0.0.1/callback', ...extra });
  oc.setAuthorizeURLs({
    authorizeEndpoint: sandbox.base + '/connect/oauth2', // never called: no browser here
    tokenEndpoint: sandbox.tokenEndpoint,
    revokeEndpoint: sandbox.base + '/v2/oauth2/tokens/revoke',
    userInfoEndpoint: sandbox.base + '/v1/openid_connect/userinfo',
  });
  return oc;
}

/** Refresh with intuit-oauth; resolve with the token JSON. */
async function refresh(rt, oc = oauthClient()) {
  const authResponse = await oc.refreshUsingToken(rt);
  assert.equal(authResponse.status(), 200);
  return authResponse.getJson();
}

/** A token-endpoint call that must fail: the intuit-oauth wrapped error. */
async function tokenError(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('the token request succeeded but an error was expected');
}

describe('Intuit token endpoint with intuit-oauth', () => {
  beforeEach(() => sandbox.reset());

  it('refresh_token grant: documented fields; a young refresh token comes back unchanged', async () => {
    const oc = oauthClient();
    const authResponse = await oc.refreshUsingToken(QBO.RT[QBO.US1]);
    assert.equal(authResponse.status(), 200);
    assert.match(authResponse.getIntuitTid(), INTUIT_TID_RE);
    assert.match(authResponse.headers()['content-type'], /^application\/json/);
    const tok = authResponse.getJson();
    assert.equal(tok.token_type, 'bearer');
    assert.equal(tok.expires_in, 3600);
    assert.equal(tok.x_refresh_token_expires_in, 8726400);
    assert.equal(tok.refresh_token, QBO.RT[QBO.US1]);
    assert.equal('x_refresh_token_hard_expires_in' in tok, false, 'only with the opt-in header');
    assert.ok(tok.access_token.length > 500, 'a long JWE-like access token');
    assert.notEqual(tok.access_token, QBO.AT[QBO.US1]);
    // The client stored it and considers it valid.
    assert.equal(oc.getToken().access_token, tok.access_token);
    assert.equal(oc.isAccessTokenValid(), true);
  });

  it('the new access token works for its realm only; the old one stays valid', async () => {
    const tok = await refresh(QBO.RT[QBO.US1]);
    const ok = await call(qboClient(QBO.US1, tok.access_token), 'getCompanyInfo', QBO.US1);
    assert.equal(ok.status, 200);
    const other = await call(qboClient(QBO.US2, tok.access_token), 'getCompanyInfo', QBO.US2);
    assert.equal(other.status, 401);
    const old = await call(qboClient(QBO.US1), 'getCompanyInfo', QBO.US1);
    assert.equal(old.status, 200);
  });

  it('x-include-refresh-token-hard-expires-in adds x_refresh_token_hard_expires_in', async () => {
    const oc = oauthClient(QBO.CLIENT_ID, QBO.CLIENT_SECRET, { includeRefreshTokenHardExpiresIn: true });
    const tok = await refresh(QBO.RT[QBO.US1], oc);
    assert.equal(typeof tok.x_refresh_token_hard_expires_in, 'number');
    assert.ok(tok.x_refresh_token_hard_expires_in > 0);
  });

  it('an unknown refresh token is 400 invalid_grant', async () => {
    const e = await tokenError(oauthClient().refreshUsingToken('RT1-99-H0-1900000000nosuchtoken'));
    assert.equal(e.error, 'invalid_grant');
    assert.equal(e.authResponse.status(), 400);
    assert.match(e.intuit_tid, INTUIT_TID_RE);
  });

  it("another app's refresh token is 400 invalid_grant", async () => {
    const e = await tokenError(oauthClient(QBO.OTHER_CLIENT_ID, QBO.OTHER_CLIENT_SECRET)
      .refreshUsingToken(QBO.RT[QBO.US1]));
    assert.equal(e.error, 'invalid_grant');
  });

  it('wrong client credentials are 401 invalid_client', async () => {
    const e = await tokenError(oauthClient(QBO.CLIENT_ID, 'wrong-secret').refreshUsingToken(QBO.RT[QBO.US1]));
    assert.equal(e.error, 'invalid_client');
    assert.equal(e.authResponse.status(), 401);
  });

  it('rotation: after the period a new refresh token is issued and the old one dies at once',
    async () => {
      // rotate_after_ms 1 first, so the seeded token (issued at reset) rotates now and the
      // clock starts at a known point; then a 800 ms period.
      await sandbox.config({ oauth: { rotate_after_ms: 1 } });
      await sleep(5);
      const t1 = (await refresh(QBO.RT[QBO.US2])).refresh_token;
      assert.notEqual(t1, QBO.RT[QBO.US2]);
      await sandbox.config({ oauth: { rotate_after_ms: 800 } });
      const young = await refresh(t1);
      assert.equal(young.refresh_token, t1, 'younger than the period: same token');
      await sleep(850);
      const rotated = await refresh(t1);
      assert.notEqual(rotated.refresh_token, t1);
      const e = await tokenError(oauthClient().refreshUsingToken(t1));
      assert.equal(e.error, 'invalid_grant', 'no grace period for the old token');
      const again = await refresh(rotated.refresh_token);
      assert.equal(again.refresh_token, rotated.refresh_token);
    });

  it('authorization_code grant: a seeded code works once', async () => {
    const oc = oauthClient();
    const code = 'AB11us1authorizationcode0001';
    const authResponse = await oc.createToken(`http://127.0.0.1/callback?code=${code}&realmId=${QBO.US1}&state=s`);
    const tok = authResponse.getJson();
    assert.equal(tok.token_type, 'bearer');
    assert.ok(tok.refresh_token && tok.access_token);
    const ok = await call(qboClient(QBO.US1, tok.access_token), 'getCompanyInfo', QBO.US1);
    assert.equal(ok.status, 200);
    const e = await tokenError(oauthClient().createToken(`http://127.0.0.1/callback?code=${code}&realmId=${QBO.US1}`));
    assert.equal(e.error, 'invalid_grant');
  });
});

describe('QBO 401 → refresh → retry with the same requestid', () => {
  before(() => sandbox.reset());
  after(() => sandbox.reset());

  const invoiceBody = () => ({
    CustomerRef: { value: '4' }, PrivateNote: 'hsqb evt ct-401', requestId: 'ct-401-inv-0001',
    Line: [{ DetailType: 'SalesItemLineDetail', Amount: 150,
      SalesItemLineDetail: { ItemRef: { value: '3' }, Qty: 1, UnitPrice: 150 } }],
  });

  it('an expired access token gives the lower-case 401 body and WWW-Authenticate; '
    + 'intuit-oauth refresh and a retry succeed, once', async () => {
    await sandbox.config({ access_ttl_s: 1 });
    const oc = oauthClient();
    const first = await refresh(QBO.RT[QBO.US1], oc);
    const qb = qboClient(QBO.US1, first.access_token, first.refresh_token);
    await sleep(1100);

    const denied = await call(qb, 'createInvoice', invoiceBody());
    assert.equal(denied.status, 401);
    assert.equal(denied.res.headers['www-authenticate'], 'Bearer realm="Intuit", error="invalid_token"');
    assert.match(denied.res.headers.intuit_tid, INTUIT_TID_RE);
    const f = denied.data.fault;
    assert.equal(f.type, 'AUTHENTICATION');
    assert.equal(f.error[0].code, '3200');
    assert.match(f.error[0].message, /errorCode=003200; statusCode=401/);
    assert.equal(typeof denied.data.time, 'number', 'epoch-ms time in the 401 body');

    // Refresh once with the latest refresh token, retry with the same requestid (with the
    // normal TTL again, so a slow machine cannot expire the fresh token before the retry).
    await sandbox.config({ access_ttl_s: 3600 });
    const fresh = await refresh(first.refresh_token, oc);
    qb.token = fresh.access_token;
    const created = await call(qb, 'createInvoice', invoiceBody());
    assert.equal(created.status, 200, JSON.stringify(created.data));
    const replay = await call(qb, 'createInvoice', invoiceBody());
    assert.deepEqual(replay.data, created.data, 'the 401 was not stored as the requestid answer');
    const st = (await sandbox.state({ realm: QBO.US1 })).qbo[QBO.US1];
    assert.equal(st.Invoice.filter((i) => i.PrivateNote === 'hsqb evt ct-401').length, 1);
  });

  it("node-quickbooks' own refreshAccessToken (QuickBooks.TOKEN_URL) refreshes and the call works",
    async () => {
      await sandbox.reset();
      const qb = qboClient(QBO.US2, 'eyJ-not-a-valid-token');
      const denied = await call(qb, 'getCompanyInfo', QBO.US2);
      assert.equal(denied.status, 401);
      const r = await new Promise((resolve) => qb.refreshAccessToken((err, body) => resolve({ err, body })));
      assert.equal(r.err, null);
      assert.equal(r.body.refresh_token, QBO.RT[QBO.US2]);
      assert.equal(qb.token, r.body.access_token);
      const ok = await call(qb, 'getCompanyInfo', QBO.US2);
      assert.equal(ok.status, 200);
    });

  it('a 401 through intuit-oauth makeApiCall is reported with code 401', async () => {
    const oc = oauthClient();
    oc.setToken({ access_token: 'eyJ-not-a-valid-token' });
    await assert.rejects(oc.makeApiCall({ url: `${sandbox.qboBase}${QBO.US1}/companyinfo/${QBO.US1}` }),
      (e) => e.code === '401' && INTUIT_TID_RE.test(e.intuitTid));
  });

  it('the XML 401 variant (auth_fault_body xml) carries code 100', async () => {
    await sandbox.config({ qbo: { auth_fault_body: 'xml' } });
    const denied = await call(qboClient(QBO.US1, 'eyJ-not-a-valid-token'), 'getCompanyInfo', QBO.US1);
    assert.equal(denied.status, 401);
    assert.match(String(denied.data), /<Error code="100">/);
  });
});
