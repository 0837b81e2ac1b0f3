"""Openverse: the `/v1/images/` JSON search, anonymous or with an OAuth client-credentials token, page by page."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from .api import ApiSearch, raise_if_rate_limited
from .candidate import Candidate
from .engine import EngineRun, is_original, to_int

log = logging.getLogger(__name__)

NAME = "openverse"
BASE_URL_SETTING = "OPENVERSE_URL"

# --- Openverse API v1; last checked 2026-11 against ../shared/reference/open-licence-apis.md (WordPress/openverse) ---
SEARCH_PATH = "/v1/images/"
TOKEN_PATH = "/v1/auth_tokens/token/"
ANONYMOUS_PAGE_SIZE = 20  # an anonymous page_size above 20 is answered 401
TOKEN_PAGE_SIZE = 100  # a token allows up to 500; 100 keeps each answer small
MAX_PAGE = 20  # Openverse's pagination depth: `page` runs 1..20
QUERY_CHARS = 200  # Openverse cuts `q` there
LICENSE_TYPE = {"open": "all", "commercial": "commercial", "modification": "modification"}  # job filter -> param
RESULTS, PAGE_COUNT, RESULT_COUNT = "results", "page_count", "result_count"  # page_count is at most 20
R_ORIGINAL, R_PAGE, R_TITLE, R_THUMB = "url", "foreign_landing_url", "title", "thumbnail"  # `thumbnail` is no original
R_WIDTH, R_HEIGHT = "width", "height"
R_LICENSE, R_VERSION, R_LICENSE_URL, R_CREATOR, R_ATTRIBUTION = (
    "license", "license_version", "license_url", "creator", "attribution"
)
T_TOKEN, T_EXPIRES = "access_token", "expires_in"
RATE_AVAILABLE = "x-ratelimit-available-"  # + the throttle's scope, e.g. anon_burst, anon_sustained
# ---
TOKEN_MARGIN_SECONDS = 60  # renew a token this long before Openverse says it expires

_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (base URL, client id) -> (token, monotonic expiry)
_tokens_lock = threading.Lock()


def parse(payload: Mapping[str, Any]) -> list[Candidate]:
    """Candidates of one `/v1/images/` answer: originals only, with their licence."""
    found = []
    for item in payload.get(RESULTS) or []:
        image_url, thumb = item.get(R_ORIGINAL), item.get(R_THUMB)
        if not is_original(image_url, thumb):
            continue
        found.append(
            Candidate(
                image_url=image_url,
                page_url=item.get(R_PAGE),
                title=_text(item.get(R_TITLE)),
                thumbnail_url=thumb,
                width=to_int(item.get(R_WIDTH)),
                height=to_int(item.get(R_HEIGHT)),
                source=NAME,
                license=_text(item.get(R_LICENSE), lower=True),
                license_version=_text(item.get(R_VERSION)),
                license_url=_text(item.get(R_LICENSE_URL)),
                creator=_text(item.get(R_CREATOR)),
                attribution=_text(item.get(R_ATTRIBUTION)),
            )
        )
    return found


def results(api: ApiSearch) -> EngineRun:
    """Yield Openverse's results for the query, at most MAX_PAGE pages; anonymous pages hold at most 20."""
    headers = {}
    client_id, secret = api.settings.get("OPENVERSE_CLIENT_ID"), api.settings.get("OPENVERSE_CLIENT_SECRET")
    if client_id and secret:
        headers["Authorization"] = f"Bearer {token(api, client_id, secret)}"
    params: dict[str, Any] = {
        "q": api.query[:QUERY_CHARS],
        "page_size": TOKEN_PAGE_SIZE if headers else ANONYMOUS_PAGE_SIZE,
        "mature": "false" if api.safe_search else "true",
    }
    if api.licence in LICENSE_TYPE:
        params["license_type"] = LICENSE_TYPE[api.licence]
    for page in range(1, MAX_PAGE + 1):
        response = api.request("GET", SEARCH_PATH, params=params | {"page": page}, headers=headers)
        if response.status_code == 401 and headers:  # the token expired or was revoked: one new one, once
            _forget_token(api.base_url, str(client_id))
            headers["Authorization"] = f"Bearer {token(api, str(client_id), str(secret))}"
            response = api.request("GET", SEARCH_PATH, params=params | {"page": page}, headers=headers)
        raise_if_rate_limited(response, SEARCH_PATH)
        if response.status_code != 200:
            raise ValueError(f"{SEARCH_PATH} answered HTTP {response.status_code}: {response.text[:120]}")
        payload = response.json()
        yield from parse(payload)
        if not payload.get(RESULTS) or page >= (to_int(payload.get(PAGE_COUNT)) or 0):
            beyond = (to_int(payload.get(RESULT_COUNT)) or 0) > page * params["page_size"]
            return f"stopped at Openverse's page cap ({page} pages)" if beyond else f"ran dry after {page} pages"
        used_up = [name for name, value in response.headers.items()
                   if name.lower().startswith(RATE_AVAILABLE) and value.strip() == "0"]
        if used_up:
            return f"stopped: rate limit used up ({used_up[0].lower().removeprefix(RATE_AVAILABLE)}) after {page} pages"
    return f"stopped at our page cap ({MAX_PAGE} pages)"


def token(api: ApiSearch, client_id: str, secret: str) -> str:
    """A bearer token for the client credentials, reused until shortly before it expires."""
    key = (api.base_url, client_id)
    with _tokens_lock:
        cached = _tokens.get(key)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = api.request("POST", TOKEN_PATH, data=form)
    raise_if_rate_limited(response, TOKEN_PATH)
    if response.status_code != 200:
        raise ValueError(f"{TOKEN_PATH} refused the client credentials (HTTP {response.status_code})")
    answer = response.json()
    value = str(answer[T_TOKEN])
    lifetime = float(answer.get(T_EXPIRES) or 0) - TOKEN_MARGIN_SECONDS
    with _tokens_lock:
        _tokens[key] = (value, time.monotonic() + max(0.0, lifetime))
    return value


def _forget_token(base_url: str, client_id: str) -> None:
    with _tokens_lock:
        _tokens.pop((base_url, client_id), None)


def _text(value: Any, *, lower: bool = False) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return (text.lower() if lower else text) or None
