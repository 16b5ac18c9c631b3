"""Intuit OAuth 2.0 token endpoint of hsqb-sandbox (reference §9, §12 #16 #17, §13.13).

Run: /usr/bin/python3 -m pytest tests/sandbox/test_sandbox_oauth.py
"""
import time

from qbo_helpers import (AUTH_CODE_US1, CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID,
                         OTHER_CLIENT_SECRET, RT, TID_RE, US1, US2, get, raw_json, refresh,
                         token_call)


def test_refresh_response_shape(sb):
    r = refresh(sb, RT[US1])
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json;charset=utf-8"
    assert TID_RE.match(r.headers["intuit_tid"])
    b = raw_json(r)
    assert list(b) == ["token_type", "access_token", "expires_in", "refresh_token",
                       "x_refresh_token_expires_in"]
    assert b["token_type"] == "bearer" and b["expires_in"] == 3600
    assert b["x_refresh_token_expires_in"] == 8726400
    assert len(b["access_token"]) >= 512  # long JWE-like string: no small buffers
    assert b["refresh_token"] == RT[US1]  # within the rotation window: same value


def test_hard_expiry_only_with_opt_in_header(sb):
    b = raw_json(refresh(sb, RT[US1],
                         headers={"x-include-refresh-token-hard-expires-in": "true"}))
    assert 5 * 365 * 86400 - 60 <= b["x_refresh_token_hard_expires_in"] <= 5 * 365 * 86400


def test_new_access_token_is_realm_scoped(sb):
    tok = raw_json(refresh(sb, RT[US1]))["access_token"]
    assert get(sb, US1, "customer/1", token=tok).status == 200
    r = get(sb, US2, "customer/1", token=tok)
    assert r.status == 401 and "WWW-Authenticate" in r.headers
    tok2 = raw_json(refresh(sb, RT[US1]))["access_token"]
    assert tok2 != tok
    assert get(sb, US1, "customer/1", token=tok).status == 200  # old ones live until expiry


def test_rotation_then_old_refresh_token_is_invalid_grant(sb):
    sb.config(oauth={"rotate_after_ms": 1})
    time.sleep(0.01)
    first = refresh(sb, RT[US1])
    assert first.status == 200
    new_rt = raw_json(first)["refresh_token"]
    assert new_rt != RT[US1] and new_rt.startswith("RT1-")
    old = refresh(sb, RT[US1])
    assert old.status == 400
    assert raw_json(old) == {"error": "invalid_grant"}
    assert TID_RE.match(old.headers["intuit_tid"])
    assert old.headers["Content-Type"] == "application/json;charset=utf-8"
    time.sleep(0.01)
    again = refresh(sb, new_rt)
    assert again.status == 200 and raw_json(again)["refresh_token"] != new_rt
    dump = sb.state()["oauth"]["realms"][US1]
    assert dump["refresh_token"] == raw_json(again)["refresh_token"]


def test_rotation_period_from_settings(sb):
    sb.config(rotate_after_s=1)
    assert raw_json(refresh(sb, RT[US2]))["refresh_token"] == RT[US2]
    time.sleep(1.1)
    rotated = raw_json(refresh(sb, RT[US2]))["refresh_token"]
    assert rotated != RT[US2]
    assert refresh(sb, RT[US2]).status == 400


def test_no_rotation_when_period_is_zero(sb):
    sb.config(rotate_after_s=0)
    for _ in range(3):
        assert raw_json(refresh(sb, RT[US1]))["refresh_token"] == RT[US1]


def test_invalid_client(sb):
    for client in ((CLIENT_ID, "wrong"), ("nobody", CLIENT_SECRET), None):
        r = refresh(sb, RT[US1], client=client)
        assert r.status == 401, client
        assert raw_json(r) == {"error": "invalid_client"}
        assert TID_RE.match(r.headers["intuit_tid"])


def test_client_secret_post_is_accepted(sb):
    r = token_call(sb, {"grant_type": "refresh_token", "refresh_token": RT[US1],
                        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, basic=False)
    assert r.status == 200


def test_refresh_token_is_bound_to_its_app(sb):
    r = refresh(sb, RT[US1], client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    assert r.status == 400 and raw_json(r) == {"error": "invalid_grant"}


def test_unknown_or_missing_refresh_token_and_bad_grants(sb):
    assert raw_json(refresh(sb, "RT1-00-H0-0000000000doesnotexist")) == {"error": "invalid_grant"}
    r = token_call(sb, {"grant_type": "refresh_token"})
    assert r.status == 400 and raw_json(r) == {"error": "invalid_request"}
    r = token_call(sb, {"grant_type": "password", "username": "u"})
    assert r.status == 400 and raw_json(r) == {"error": "unsupported_grant_type"}
    assert sb.get("/oauth2/v1/tokens/bearer").status == 405


def test_access_ttl_is_configurable_and_expiry_gives_401(sb):
    sb.config(access_ttl_s=1)
    b = raw_json(refresh(sb, RT[US1]))
    assert b["expires_in"] == 1
    assert get(sb, US1, "customer/1", token=b["access_token"]).status == 200
    time.sleep(1.2)
    r = get(sb, US1, "customer/1", token=b["access_token"])
    assert r.status == 401
    assert r.json()["fault"]["error"][0]["detail"].startswith("Token expired")
    # refreshing with the latest refresh token recovers
    tok = raw_json(refresh(sb, RT[US1]))["access_token"]
    assert get(sb, US1, "customer/1", token=tok).status == 200


def test_refresh_token_lifetime_rolls_and_expires(sb):
    sb.config(refresh_ttl_s=1)
    b = raw_json(refresh(sb, RT[US1]))  # use extends the rolling expiry to 1 s from now
    assert b["x_refresh_token_expires_in"] == 1
    time.sleep(1.2)
    assert raw_json(refresh(sb, RT[US1])) == {"error": "invalid_grant"}


def test_authorization_code_works_once_and_reuse_revokes(sb):
    r = token_call(sb, {"grant_type": "authorization_code", "code": AUTH_CODE_US1,
                        "redirect_uri": "https://example.com/cb"})
    assert r.status == 200
    b = raw_json(r)
    assert get(sb, US1, "customer/1", token=b["access_token"]).status == 200
    again = token_call(sb, {"grant_type": "authorization_code", "code": AUTH_CODE_US1})
    assert again.status == 400 and raw_json(again) == {"error": "invalid_grant"}
    assert refresh(sb, b["refresh_token"]).status == 400  # tokens from the code revoked
