'use strict';
// The authorization-code flows end to end with the vendors' own clients: intuit-oauth's
// authorizeUri() / createToken() / revoke() and @hubspot/api-client's
// oauth.getAuthorizationUrl() / tokensApi / accessTokensApi / refreshTokensApi, against
// the sandbox's consent pages (tests/sandbox/README.md "Authorization servers"). Node's
// fetch plays the browser: it reads the consent form, posts the decision and stops at the
// 302 back to the app. intuit-oauth is pointed at the sandbox with setAuthorizeURLs();
// HubSpot's authorization URL has app.hubspot.com built in, so its origin is swapped for
// the sandbox's, as a DNS override would.

const { describe, it, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const OAuthClient = require('intuit-oauth');
const hubspot = require('@hubspot/api-client');
const { sandbox, HS, QBO, INTUIT_TID_RE, apiError } = require('../lib/sandbox');

const unescapeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The consent form of a page: {action, fields (hidden), radios [{id, name, value}]}. */
function parseForm(html) {
  const action = /<form method="post" action="([^"]+)">/.exec(html)[1];
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1]] = unescapeHtml(m[2]);
  }
  const radios = [...html.matchAll(/<input type="radio" name="([^"]+)" id="([^"]+)" value="([^"]+)"/g)]
    .map((m) => ({ name: m[1], id: m[2], value: m[3] }));
  return { action, fields, radios };
}

/** Open the consent page at url, choose the radio with id `pick`, click `decision`;
 * resolve with the Location of the 302 back to the app. */
async function consent(url, pick, decision = 'connect') {
  const page = await fetch(url);
  assert.equal(page.status, 200, await page.clone().text());
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  const form = parseForm(await page.text());
  const radio = form.radios.find((r) => r.id === pick);
  assert.ok(radio, `no ${pick} on the page`);
  const body = new URLSearchParams({ ...form.fields, [radio.name]: radio.value, decision });
  const res = await fetch(sandbox.base + form.action, { method: 'POST', body, redirect: 'manual' });
  assert.equal(res.status, 302);
  return res.headers.get('location');
}

describe('Intuit authorization code flow with intuit-oauth', () => {
  const redirectUri = 'http://127.0.0.1/callback'; // registered in seed/qbo.json

  function oauthClient() {
    const oc = new OAuthClient({ environment: 'sandbox', clientId: QBO.CLIENT_ID,
      clientSecret: QBO.CLIENT_SECRET, redirectUri });
    oc.setAuthorizeURLs({
      authorizeEndpoint: sandbox.base + '/connect/oauth2',
      tokenEndpoint: sandbox.tokenEndpoint,
      revokeEndpoint: sandbox.base + '/v2/oauth2/tokens/revoke',
      userInfoEndpoint: sandbox.base + '/v1/openid_connect/userinfo',
    });
    return oc;
  }

  beforeEach(() => sandbox.reset());

  it('authorizeUri -> company picker -> createToken -> API -> revoke -> invalid_grant', async () => {
    const oc = oauthClient();
    const url = oc.authorizeUri({ scope: [OAuthClient.scopes.Accounting], state: 'ct-state-1' });
    assert.ok(url.startsWith(sandbox.base + '/connect/oauth2?'));
    const location = await consent(url, 'realm-' + QBO.US2);
    const back = new URL(location);
    assert.equal(back.origin + back.pathname, redirectUri);
    assert.equal(back.searchParams.get('state'), 'ct-state-1');
    assert.equal(back.searchParams.get('realmId'), QBO.US2);

    const authResponse = await oc.createToken(location);
    assert.equal(authResponse.status(), 200);
    assert.match(authResponse.getIntuitTid(), INTUIT_TID_RE);
    const tok = oc.getToken();
    assert.equal(tok.realmId, QBO.US2, 'the client took realmId from the redirect');
    assert.equal(tok.token_type, 'bearer');
    assert.equal(oc.isAccessTokenValid(), true);
    const info = await oc.makeApiCall({ url: `${sandbox.qboBase}${QBO.US2}/companyinfo/${QBO.US2}` });
    assert.equal(info.json.CompanyInfo.CompanyName, 'Sandbox Company US 2');

    const { refresh_token: refreshToken, access_token: accessToken } = tok; // revoke clears tok
    const revoked = await oc.revoke({ refresh_token: refreshToken });
    assert.equal(revoked.status(), 200);
    await assert.rejects(oauthClient().refreshUsingToken(refreshToken),
      (e) => e.error === 'invalid_grant');
    oc.setToken({ access_token: accessToken });
    await assert.rejects(oc.makeApiCall({ url: `${sandbox.qboBase}${QBO.US2}/companyinfo/${QBO.US2}` }),
      (e) => e.code === '401');
  });

  it('a code works once; Cancel comes back as error=access_denied', async () => {
    const oc = oauthClient();
    const location = await consent(oc.authorizeUri({ scope: [OAuthClient.scopes.Accounting],
      state: 's2' }), 'realm-' + QBO.US1);
    await oc.createToken(location);
    await assert.rejects(oauthClient().createToken(location), (e) => e.error === 'invalid_grant');
    const cancelled = new URL(await consent(oc.authorizeUri({
      scope: [OAuthClient.scopes.Accounting], state: 's3' }), 'realm-' + QBO.US1, 'cancel'));
    assert.deepEqual(Object.fromEntries(cancelled.searchParams),
      { error: 'access_denied', state: 's3' });
  });
});

