"""Browser sign-in for the MLflow UI, driven with `requests` as a browser would: redirect to the
sign-in page, form post, session cookie, the UI and its ajax-api calls, refusal of cross-site
state changes, sign-out."""

from html.parser import HTMLParser
from typing import Optional
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from support import ADMIN, acting_as, assert_mlflow_error

LOGIN_PREFIX = "/_mlgate/login"
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (e2e) Gecko/20100101 Firefox/140.0",
}


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append(a)


def _login_form(html: str) -> dict:
    parser = _Forms()
    parser.feed(html)
    forms = [f for f in parser.forms if any(i.get("type") == "password" for i in f["inputs"])]
    assert forms, f"no sign-in form with a password field in:\n{html[:2000]}"
    return forms[0]


def _fill(form: dict, username: str, password: str) -> dict:
    data = {}
    for i in form["inputs"]:
        name, kind = i.get("name"), (i.get("type") or "text").lower()
        if not name:
            continue
        if kind == "password":
            data[name] = password
        elif kind in ("text", "email") or name.lower() in ("username", "user", "login"):
            data[name] = username
        elif kind == "hidden":
            data[name] = i.get("value") or ""
    return data


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def sign_in(base: str, username: str, password: str, expect_ok: bool = True,
            origin: Optional[str] = None):
    """Sign in like a browser (from `origin`, by default the server's); returns (session,
    response of the form post)."""
    s = requests.Session()
    s.headers.update(BROWSER)
    first = s.get(f"{base}/", allow_redirects=False, timeout=30)
    assert first.status_code in (302, 303, 307), (first.status_code, first.text[:300])
    location = first.headers["Location"]
    assert urlsplit(location).path.startswith(LOGIN_PREFIX), location
    page = s.get(urljoin(base + "/", location), timeout=30)
    assert page.status_code == 200, page.text[:500]
    assert "text/html" in page.headers.get("Content-Type", "")
    form = _login_form(page.text)
    assert form["method"] == "post"
    posted = s.post(
        urljoin(page.url, form["action"] or page.url),
        data=_fill(form, username, password),
        headers={"Origin": origin or _origin(base), "Referer": page.url},
        allow_redirects=False,
        timeout=30,
    )
    if expect_ok:
        assert posted.status_code in (302, 303), (posted.status_code, posted.text[:500])
        assert s.cookies, "signing in set no cookie"
    return s, posted


@pytest.fixture
def admin_browser(stack, admin):
    s, _ = sign_in(stack.url, admin.name, admin.password)
    return s


def test_unauthenticated_browser_is_sent_to_the_sign_in_page(stack):
    resp = requests.get(f"{stack.url}/", headers=BROWSER, allow_redirects=False, timeout=30)
    assert resp.status_code in (302, 303, 307), (resp.status_code, resp.text[:300])
    assert urlsplit(resp.headers["Location"]).path.startswith(LOGIN_PREFIX)
    # An API client (no text/html in Accept) gets a 401 in MLflow's shape instead.
    resp = requests.get(f"{stack.url}/ajax-api/2.0/mlflow/experiments/search", timeout=30)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")


def test_sign_in_sets_a_safe_session_cookie(stack, admin):
    _, posted = sign_in(stack.url, admin.name, admin.password)
    set_cookie = posted.headers.get("Set-Cookie", "")
    assert "httponly" in set_cookie.lower(), set_cookie
    assert "samesite" in set_cookie.lower(), set_cookie
    assert admin.password not in set_cookie


def test_wrong_password_on_the_form_signs_nobody_in(stack, admin):
    s, posted = sign_in(stack.url, admin.name, "not-the-password", expect_ok=False)
    assert posted.status_code in (200, 302, 303, 400, 401, 403)
    resp = s.get(f"{stack.url}/ajax-api/2.0/mlflow/experiments/search?max_results=1", timeout=30)
    assert resp.status_code == 401


def test_ui_and_ajax_api_work_with_the_cookie(stack, admin_browser, fresh_name):
    ui = admin_browser.get(f"{stack.url}/", timeout=30)
    assert ui.status_code == 200, ui.text[:300]
    assert "text/html" in ui.headers.get("Content-Type", "")
    assert "mlflow" in ui.text.lower()

    api = admin_browser.get(
        f"{stack.url}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert api.status_code == 200, api.text[:300]
    assert "experiments" in api.json()

    # A same-origin state change from the UI works.
    created = admin_browser.post(
        f"{stack.url}/ajax-api/2.0/mlflow/experiments/create",
        json={"name": fresh_name("created-from-the-ui")},
        headers={"Origin": _origin(stack.url), "Accept": "application/json"},
        timeout=30,
    )
    assert created.status_code == 200, created.text[:300]


def test_cross_site_post_with_the_cookie_is_refused(stack, admin_browser, admin, mlflow_log):
    name = "csrf-should-not-exist"
    mark = mlflow_log.mark()
    # The same host and port with the other scheme is another origin.
    other_scheme = _origin(stack.url).replace("http://", "https://", 1)
    assert other_scheme != _origin(stack.url)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": other_scheme},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/attack.html"},
    ):
        resp = admin_browser.post(
            f"{stack.url}/ajax-api/2.0/mlflow/experiments/create",
            json={"name": name},
            headers={**headers, "Accept": "application/json"},
            timeout=30,
        )
        assert resp.status_code == 403, (headers, resp.status_code, resp.text[:300])
        assert_mlflow_error(resp, 403)
    assert not mlflow_log.saw(mark, "experiments/create")
    with acting_as(admin) as client:
        assert client.get_experiment_by_name(name) is None


def test_sign_in_from_the_other_scheme_is_refused(stack, admin):
    other_scheme = _origin(stack.url).replace("http://", "https://", 1)
    s, posted = sign_in(stack.url, admin.name, admin.password, expect_ok=False,
                        origin=other_scheme)
    assert posted.status_code == 403, (posted.status_code, posted.text[:300])
    assert not s.cookies.get_dict().get("mlgate_session")


def test_cookie_plus_another_credential_is_refused(stack, admin_browser, reader):
    resp = admin_browser.get(
        f"{stack.url}/ajax-api/2.0/mlflow/experiments/search?max_results=1",
        auth=reader.requests_auth(),
        timeout=30,
    )
    assert_mlflow_error(resp, 400)


def test_sign_out_ends_the_session(stack, admin):
    s, _ = sign_in(stack.url, admin.name, admin.password)
    api = f"{stack.url}/ajax-api/2.0/mlflow/experiments/search?max_results=1"
    assert s.get(api, timeout=30).status_code == 200
    stolen = requests.utils.dict_from_cookiejar(s.cookies)

    out = s.post(
        f"{stack.url}/_mlgate/logout",
        headers={"Origin": _origin(stack.url)},
        allow_redirects=False,
        timeout=30,
    )
    assert out.status_code in (200, 302, 303), (out.status_code, out.text[:300])
    assert s.get(api, timeout=30).status_code == 401
    # The old cookie value is dead on the server too, not just deleted in the browser.
    replay = requests.get(api, cookies=stolen, timeout=30)
    assert replay.status_code == 401
    again = s.get(f"{stack.url}/", headers=BROWSER, allow_redirects=False, timeout=30)
    assert again.status_code in (302, 303, 307)


def test_session_user_is_the_principal(stack, admin_browser, scratch_experiment):
    resp = admin_browser.post(
        f"{stack.url}/ajax-api/2.0/mlflow/runs/create",
        json={"experiment_id": scratch_experiment, "user_id": "mallory"},
        headers={"Origin": _origin(stack.url), "Accept": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["run"]["info"]["user_id"] == ADMIN
