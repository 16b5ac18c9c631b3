"""HubSpot OAuth installs keep working past their access tokens' lifetime (issue 18 item
2): two worker replicas refresh an installed portal's access token before it expires,
once per expiry for the portal, not once per replica or per event.

Portal 1 (102670506) is installed as `GET /hubspot/install` would store it: the access
token in <prefix>hstoken:{P}, the refresh token and expiry in <prefix>hsoauth:{P}
(written here with python3-redis, the token got from the sandbox's token endpoint with
the seed's refresh token). The sandbox's access tokens live ACCESS_TTL_S seconds and
the replicas refresh with fewer than MARGIN left; a stream of events spans several
lifetimes. What reached HubSpot comes from the sandbox (its request log, and the
install's refresh count in /_sandbox/state).

    KAFKA=apache BUILD=build /usr/bin/python3 -m pytest -q tests/integration/test_hubspot_refresh.py
"""
import json
import time
import urllib.parse
import urllib.request

import harness
from harness import KEY_PREFIX, PORTAL1, US1

HS_CLIENT = "hsqb-client-id-1"  # the seeded OAuth app (tests/sandbox/seed/hubspot.json)
HS_SECRET = "hsqb-client-secret-1"
HS_RT = "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"  # its install in portal 1
ACCESS_TTL_S = 6
MARGIN = "2s"
DEALS = (1002, 1005)  # portal 1's deals with a contact: two keys, spread over the replicas
SPAN_S = 20  # the stream lasts over three lifetimes


def token_grant(h):
    body = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": HS_CLIENT,
                                   "client_secret": HS_SECRET, "refresh_token": HS_RT}).encode()
    req = urllib.request.Request(h.sandbox.base + "/oauth/v1/token", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def install(h):
    """Portal 1's install as the install flow stores it."""
    t = token_grant(h)
    now = int(time.time() * 1000)
    h.redis.set("%shstoken:{%d}" % (KEY_PREFIX, PORTAL1), t["access_token"])
    hk = "%shsoauth:{%d}" % (KEY_PREFIX, PORTAL1)
    h.redis.delete(hk)
    h.redis.hset(hk, mapping={"refresh_token": t["refresh_token"],
                              "access_expires_at_ms": now + t["expires_in"] * 1000,
                              "scopes": " ".join(t.get("scopes", [])), "hub_domain": "",
                              "installed_at": now, "updated_at": now})
    return t["access_token"]


def refreshes(h):
    st = h.sandbox.state(portal=PORTAL1)["hubspot"]["portals"][str(PORTAL1)]
    return sum(i["refreshes"] for i in st["oauth_installs"] if i["source"] == "seed")


def test_installed_portal_outlives_its_access_tokens_one_refresh_per_expiry(hsqb):
    h = hsqb
    h.sandbox.config({"hubspot": {"access_ttl_s": ACCESS_TTL_S}})
    env = {"HSQB_HUBSPOT_OAUTH_CLIENT_ID": HS_CLIENT,
           "HSQB_HUBSPOT_OAUTH_CLIENT_SECRET": HS_SECRET,
           "HSQB_HUBSPOT_OAUTH_REFRESH_MARGIN": MARGIN}
    try:
        with h.replicas_with(env, n=2):
            first = install(h)
            before = refreshes(h)
            t0 = time.monotonic()
            events, i = [], 0
            while time.monotonic() - t0 < SPAN_S:
                ev = h.event("create_estimate", "DEAL", DEALS[i % len(DEALS)], US1,
                             create_missing_products="true")
                h.produce(ev, partition=i % 6)  # every partition: both replicas work
                events.append(ev)
                i += 1
                time.sleep(0.4)  # ~5 HubSpot reads each: under 100 per 10 s
            span = time.monotonic() - t0
            results = h.wait_results([ev.id for ev in events], timeout=120)
            failed = [r.json["data"] for rs in results.values() for r in rs
                      if r.json["data"]["status"] != "succeeded"]
            assert not failed, [(f["error"].get("code"), f["error"].get("message")) for f in failed[:3]]
            # tokens were replaced before they expired; a 401 happens only to a request
            # that waited in the portal's rate limiter past its token's expiry (it then
            # takes the refresh-and-retry path), so at most a few
            unauthorized = h.sandbox.requests(vendor="hubspot", status=401)
            assert len(unauthorized) <= 3, [(u.get("path"), u.get("seq")) for u in unauthorized]
            # about one refresh per lifetime (a token is replaced MARGIN before it expires),
            # whatever the replica and event counts
            n = refreshes(h) - before
            lifetimes = span / (ACCESS_TTL_S - 2)
            assert 2 <= n <= lifetimes + 2, (n, lifetimes, len(events))
            assert n < len(events) / 4
            # both replicas served events of the stream
            for r in h.replicas:
                text = r.log_path.read_bytes().decode("utf-8", "replace")
                assert any(ev.id in text for ev in events), r.name
            hk = "%shstoken:{%d}" % (KEY_PREFIX, PORTAL1)
            assert h.redis.get(hk).startswith(b"v1:"), "stored in plain text"
            assert h.stored_token(hk) != first
            # no token or secret in the replicas' logs (debug level)
            secrets = {HS_RT, HS_SECRET, first} | set(h.secrets())
            for r in h.replicas:
                text = r.log_path.read_bytes().decode("utf-8", "replace") + \
                    r.err_path.read_bytes().decode("utf-8", "replace")
                leaked = [s[:8] for s in secrets if s in text]
                assert not leaked, (r.name, leaked)
    finally:
        h.store_credentials(realms=(), portals=[PORTAL1])  # the private-app token again
