"""The admin's console for people: members and roles, invitations and their acceptance, the audit log, the
organization switcher, and new organizations (superusers). Every write is a CSRF-checked POST whose role is
checked here on the server, whatever the page shows."""
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django_htmx.http import HttpResponseClientRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.errors import ApiError, NotFound
from dashboard.fields import uuid_field
from dashboard.models import Invitation, Membership, Organization, Role
from dashboard.selectors.access import organization_for_member
from dashboard.selectors.members import audit_events_of, invitations_pending, members_of
from dashboard.services.members import (
    invitation_accept, invitation_create, invitation_existing_user, invitation_for_link, invitation_revoke,
    membership_remove, membership_role_change, organization_create,
)
from dashboard.views.context import SESSION_ORGANIZATION


def _admin_organization(request, organization_id):
    return organization_for_member(user=request.user, organization_id=organization_id, role=Role.ADMIN)


@login_required
@require_http_methods(["GET", "POST"])
def member_list(request, organization_id):
    organization = _admin_organization(request, organization_id)
    created = None
    errors = []
    form = {"invitee": "", "role": Role.LABELER}
    status = 200
    if request.method == "POST":
        form = {"invitee": request.POST.get("invitee", ""), "role": request.POST.get("role", "")}
        try:
            invitation, plain = invitation_create(
                organization=organization, invitee=form["invitee"], role=form["role"], created_by=request.user,
                link_for=lambda plain: request.build_absolute_uri(reverse("invitation-accept", args=[plain])),
            )
        except ApiError as error:
            errors = error.for_form()
            status = 400
        else:
            created = {"invitation": invitation,
                       "link": request.build_absolute_uri(reverse("invitation-accept", args=[plain]))}
            form = {"invitee": "", "role": Role.LABELER}
    context = {
        "organization": organization,
        "members": members_of(organization=organization),
        "invitations": invitations_pending(organization=organization),
        "roles": Role.choices,
        "created": created,
        "errors": errors,
        "form": form,
    }
    return render(request, "dashboard/members.html", context, status=status)


def _membership(organization, membership_id) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), pk=membership_id, organization=organization)


@login_required
@require_POST
def member_role(request, organization_id, membership_id):
    organization = _admin_organization(request, organization_id)
    membership = _membership(organization, membership_id)
    try:
        membership_role_change(membership=membership, role=request.POST.get("role", ""), actor=request.user)
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.get_username()} is now {Role(request.POST['role']).label}.")
    return redirect("member-list", organization.id)


@login_required
@require_POST
def member_remove(request, organization_id, membership_id):
    organization = _admin_organization(request, organization_id)
    membership = _membership(organization, membership_id)
    try:
        membership_remove(membership=membership, actor=request.user)
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.get_username()} was removed; their reviews keep their name.")
    if membership.user_id == request.user.id and not Membership.objects.filter(pk=membership.pk).exists():
        return redirect("deployment-list")
    return redirect("member-list", organization.id)


@login_required
@require_POST
def invitation_withdraw(request, organization_id, invitation_id):
    organization = _admin_organization(request, organization_id)
    invitation = get_object_or_404(Invitation, pk=invitation_id, organization=organization)
    invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, f"The invitation of {invitation.invitee} was withdrawn.")
    return redirect("member-list", organization.id)


@login_required
def audit_log(request, organization_id):
    organization = _admin_organization(request, organization_id)
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        before = None
    events = audit_events_of(organization=organization, before_id=before, limit=100)
    context = {"organization": organization, "events": events,
               "older": events[-1].id if len(events) == 100 else None}
    return render(request, "dashboard/audit_log.html", context)


@require_http_methods(["GET", "POST"])
def invitation_accept_page(request, token):
    """Open to anyone holding the link: it is the credential. A new invitee chooses a username and password; an
    existing account confirms with its password. Either way they land on the deployments, logged in."""
    try:
        invitation = invitation_for_link(plain=token)
    except NotFound as error:
        return render(request, "dashboard/invitation_accept.html", {"refused": error.message}, status=404)
    existing = invitation_existing_user(invitation)
    errors = []
    username = invitation.username
    if request.method == "POST":
        username = request.POST.get("username", "")
        password = request.POST.get("password", "")
        if existing is None and password != request.POST.get("password_again", ""):
            errors = [{"field": "password_again", "message": "the two passwords differ"}]
        else:
            try:
                user = invitation_accept(plain=token, password=password, username=username)
            except NotFound as error:
                return render(request, "dashboard/invitation_accept.html", {"refused": error.message}, status=404)
            except ApiError as error:
                errors = error.for_form()
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[SESSION_ORGANIZATION] = str(invitation.organization_id)
                messages.success(request, f"Welcome to {invitation.organization.name}.")
                return redirect("deployment-list")
    context = {"invitation": invitation, "existing": existing, "errors": errors, "username": username}
    return render(request, "dashboard/invitation_accept.html", context, status=400 if errors else 200)


@login_required
@require_POST
def organization_switch(request):
    organization = organization_for_member(
        user=request.user, organization_id=uuid_field(request.POST.get("organization_id"), "organization_id"))
    request.session[SESSION_ORGANIZATION] = str(organization.id)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = reverse("deployment-list")
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@login_required
@require_http_methods(["GET", "POST"])
def organization_new(request):
    if not request.user.is_superuser:
        raise PermissionDenied("only a superuser creates organizations")
    errors = []
    form = {"name": "", "admin": request.user.get_username()}
    if request.method == "POST":
        form = {"name": request.POST.get("name", ""), "admin": request.POST.get("admin", "").strip()}
        admin = get_user_model().objects.filter(username=form["admin"], is_active=True).first()
        if admin is None:
            errors = [{"field": "admin", "message": f"no active user named {form['admin']!r}"}]
        else:
            try:
                organization = organization_create(name=form["name"], admin=admin, actor=request.user)
            except ApiError as error:
                errors = error.for_form()
            else:
                if admin == request.user:
                    request.session[SESSION_ORGANIZATION] = str(organization.id)
                messages.success(request, f"Organization {organization.name} created; {admin.get_username()} is its admin.")
                return redirect("member-list", organization.id) if admin == request.user else redirect("organization-new")
    context = {"errors": errors, "form": form, "organizations": Organization.objects.all()}
    return render(request, "dashboard/organization_new.html", context, status=400 if errors else 200)
