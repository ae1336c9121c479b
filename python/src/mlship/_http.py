"""Small HTTP helper on the standard library: JSON or bytes in, JSON out, server errors as ServerError."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .errors import MlshipError, ServerError


def request(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            token: str | None = None, timeout: float = 60.0) -> Any:
    h = dict(headers or {})
    if token:
        h["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw = res.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            message = json.loads(raw).get("error") or raw.decode("utf-8", "replace")
        except (ValueError, AttributeError):
            message = raw.decode("utf-8", "replace")[:500] or e.reason
        raise ServerError(e.code, str(message), url) from None
    except urllib.error.URLError as e:
        raise MlshipError(f"cannot reach the mlship server at {url}: {e.reason}; is 'mlship serve' running there?") from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise MlshipError(f"{url} answered something that is not JSON: {raw[:200]!r}") from None


def post_json(url: str, payload: Any, *, token: str | None = None, timeout: float = 60.0) -> Any:
    body = json.dumps(payload, allow_nan=False).encode()
    return request("POST", url, body=body, headers={"content-type": "application/json"}, token=token, timeout=timeout)
