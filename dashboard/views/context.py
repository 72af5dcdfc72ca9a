"""Template context every page gets: the member's organizations and roles, for the navigation bar."""
from dashboard.selectors.access import memberships_of


def navigation(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"memberships": list(memberships_of(user=request.user))}
