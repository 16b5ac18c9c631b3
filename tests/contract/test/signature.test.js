'use strict';
// The HubSpot request-signature vectors that tests/unit/common/test_hash.c checks our C
// code against (hubspot-api.md §3.3; v2/v3 were derived by us, not published) recomputed
// by the official client's own Signature implementation. No sandbox needed.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { Signature } = require('@hubspot/api-client/lib/src/utils/signature');

const SECRET = 'yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy';
const V1_BODY = '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
  + '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
  + '"changeFlag":"NEW","appId":54321}]';
const URL_ = 'https://example.com/hubspot/action';
const BODY = '{"callbackId":"ap-1-2-3-0"}';

describe('HubSpot signature vectors against @hubspot/api-client Signature', () => {
  it('v1 (the official vector)', () => {
    assert.equal(Signature.isValid({ signatureVersion: 'v1', clientSecret: SECRET, requestBody: V1_BODY,
      signature: '232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de' }), true);
  });

  it('v2 (derived vector)', () => {
    assert.equal(Signature.isValid({ signatureVersion: 'v2', method: 'POST', url: URL_,
      clientSecret: SECRET, requestBody: BODY,
      signature: '6152fcdb22e0d0b605239fc0736d3953630a483e7a0da706b2e7bdffc86b438c' }), true);
  });

  it('v3 (derived vector; ms timestamp)', () => {
    // isValid() also rejects timestamps older than 5 minutes, so compare the digest.
    assert.equal(Signature.getSignature('POST', 'v3', { url: URL_, clientSecret: SECRET,
      requestBody: BODY, timestamp: 1700000000000 }), 'TjsWBLAo3Ld2c9if+E8zHoN+HDWTbNqr/wHZlPmMW/Y=');
  });

  it('v3 isValid enforces the 5-minute window in milliseconds', () => {
    const now = Date.now();
    const sig = Signature.getSignature('POST', 'v3', { url: URL_, clientSecret: SECRET,
      requestBody: BODY, timestamp: now });
    assert.equal(Signature.isValid({ signatureVersion: 'v3', method: 'POST', url: URL_,
      clientSecret: SECRET, requestBody: BODY, timestamp: now, signature: sig }), true);
    assert.throws(() => Signature.isValid({ signatureVersion: 'v3', method: 'POST', url: URL_,
      clientSecret: SECRET, requestBody: BODY, timestamp: now - 301000, signature: sig }),
    /Timestamp is invalid/);
  });
});
