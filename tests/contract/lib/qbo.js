'use strict';
// node-quickbooks pointed at the sandbox. Its supported redirection is the pair of
// module-level constants V3_ENDPOINT_BASE_URL (read by the constructor into
// `qbo.endpoint`) and TOKEN_URL (read by refreshAccessToken at call time). We never call
// QuickBooks.setOauthVersion(): it downloads Intuit's discovery document and would
// overwrite those URLs. With useSandbox=true the constructor takes the base URL as is
// (with false it only strips a "sandbox-" prefix, which our URL does not have).

const QuickBooks = require('node-quickbooks');
const { sandbox, QBO, cb } = require('./sandbox');

QuickBooks.V3_ENDPOINT_BASE_URL = sandbox.qboBase;
QuickBooks.TOKEN_URL = sandbox.tokenEndpoint;

function qboClient(realm = QBO.US1, accessToken = QBO.AT[realm], refreshToken = QBO.RT[realm]) {
  const q = new QuickBooks(QBO.CLIENT_ID, QBO.CLIENT_SECRET, accessToken, false, realm,
    true /* useSandbox */, false /* debug */, 75 /* minorversion */, '2.0', refreshToken);
  if (q.endpoint !== sandbox.qboBase) throw new Error('node-quickbooks ignored the base URL');
  return q;
}

/**
 * Call a node-quickbooks method (callback style) and resolve with
 * {err, body, res, status, fault}; `fault` is the first Fault.Error of a 4xx JSON body.
 */
async function call(q, method, ...args) {
  const r = await cb((done) => q[method](...args, done));
  r.status = r.res ? r.res.status : undefined;
  const data = r.res ? r.res.data : undefined;
  r.data = data;
  r.fault = data && data.Fault && data.Fault.Error ? data.Fault.Error[0] : undefined;
  return r;
}

/** node-quickbooks find* helpers return promises when given criteria + callback. */
function find(q, method, criteria) {
  return new Promise((resolve, reject) => {
    q[method](criteria, (err, data) => (err ? reject(err) : resolve(data)));
  });
}

/** YYYY-MM-DD today in a fixed UTC offset (hours), like QBO's TxnDate default. */
function todayAt(offsetHours) {
  return new Date(Date.now() + offsetHours * 3600 * 1000).toISOString().slice(0, 10);
}

function plusDays(ymd, days) {
  const d = new Date(ymd + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

module.exports = { QuickBooks, qboClient, call, find, todayAt, plusDays };