describe('HubSpot authorization code flow with @hubspot/api-client', () => {
  const clientId = 'hsqb-client-id-1';
  const clientSecret = 'hsqb-client-secret-1';
  const redirectUri = 'http://127.0.0.1/callback'; // registered in seed/hubspot.json
  const scopes = 'oauth automation crm.objects.contacts.read crm.objects.deals.read e-commerce '
    + 'crm.objects.commercepayments.read tax_rates.read';
  const hs = new hubspot.Client({ basePath: sandbox.hubspotBase });

  beforeEach(() => sandbox.reset());

  function authorizationUrl(state) {
    const url = new URL(hs.oauth.getAuthorizationUrl(clientId, redirectUri, scopes,
      'crm.objects.companies.read', state));
    assert.equal(url.origin, 'https://app.hubspot.com');
    return sandbox.base + url.pathname + url.search;
  }

  it('install into the second portal: tokensApi.create, accessTokensApi.get, CRM reads', async () => {
    const back = new URL(await consent(authorizationUrl('hs-ct-1'), 'portal-' + HS.PORTAL2));
    assert.equal(back.searchParams.get('state'), 'hs-ct-1');
    const code = back.searchParams.get('code');

    const tok = await hs.oauth.tokensApi.create('authorization_code', code, redirectUri, clientId,
      clientSecret);
    assert.equal(tok.tokenType, 'bearer');
    assert.equal(tok.expiresIn, 1800);
    assert.ok(tok.refreshToken.startsWith('na1-'));
    assert.ok(tok.accessToken.length >= 150 && tok.accessToken.length <= 300);

    const info = await hs.oauth.accessTokensApi.get(tok.accessToken);
    assert.equal(info.hubId, Number(HS.PORTAL2));
    assert.equal(info.appId, 1234567);
    assert.equal(info.tokenType, 'access');
    assert.ok(info.scopes.includes('crm.objects.companies.read'), 'optional scope granted');
    assert.ok(info.expiresIn > 1700 && info.expiresIn <= 1800);
    const rt = await hs.oauth.refreshTokensApi.get(tok.refreshToken);
    assert.equal(rt.clientId, clientId);
    assert.equal(rt.hubId, Number(HS.PORTAL2));

    const crm = new hubspot.Client({ accessToken: tok.accessToken, basePath: sandbox.hubspotBase });
    const page = await crm.crm.deals.basicApi.getPage(5);
    assert.ok(page.results.length > 0);
    const e = await apiError(crm.crm.deals.basicApi.getById('1001'));
    assert.equal(e.code, 404, "portal 1's deal is not visible to portal 2's token");

    const again = await hs.oauth.tokensApi.create('refresh_token', undefined, undefined, clientId,
      clientSecret, tok.refreshToken);
    assert.equal(again.refreshToken, tok.refreshToken);
  });

  it('refreshTokensApi.archive deletes the refresh token; a reused code is BAD_AUTH_CODE', async () => {
    const code = new URL(await consent(authorizationUrl(undefined), 'portal-' + HS.PORTAL1))
      .searchParams.get('code');
    const tok = await hs.oauth.tokensApi.create('authorization_code', code, redirectUri, clientId,
      clientSecret);
    const reused = await apiError(hs.oauth.tokensApi.create('authorization_code', code, redirectUri,
      clientId, clientSecret));
    assert.equal(reused.code, 400);
    assert.equal(reused.body.status, 'BAD_AUTH_CODE');
    await hs.oauth.refreshTokensApi.archive(tok.refreshToken);
    const gone = await apiError(hs.oauth.tokensApi.create('refresh_token', undefined, undefined,
      clientId, clientSecret, tok.refreshToken));
    assert.equal(gone.body.status, 'BAD_REFRESH_TOKEN');
    assert.equal((await apiError(hs.oauth.refreshTokensApi.get(tok.refreshToken))).code, 404);
  });
});
