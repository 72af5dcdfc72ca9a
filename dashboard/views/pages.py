"""Pages of the core: the deployments a member can see, one deployment's page, and its images."""
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from dashboard.models import Data, Role
from dashboard.selectors.access import (
    deployment_for_member, deployments_visible_to, membership_current, membership_get, memberships_of,
)
from dashboard.selectors.deployments import latest_predictions, status_counts
from dashboard.views.context import SESSION_ORGANIZATION


def home(request):
    return redirect("deployment-list" if request.user.is_authenticated else "login")


@login_required
@require_GET
def deployment_list(request):
    """The deployments of the organization the member works in now (chosen in the top bar)."""
    current = membership_current(memberships=list(memberships_of(user=request.user)),
                                 organization_id=request.session.get(SESSION_ORGANIZATION))
    deployments = list(deployments_visible_to(user=request.user).filter(organization_id=current and current.organization_id)
                       .order_by("name"))
    for deployment in deployments:
        deployment.counts = status_counts(deployment)
    context = {"deployments": deployments, "current": current, "is_admin": bool(current and current.allows(Role.ADMIN))}
    return render(request, "dashboard/deployment_list.html", context)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def deployment_detail(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    context = {
        "deployment": deployment,
        "membership": membership,
        "counts": status_counts(deployment),
        "latest": latest_predictions(deployment=deployment),
    }
    template = "dashboard/deployment_detail.html"
    if request.htmx:
        template += "#latest"
    return render(request, template, context)


def _data_for_member(request, data_id) -> Data:
    data = Data.objects.filter(pk=data_id).first()
    if data is None or membership_get(user=request.user, organization_id=data.organization_id) is None:
        raise Http404("no such image")
    return data


def _image_response(name: str, content_type: str) -> FileResponse:
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    # Content-addressed files never change, so browsers may keep them (privately) for a long time.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
@require_GET
def data_image(request, data_id):
    data = _data_for_member(request, data_id)
    return _image_response(data.image.name, data.content_type)


@login_required
@require_GET
def data_thumbnail(request, data_id):
    data = _data_for_member(request, data_id)
    if not data.thumbnail:
        # The thumbnail task has not run yet: the full image stands in, uncached.
        response = FileResponse(default_storage.open(data.image.name, "rb"), content_type=data.content_type)
        response["Cache-Control"] = "private, no-cache"
        return response
    return _image_response(data.thumbnail.name, "image/webp")
