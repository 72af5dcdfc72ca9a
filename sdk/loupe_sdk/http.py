"""HTTP transport of the Loupe client: one session, timeouts, retries with backoff, typed errors and deployment JWTs."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import requests

from loupe_sdk import __version__
from loupe_sdk.exceptions import LoupeError, NetworkError, ServerError, UnauthorizedError, error_for_status

Timeout = Union[float, Tuple[float, float]]

# Form fields and files of a multipart body, as requests takes them: (field, (filename or None, content[, type])).
Multipart = List[Tuple[str, Tuple[Any, ...]]]

DEFAULT_TIMEOUT: Timeout = (5.0, 60.0)
# A prediction waits for a worker to run the model, which can take far longer than a platform call.
DEFAULT_SERVING_TIMEOUT: Timeout = (5.0, 300.0)
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF = 0.2
# Renew a JWT slightly before it expires so that a request in flight does not carry a token that dies on arrival.
JWT_RENEWAL_MARGIN = 30.0
# The server's documented JWT lifetime, used when a login answer omits `expires`.
JWT_DEFAULT_LIFETIME = 3600.0
MONITORING_LOGIN_PATH = "/api/auth/login"
SERVING_LOGIN_PATH = "/api/login"


class Transport:
    """Sends requests to one Loupe server on behalf of one API token."""

    def __init__(
        self,
        host: str,
        api_token: str,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        serving_timeout: Timeout = DEFAULT_SERVING_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.serving_timeout = serving_timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self._api_token = api_token
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"loupe-sdk/{__version__}"
        # (login URL, deployment id) -> (jwt, expires at): monitoring and serving JWTs never stand in for each other.
        self._jwts: Dict[Tuple[str, str], Tuple[str, float]] = {}

    def close(self) -> None:
        self._session.close()

    def platform(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        files: Optional[Multipart] = None,
    ) -> Any:
        """Call the platform API of this server with the API token (a JSON body, or a multipart one in `files`)."""
        headers = {"Authorization": f"Bearer {self._api_token}"}
        return self.send(method, self.host + path, headers=headers, params=params, json=json, files=files)

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
        """Call a deployment's monitoring service with its monitoring JWT.

        Every call carries an Idempotency-Key, one of its own unless the caller gives one, reused by its retries and
        by its JWT renewal: a retry after a lost answer then gets the stored prediction back instead of a copy.
        """
        return self._with_jwt(
            method,
            oracle_host,
            MONITORING_LOGIN_PATH,
            deployment_id,
            path,
            json=json,
            idempotency_key=idempotency_key or new_idempotency_key(),
            timeout=self.timeout,
        )

    def serving(
        self,
        method: str,
        serving_host: str,
        deployment_id: str,
        path: str,
        *,
        multipart: Multipart,
        idempotency_key: Optional[str] = None,
    ) -> Any:
        """Call a deployment's serving service with its serving JWT, waiting up to `serving_timeout` for the answer;
        like monitoring calls, each carries an Idempotency-Key of its own unless given one."""
        return self._with_jwt(
            method,
            serving_host,
            SERVING_LOGIN_PATH,
            deployment_id,
            path,
            files=multipart,
            idempotency_key=idempotency_key or new_idempotency_key(),
            timeout=self.serving_timeout,
        )

    def _with_jwt(
        self,
        method: str,
        host: str,
        login_path: str,
        deployment_id: str,
        path: str,
        *,
        json: Any = None,
        files: Optional[Multipart] = None,
        idempotency_key: Optional[str],
        timeout: Timeout,
    ) -> Any:
        """Send with the deployment's JWT from this host's login, logging in again once if the JWT is refused."""
        host = host.rstrip("/")
        login = (host + login_path, deployment_id)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

        def attempt(jwt: str) -> Any:
            return self.send(
                method,
                host + path,
                headers={**headers, "Authorization": f"Bearer {jwt}"},
                json=json,
                files=files,
                timeout=timeout,
            )

        # A refused login is final; only a refused JWT is worth one renewal.
        jwt = self._jwt(login, renew=False)
        try:
            return attempt(jwt)
        except UnauthorizedError:
            # The JWT was revoked, outlived by the server's clock or signed with a key since rotated: renew it once.
            self._jwts.pop(login, None)
        return attempt(self._jwt(login, renew=True))

    def _jwt(self, login: Tuple[str, str], *, renew: bool) -> str:
        cached = self._jwts.get(login)
        if cached and not renew and time.time() < cached[1] - JWT_RENEWAL_MARGIN:
            return cached[0]
        login_url, deployment_id = login
        answer = self.send(
            "POST",
            login_url,
            headers={"Authorization": f"Token {self._api_token}"},
            json={"api_token": self._api_token, "deployment_id": deployment_id},
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("jwt"), str):
            raise LoupeError(
                f"the login at {login_url} answered without a jwt", payload=answer if isinstance(answer, dict) else None
            )
        expires = answer.get("expires")
        expires_at = float(expires) if isinstance(expires, (int, float)) else time.time() + JWT_DEFAULT_LIFETIME
        self._jwts[login] = (answer["jwt"], expires_at)
        return answer["jwt"]

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        files: Optional[Multipart] = None,
        timeout: Optional[Timeout] = None,
    ) -> Any:
        """Send one request, retrying server failures and lost connections; 4xx answers are never retried.

        `files` makes the body multipart/form-data; it holds bytes and strings, so each retry resends it whole.
        """
        query = {key: value for key, value in (params or {}).items() if value is not None}
        failure: Optional[LoupeError] = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    params=query,
                    json=json,
                    files=files,
                    timeout=self.timeout if timeout is None else timeout,
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
                if isinstance(replay, dict) and (replay.get("id") or replay.get("oracle_prediction_id")):
                    return replay
            if response.status_code >= 400:
                raise _error_from(response)
            return _body_of(response)
        assert failure is not None
        raise failure


def new_idempotency_key() -> str:
    """A key for one logical call: random, so that two calls never share one, even from two processes."""
    return str(uuid.uuid4())


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
