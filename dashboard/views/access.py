"""Page-side access checks: the same membership rules as the API, answered as 404 or 403 pages."""
from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard.errors import Forbidden, NotFound
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member


def deployment_for_page(request, deployment_id, role: str = Role.LABELER):
    try:
        return deployment_for_member(user=request.user, deployment_id=deployment_id, role=role)
    except NotFound as error:
        raise Http404(error.message) from None
    except Forbidden as error:
        raise PermissionDenied(error.message) from None
