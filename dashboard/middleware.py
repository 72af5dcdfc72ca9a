"""What every page passes through: the Content-Security-Policy that allows only Loupe's own files, and access
refusals turned into 404 and 403 pages."""
from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404

from dashboard.errors import Forbidden, NotFound, ValidationFailed

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "LOUPE_CONTENT_SECURITY_POLICY", POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


class AccessErrorPagesMiddleware:
    """Pages ask dashboard.selectors.access and dashboard.fields the same questions as the API; their NotFound,
    Forbidden and ValidationFailed become the 404, 403 and 400 pages here (the API answers them as JSON itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            raise Http404(exception.message) from None
        if isinstance(exception, Forbidden):
            raise PermissionDenied(exception.message) from None
        if isinstance(exception, ValidationFailed):  # a page's parameters the rules refuse: 400, saying why
            raise BadRequest(exception.message) from None
        return None
