"""HTTP transport of the Loupe client: one session, timeouts, retries with backoff, typed errors and monitoring JWTs."""

from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import requests

from loupe_sdk import __version__
from loupe_sdk.exceptions import LoupeError, NetworkError, ServerError, UnauthorizedError, error_for_status

Timeout = Union[float, Tuple[float, float]]

DEFAULT_TIMEOUT: Timeout = (5.0, 60.0)
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF = 0.2
# Renew a JWT slightly before it expires so that a request in flight does not carry a token that dies on arrival.
JWT_RENEWAL_MARGIN = 30.0
# The server's documented JWT lifetime, used when a login answer omits `expires`.
JWT_DEFAULT_LIFETIME = 3600.0


class Transport:
    """Sends requests to one Loupe server on behalf of one API token."""

    def __init__(
        self,
        host: str,
        api_token: str,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self._api_token = api_token
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"loupe-sdk/{__version__}"
        self._jwts: Dict[str, Tuple[str, float]] = {}

    def close(self) -> None:
        self._session.close()

    def platform(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
    ) -> Any:
        """Call the platform API of this server with the API token."""
        headers = {"Authorization": f"Bearer {self._api_token}"}
        return self.send(method, self.host + path, headers=headers, params=params, json=json)

    def download(self, path: str, *, params: Optional[Mapping[str, Any]] = None) -> bytes:
        """GET a file from the platform API (an export, say); errors are the API's JSON ones, raised typed."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        headers = {"Authorization": f"Bearer {self._api_token}"}
        try:
            response = self._session.get(self.host + path, headers=headers, params=query, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise NetworkError(f"GET {self.host + path}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response.content

    def monitoring(
        self,
        method: str,
        oracle_host: str,
        deployment_id: str,
        path: str,
        *,
        json: Any = None,
        idempotency_key: Optional[str] = None,
    ) -> Any:
        """Call a deployment's monitoring service with its JWT, logging in again once if the JWT is refused."""
        url = oracle_host.rstrip("/") + path
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

        def attempt(jwt: str) -> Any:
            return self.send(method, url, headers={**headers, "Authorization": f"Bearer {jwt}"}, json=json)

        jwt = self._jwt(oracle_host, deployment_id, renew=False)
        try:
            return attempt(jwt)
        except UnauthorizedError:
            # The JWT was revoked, outlived by the server's clock or signed with a key since rotated: renew it once.
            self._jwts.pop(deployment_id, None)
        return attempt(self._jwt(oracle_host, deployment_id, renew=True))

    def _jwt(self, oracle_host: str, deployment_id: str, *, renew: bool) -> str:
        cached = self._jwts.get(deployment_id)
        if cached and not renew and time.time() < cached[1] - JWT_RENEWAL_MARGIN:
            return cached[0]
        answer = self.send(
            "POST",
            oracle_host.rstrip("/") + "/api/auth/login",
            headers={"Authorization": f"Token {self._api_token}"},
            json={"api_token": self._api_token, "deployment_id": deployment_id},
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("jwt"), str):
            raise LoupeError(
                "the monitoring login answered without a jwt", payload=answer if isinstance(answer, dict) else None
            )
        expires = answer.get("expires")
        expires_at = float(expires) if isinstance(expires, (int, float)) else time.time() + JWT_DEFAULT_LIFETIME
        self._jwts[deployment_id] = (answer["jwt"], expires_at)
        return answer["jwt"]

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
    ) -> Any:
        """Send one request, retrying server failures and lost connections; 4xx answers are never retried."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        failure: Optional[LoupeError] = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._session.request(
                    method, url, headers=dict(headers), params=query, json=json, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = NetworkError(f"{method} {url}: {exc}")
                continue
            if response.status_code >= 500:
                failure = _error_from(response)
                continue
            if response.status_code == 409 and attempt and "Idempotency-Key" in headers:
                # An earlier attempt was stored but its answer was lost: the 409 names what was stored.
                replay = _body_of(response)
                if isinstance(replay, dict) and replay.get("id"):
                    return replay
            if response.status_code >= 400:
                raise _error_from(response)
            return _body_of(response)
        assert failure is not None
        raise failure


def _error_from(response: requests.Response) -> LoupeError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    fallback = (
        f"{response.request.method} {response.url} answered {response.status_code} {response.reason or ''}".strip()
    )
    error = error_for_status(response.status_code, payload, fallback)
    if isinstance(error, ServerError) and not payload:
        # Proxies answer 5xx with HTML; keep a bit of it, it is often the only clue.
        error.message = f"{fallback}: {response.text[:200]}" if response.text else fallback
    return error


def _body_of(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise LoupeError(
            f"{response.request.method} {response.url} answered {response.status_code} with a body that is not JSON",
            status_code=response.status_code,
        ) from None
