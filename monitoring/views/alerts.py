"""A deployment's alert rules (ML leads and admins edit, labelers read) and its firing and resolved alerts."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import Role
from dashboard.selectors.access import deployment_for_member, role_require
from monitoring.models import AlertKind, AlertRule
from monitoring.services.alerts import (alert_rule_create, alert_rule_delete, alert_rule_update, alerts_active,
                                        alerts_history)


def _rule_fields(post) -> dict:
    """The form's fields as the service's arguments; a field that is not a number is refused by name."""
    errors, values = [], {"kind": post.get("kind", ""), "webhook_url": post.get("webhook_url", "").strip(),
                          "active": post.get("active") == "on"}
    for name, cast in (("threshold", float), ("window_minutes", int)):
        text = post.get(name, "").strip()
        if not text:
            errors.append(FieldError(name, "is required"))
            continue
        try:
            values[name] = cast(text)
        except ValueError:
            errors.append(FieldError(name, f"must be a {'number' if cast is float else 'whole number'}, not {text!r}"))
    if errors:
        raise ValidationFailed.from_errors(errors)
    return values


def _page(request, deployment, membership, *, errors=None, form=None, status=200):
    return render(request, "monitoring/alerts.html", {
        "deployment": deployment, "membership": membership,
        "can_edit": Role.rank(membership.role) >= Role.rank(Role.ML_LEAD),
        "rules": AlertRule.objects.filter(deployment=deployment).order_by("created_at"),
        "firing": alerts_active(deployment=deployment), "history": alerts_history(deployment=deployment),
        "kinds": AlertKind.choices, "errors": errors or [], "form": form or {}}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def monitoring_alerts(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    if request.method == "GET":
        return _page(request, deployment, membership)
    role_require(held=membership.role, role=Role.ML_LEAD)
    try:
        alert_rule_create(deployment=deployment, created_by=request.user, **_rule_fields(request.POST))
    except ValidationFailed as refused:
        return _page(request, deployment, membership, errors=refused.errors, form=request.POST, status=400)
    return redirect("monitoring-alerts", deployment.id)


@login_required
@require_POST
def monitoring_alert_rule(request, deployment_id, rule_id):
    """Edit (or, with action=delete, delete) one rule."""
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id, role=Role.ML_LEAD)
    rule = get_object_or_404(AlertRule, pk=rule_id, deployment=deployment)
    if request.POST.get("action") == "delete":
        alert_rule_delete(rule=rule)
        return redirect("monitoring-alerts", deployment.id)
    try:
        alert_rule_update(rule=rule, **_rule_fields(request.POST))
    except ValidationFailed as refused:
        return _page(request, deployment, membership, errors=refused.errors,
                     form={**request.POST.dict(), "rule": str(rule.pk)}, status=400)
    return redirect("monitoring-alerts", deployment.id)
