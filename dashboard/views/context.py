"""Template context every page gets: the member's organizations and roles, and the one they work in now."""
from dashboard.models import Role
from dashboard.selectors.access import membership_current, memberships_of

SESSION_ORGANIZATION = "organization_id"


def navigation(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    memberships = list(memberships_of(user=request.user))
    current = membership_current(memberships=memberships, organization_id=request.session.get(SESSION_ORGANIZATION))
    return {
        "memberships": memberships,
        "current_membership": current,
        "current_is_admin": bool(current and current.allows(Role.ADMIN)),
    }
