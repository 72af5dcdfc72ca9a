"""Monitoring's page fragments: the training-data reference's progress, polled by the feedback-loop page."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from dashboard.selectors.access import deployment_for_member
from monitoring.selectors import training_data_of


@login_required
@require_GET
@vary_on_headers("HX-Request")
def training_data_status(request, deployment_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id)
    if not request.htmx:
        return redirect(reverse("feedback-loop", args=[deployment.id]))
    context = {"deployment": deployment, "training": training_data_of(deployment=deployment)}
    return render(request, "monitoring/training_data.html#training", context)
