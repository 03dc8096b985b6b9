"""The API's authentication and role matrix, over real HTTP against ``bm-agent serve``.

No auth: 401. Viewer reads, cannot act (403). Operator acts, cannot manage users. Admin
manages users. A browser session needs its CSRF token on writes (403 without it); a bearer
token does not. Logins are rate limited (429 + Retry-After). Tokens can be issued and
revoked through the API.
"""

import pytest
import requests

from tests.support.agentproc import USERS

CSV = (b"uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels\n"
       b"pc-01,192.168.1.101,win10,A1,127.0.0.1,admin,authpw01,623,zone=vip\n")


@pytest.fixture(scope="module")
def agent(module_agent_proc):
    handle = module_agent_proc(hook=False)
    answer = handle.post("/api/v1/servers/import", data=CSV,
                         headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    return handle


def error_code(answer):
    return answer.json()["error"]["code"]


@pytest.mark.parametrize("path", ["/api/v1/servers", "/api/v1/servers/pc-01", "/api/v1/events",
                                  "/api/v1/audit", "/api/v1/deeplink", "/api/v1/users",
                                  "/metrics", "/api/v1/auth/me"])
def test_no_credentials_is_401(agent, path):
    answer = agent.get(path, user=None)
    assert answer.status_code == 401
    assert error_code(answer) == "auth_failed"


def test_garbage_token_is_401(agent):
    answer = requests.get(agent.url + "/api/v1/servers", timeout=10,
                          headers={"Authorization": "Bearer bmt_0000000000000000_" + "0" * 64})
    assert answer.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/v1/servers/pc-01/power", {"action": "on"}),
    ("post", "/api/v1/servers/pc-01/bootdev", {"device": "pxe"}),
    ("post", "/api/v1/actions/power", {"action": "off", "label": "zone=vip"}),
    ("post", "/api/v1/register", None),
    ("post", "/api/v1/check", None),
    ("patch", "/api/v1/servers/pc-01", {"desc": "x"}),
    ("get", "/api/v1/users", None),
])
def test_viewer_cannot_act(agent, method, path, body):
    with agent.session("view") as sess:
        answer = sess.request(method, agent.url + path, json=body, timeout=30)
    assert answer.status_code == 403, answer.text
    assert error_code(answer) == "permission_denied"


def test_viewer_cannot_import(agent):
    with agent.session("view") as sess:
        answer = sess.post(agent.url + "/api/v1/servers/import", data=CSV, timeout=30)
    assert answer.status_code == 403


def test_viewer_reads(agent):
    for path in ("/api/v1/servers", "/api/v1/servers/pc-01", "/api/v1/events", "/metrics",
                 "/api/v1/deeplink", "/api/v1/outbox"):
        assert agent.get(path, user="view").status_code == 200, path


def test_operator_acts_but_does_not_manage_users(agent):
    answer = agent.post("/api/v1/register", user="oper")
    assert answer.status_code == 200 and answer.json()["queued"] in (0, 1)
    assert agent.get("/api/v1/users", user="oper").status_code == 403
    created = agent.post("/api/v1/users", user="oper",
                         json={"name": "eve", "password": "eve-pass-1", "role": "admin"})
    assert created.status_code == 403


def test_admin_manages_users(agent):
    created = agent.post("/api/v1/users",
                         json={"name": "newbie", "password": "newbie-pass-1", "role": "viewer"})
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "viewer"
    names = {u["name"] for u in agent.get("/api/v1/users").json()}
    assert names >= set(USERS) | {"newbie"}
    with agent.session() as sess:
        promoted = sess.patch(agent.url + "/api/v1/users/newbie", json={"role": "operator"},
                              timeout=10)
        assert promoted.json()["role"] == "operator"
        assert sess.delete(agent.url + "/api/v1/users/newbie", timeout=10).status_code == 204
        # The last enabled admin cannot demote themselves.
        last = sess.patch(agent.url + "/api/v1/users/admin", json={"role": "viewer"}, timeout=10)
    assert last.status_code == 422


def login(agent, user):
    sess = requests.Session()
    answer = sess.post(agent.url + "/api/v1/auth/login", timeout=10,
                       json={"name": user, "password": USERS[user][1]})
    assert answer.status_code == 200, answer.text
    return sess, answer


