"""What every page passes through: the Content-Security-Policy that allows only Loupe's own files, and access
refusals turned into 404 and 403 pages."""
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard.errors import Forbidden, NotFound

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
    """Pages ask dashboard.selectors.access the same questions as the API; its NotFound and Forbidden become the
    404 and 403 pages here, with their message (the API answers them as JSON itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            raise Http404(exception.message) from None
        if isinstance(exception, Forbidden):
            raise PermissionDenied(exception.message) from None
        return None
