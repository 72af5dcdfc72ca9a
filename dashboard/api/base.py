"""The plumbing every API view shares: bearer authentication, JSON bodies, and errors answered as JSON."""
import functools
import json
import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, JsonResponse, RawPostDataException
from django.http.response import HttpResponseBase
from django.utils.functional import SimpleLazyObject
from django.views.decorators.csrf import csrf_exempt

from dashboard.errors import ApiError, FieldError, PayloadTooLarge, ServiceUnavailable, Unauthorized, ValidationFailed
from dashboard.services.auth import api_token_authenticate, deployment_jwt_verify

logger = logging.getLogger(__name__)


# Loupe's own bound on an API URL's query string, under the web server's request-line limit
# (scripts/gunicorn.conf.py, limit_request_line) so that a longer one is answered here, in JSON, naming the field.
MAX_QUERY_STRING = 4096


def _query_string_check(request: HttpRequest) -> None:
    raw = request.META.get("QUERY_STRING", "")
    if len(raw) <= MAX_QUERY_STRING:
        return
    longest = max(request.GET.lists(), key=lambda item: sum(len(value) for value in item[1]), default=("query", []))
    error = ApiError(f"the URL's query string is {len(raw)} characters, over the limit of {MAX_QUERY_STRING}",
                     [FieldError(longest[0], f"too long: the query string holds at most {MAX_QUERY_STRING} characters")])
    error.status = 414
    raise error


NUL_REFUSED = "must not contain the NUL character (\\u0000)"


def _nul_check(request: HttpRequest) -> None:
    """PostgreSQL's text cannot hold a NUL character: refuse one in the query or a form, on every database alike."""
    fields = list(request.GET.lists())
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields += list(request.POST.lists())
    for name, values in fields:
        if "\x00" in name or any("\x00" in value for value in values):
            raise ValidationFailed.from_errors([FieldError(name.replace("\x00", ""), NUL_REFUSED)])


def _nul_path(value, path: str = "") -> str | None:
    """The path of the first string of a JSON body (a key or a value) holding a NUL character."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where.replace("\x00", "")
            if found := _nul_path(inner, where):
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            if found := _nul_path(inner, f"{path or 'body'}[{index}]"):
                return found
    return None


def api_view(*, methods: tuple[str, ...], auth: str = "token") -> Callable:
    """Wrap a view that returns (status, body), or a response of its own (a file, say), with the API's
    authentication and JSON errors. `auth` is "token" (API token), "jwt" (deployment JWT), "session" (a logged-in
    page's own JSON calls, CSRF-checked like its forms) or "none".

    With "jwt", a plain API token is accepted as well; the view then checks the deployment itself.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                if request.method not in methods:
                    return error_response(
                        405, f"{request.method} is not allowed here; use {', '.join(methods)}",
                        headers={"Allow": ", ".join(methods)},
                    )
                _query_string_check(request)
                _nul_check(request)
                request.jwt_claims = None
                if auth == "session":
                    if not request.user.is_authenticated:
                        raise Unauthorized("log in first: this is called by Loupe's own pages")
                    request.api_user, request.api_user_id = request.user, request.user.pk
                elif auth != "none":
                    _authenticate(request, allow_jwt=auth == "jwt")
                answer = view(request, *args, **kwargs)
                if isinstance(answer, HttpResponseBase):
                    return answer
                status, body = answer
                return JsonResponse(body, status=status, safe=False)
            except ApiError as error:
                return JsonResponse(error.as_dict(), status=error.status)
            except RequestDataTooBig:
                error = PayloadTooLarge("the request body is over the size limit", [FieldError("body", "too large")])
                return JsonResponse(error.as_dict(), status=error.status)
            except (OperationalError, InterfaceError):
                # The database went away (a restart, a failover): the request's transaction did not commit, so
                # nothing of it is stored; the client may send it again (with its Idempotency-Key).
                logger.warning("database unavailable during %s %s", request.method, request.path, exc_info=True)
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()
                error = ServiceUnavailable(
                    "the database is unavailable; nothing was stored, send the request again shortly",
                    [FieldError("database", "unavailable")])
                return JsonResponse(error.as_dict(), status=error.status, headers={"Retry-After": "5"})

        # Bearer credentials cannot be sent by another site's form; a session cookie can, so only it is CSRF-checked.
        return wrapper if auth == "session" else csrf_exempt(wrapper)

    return decorate


def jwt_deployment_check(request: HttpRequest, deployment_id) -> None:
    """A deployment JWT reaches only the deployment it was issued for."""
    claims = request.jwt_claims
    if claims is not None and claims["deployment"] != str(deployment_id):
        raise Unauthorized("the JWT is bound to another deployment")


def error_response(status: int, message: str, headers: dict | None = None) -> JsonResponse:
    return JsonResponse({"message": message, "errors": []}, status=status, headers=headers)


def _authenticate(request: HttpRequest, *, allow_jwt: bool) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() not in {"bearer", "token"} or not credential:
        raise Unauthorized("send an Authorization header: Bearer <API token or JWT>")
    if credential.count(".") == 2:
        if not allow_jwt:
            raise Unauthorized("this endpoint takes an API token, not a deployment JWT")
        claims = deployment_jwt_verify(token=credential)
        request.jwt_claims = claims
        request.api_user_id = claims["sub"]
        # Loaded only by the views that need more than the id (the ingest path does not).
        request.api_user = SimpleLazyObject(lambda: _active_user(claims["sub"]))
    else:
        request.api_user = api_token_authenticate(plain=credential)
        request.api_user_id = request.api_user.pk


def _active_user(user_id):
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise Unauthorized("the JWT's user no longer exists")
    return user


def json_body(request: HttpRequest):
    """The request body as JSON, whatever Content-Type the client sent."""
    try:
        raw = request.body or b"null"
        body = json.loads(raw)
        # JSON can hold NUL only as the escape \u0000 (json.loads refuses a raw control character): a body without
        # a backslash (one memchr) or without that escape is not walked, which keeps the ingest's large bodies cheap.
        where = _nul_path(body) if b"\\" in raw and b"\\u0000" in raw else None
    except RawPostDataException:  # a multipart form, already read as one (by _nul_check)
        raise ValidationFailed.from_errors([FieldError("body", "must be JSON, not a multipart form")]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValidationFailed.from_errors([FieldError("body", f"is not valid JSON ({error})")]) from None
    except RecursionError:
        raise ValidationFailed.from_errors([FieldError("body", "is nested too deeply")]) from None
    if where is not None:
        raise ValidationFailed.from_errors([FieldError(where, NUL_REFUSED)])
    return body


def require_fields(body, *names: str) -> dict:
    if not isinstance(body, dict):
        raise ValidationFailed.from_errors([FieldError("body", "must be a JSON object")])
    missing = [FieldError(name, "is required") for name in names if body.get(name) in (None, "")]
    if missing:
        raise ValidationFailed.from_errors(missing)
    return body