def test_login_sets_an_httponly_strict_cookie_and_returns_a_csrf_token(agent):
    sess, answer = login(agent, "oper")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("bm_session=bms_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; [api] secure_cookies is off
    body = answer.json()
    assert body["user"]["name"] == "oper" and body["user"]["role"] == "operator"
    assert len(body["csrf_token"]) >= 32
    me = sess.get(agent.url + "/api/v1/auth/me", timeout=10).json()
    assert me["csrf_token"] == body["csrf_token"]


def test_cookie_post_without_csrf_is_403_and_with_it_works(agent):
    sess, answer = login(agent, "oper")
    assert sess.get(agent.url + "/api/v1/servers", timeout=10).status_code == 200
    refused = sess.post(agent.url + "/api/v1/register", timeout=10)
    assert refused.status_code == 403
    assert error_code(refused) == "csrf_failed"
    wrong = sess.post(agent.url + "/api/v1/register", timeout=10,
                      headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403
    accepted = sess.post(agent.url + "/api/v1/register", timeout=10,
                         headers={"X-CSRF-Token": answer.json()["csrf_token"]})
    assert accepted.status_code == 200, accepted.text


def test_bearer_token_needs_no_csrf(agent):
    answer = agent.post("/api/v1/register", user="oper")
    assert answer.status_code == 200


def test_logout_ends_the_session(agent):
    sess, answer = login(agent, "view")
    csrf = {"X-CSRF-Token": answer.json()["csrf_token"]}
    cookie = sess.cookies["bm_session"]
    assert sess.post(agent.url + "/api/v1/auth/logout", headers=csrf, timeout=10).status_code == 204
    replay = requests.get(agent.url + "/api/v1/servers", cookies={"bm_session": cookie},
                          timeout=10)
    assert replay.status_code == 401


def test_login_is_rate_limited(agent):
    # A user of its own: the lock lasts [auth] login_window_s and other tests log in.
    created = agent.post("/api/v1/users",
                         json={"name": "locked", "password": "locked-pass-1", "role": "viewer"})
    assert created.status_code == 201, created.text
    limit = agent.settings.auth.login_max_failures
    for _ in range(limit):
        wrong = requests.post(agent.url + "/api/v1/auth/login", timeout=10,
                              json={"name": "locked", "password": "not-the-password"})
        assert wrong.status_code == 401
        assert error_code(wrong) == "auth_failed"
    locked = requests.post(agent.url + "/api/v1/auth/login", timeout=10,
                           json={"name": "locked", "password": "locked-pass-1"})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert error_code(locked) == "rate_limited"
    # The token endpoint proves passwords too: same lock.
    token = requests.post(agent.url + "/api/v1/auth/tokens", timeout=10,
                          json={"name": "locked", "password": "locked-pass-1"})
    assert token.status_code == 429
    # Other users are not affected.
    assert requests.post(agent.url + "/api/v1/auth/login", timeout=10, json={
        "name": "view", "password": USERS["view"][1]}).status_code == 200


def test_unknown_user_and_wrong_password_answer_alike(agent):
    unknown = requests.post(agent.url + "/api/v1/auth/login", timeout=10,
                            json={"name": "nobody", "password": "whatever-1"})
    wrong = requests.post(agent.url + "/api/v1/auth/login", timeout=10,
                          json={"name": "admin", "password": "whatever-1"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_tokens_issue_use_list_revoke(agent):
    issued = requests.post(agent.url + "/api/v1/auth/tokens", timeout=10,
                           json={"name": "oper", "password": USERS["oper"][1], "label": "ci"})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["token"].startswith("bmt_") and body["label"] == "ci"
    auth = {"Authorization": f"Bearer {body['token']}"}
    assert requests.get(agent.url + "/api/v1/auth/me", headers=auth, timeout=10).json()[
        "user"]["name"] == "oper"
    listed = requests.get(agent.url + "/api/v1/auth/tokens", headers=auth, timeout=10).json()
    assert body["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    revoked = requests.delete(f"{agent.url}/api/v1/auth/tokens/{body['id']}", headers=auth,
                              timeout=10)
    assert revoked.status_code == 204
    assert requests.get(agent.url + "/api/v1/servers", headers=auth, timeout=10).status_code == 401


def test_errors_follow_the_requested_language(agent):
    zh = agent.get("/api/v1/servers/nope")
    en = agent.get("/api/v1/servers/nope", headers={"Accept-Language": "en-US,en;q=0.9"})
    query = agent.get("/api/v1/servers/nope?lang=en")
    assert zh.status_code == en.status_code == 404
    assert error_code(zh) == error_code(en) == "server_not_found"
    assert en.json()["error"]["message"] == "server nope not found"
    assert query.json() == en.json()
    assert zh.json()["error"]["message"] != en.json()["error"]["message"]
