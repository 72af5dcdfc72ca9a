"""API tokens (stored as digests, shown once) and the one-hour JWTs bound to a deployment."""
import hashlib
import secrets
import time

import jwt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from dashboard.errors import Unauthorized
from dashboard.models import ApiToken, Deployment

TOKEN_PREFIX = "loupe_"
JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "loupe-deployment"


def token_digest(plain: str) -> str:
    # Tokens carry 256 random bits, so one round of SHA-256 is enough to keep them unusable if leaked.
    return hashlib.sha256(plain.encode()).hexdigest()


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=plain[:12], digest=token_digest(plain))
    return token, plain


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def api_token_authenticate(*, plain: str) -> AbstractBaseUser:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(plain), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        raise Unauthorized("the API token is unknown or revoked")
    now = timezone.now()
    # Written at most once a minute, so that a busy client does not turn every read into a write.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def deployment_jwt_issue(*, user: AbstractBaseUser, deployment: Deployment) -> dict:
    expires = int(time.time()) + settings.LOUPE_JWT_LIFETIME_SECONDS
    claims = {"sub": str(user.pk), "deployment": str(deployment.pk), "exp": expires, "aud": JWT_AUDIENCE}
    return {"jwt": jwt.encode(claims, settings.SECRET_KEY, algorithm=JWT_ALGORITHM), "expires": expires}


def deployment_jwt_verify(*, token: str) -> dict:
    try:
        return jwt.decode(
            token, settings.SECRET_KEY, algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE,
            options={"require": ["exp", "sub", "deployment"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the JWT has expired; log in again at /api/auth/login") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the JWT is not valid") from None
