"""API tokens (stored as digests, shown once) and the one-hour JWTs bound to a deployment."""
import datetime as dt
import hashlib
import math
import secrets
import time

import jwt
from django.db import transaction
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from dashboard.errors import Unauthorized
from dashboard.models import ApiToken, Deployment, LoginFailure
from dashboard.selectors.prepared import PreparedQuery
from dashboard.services.audit import audit_record

TOKEN_PREFIX = "loupe_"
JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "loupe-deployment"


def token_digest(plain: str) -> str:
    # Tokens carry 256 random bits, so one round of SHA-256 is enough to keep them unusable if leaked.
    return hashlib.sha256(plain.encode()).hexdigest()


def _audit_token(token: ApiToken, action: str, actor: AbstractBaseUser | None) -> None:
    # A token is its user's, not an organization's: each organization the user belongs to sees the line.
    from dashboard.models import Membership

    target = f"token {token.name!r} ({token.prefix}…) of {token.user.get_username()}"
    for membership in Membership.objects.filter(user_id=token.user_id).select_related("organization"):
        audit_record(organization=membership.organization, actor=actor, action=action, target=target)


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=plain[:12], digest=token_digest(plain))
        _audit_token(token, "token.created", user)
    return token, plain


def api_token_revoke(*, token: ApiToken, actor: AbstractBaseUser | None = None) -> None:
    """From the next request on, neither the token nor any JWT issued from it opens anything."""
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            token.refresh_from_db(fields=["revoked_at"])
            _audit_token(token, "token.revoked", actor or token.user)


def api_token_authenticate(*, plain: str) -> AbstractBaseUser:
    return api_token_check(plain=plain).user


def api_token_check(*, plain: str) -> ApiToken:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(plain), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        raise Unauthorized("the API token is unknown or revoked")
    _token_used(token.pk, token.last_used_at)
    return token


def _token_used(token_id, last_used_at) -> None:
    # Written at most once a minute, so that a busy client (with the token or a JWT issued from it) does not turn
    # every request into a write; the admin console shows it as the member's last activity.
    now = timezone.now()
    if last_used_at is None or (now - last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)


def deployment_jwt_issue(*, token: ApiToken, deployment: Deployment) -> dict:
    """A JWT naming the API token it came from (`tid`), so that revoking the token ends the JWT at once."""
    expires = int(time.time()) + settings.LOUPE_JWT_LIFETIME_SECONDS
    claims = {"sub": str(token.user_id), "tid": token.pk, "deployment": str(deployment.pk), "exp": expires,
              "aud": JWT_AUDIENCE}
    return {"jwt": jwt.encode(claims, settings.SECRET_KEY, algorithm=JWT_ALGORITHM), "expires": expires}


def deployment_jwt_verify(*, token: str) -> dict:
    """The JWT's claims, if it is signed, unexpired, and the API token it was issued from is still live (one
    indexed query per request: revocation, removal and demotion end access at once, not within the hour)."""
    try:
        claims = jwt.decode(
            token, settings.SECRET_KEY, algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE,
            options={"require": ["exp", "sub", "deployment", "tid"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the JWT has expired; log in again at /api/auth/login") from None
    except jwt.MissingRequiredClaimError:
        raise Unauthorized("the JWT was issued before tokens were named in it; log in again at /api/auth/login") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the JWT is not valid") from None
    live = _LIVE_TOKEN.first(token_id=claims["tid"], user_id=claims["sub"])
    if live is None:
        raise Unauthorized("the API token this JWT was issued from is revoked; log in with a live token")
    _token_used(claims["tid"], live.last_used_at)
    return claims


# Prepared (see dashboard.selectors.prepared): it runs on every request of a camera or a serving client.
_LIVE_TOKEN = PreparedQuery(
    lambda *, token_id, user_id: ApiToken.objects.filter(pk=token_id, user_id=user_id, revoked_at__isnull=True,
                                                         user__is_active=True).only("last_used_at").order_by()[:1],
    token_id=ApiToken._meta.pk, user_id=ApiToken._meta.get_field("user"),
)


# The login pages' guard: this many failed log-ins for one username within the window stop its tries until the
# oldest of them leaves the window. API tokens and invitation links are long random secrets, not guessed.
LOGIN_FAILURES_ALLOWED = 10
LOGIN_FAILURE_WINDOW = dt.timedelta(minutes=15)


def login_refusal(*, username: str) -> str | None:
    """Why `username`'s password is not to be checked now (too many failed log-ins lately); None when it may be."""
    since = timezone.now() - LOGIN_FAILURE_WINDOW
    failures = list(LoginFailure.objects.filter(username=_login_key(username), at__gte=since)
                    .order_by("-at").values_list("at", flat=True)[:LOGIN_FAILURES_ALLOWED])
    if len(failures) < LOGIN_FAILURES_ALLOWED:
        return None
    minutes = max(1, math.ceil((failures[-1] + LOGIN_FAILURE_WINDOW - timezone.now()).total_seconds() / 60))
    return f"Too many failed log-ins for this username: try again in {minutes} minute{'' if minutes == 1 else 's'}."


def login_attempted(*, username: str, succeeded: bool) -> None:
    """Count a checked password: a failure within the window, a success clears the username's count. Call it
    outside any transaction a refusal rolls back."""
    key = _login_key(username)
    if succeeded:
        LoginFailure.objects.filter(username=key).delete()
        return
    # Failures past the window count for nothing any more, whoever's they were.
    LoginFailure.objects.filter(at__lt=timezone.now() - LOGIN_FAILURE_WINDOW).delete()
    LoginFailure.objects.create(username=key, at=timezone.now())


def _login_key(username: str) -> str:
    return username.lower()[:150]
