"""Writes to an organization's members: role changes, removals, invitations and their acceptance, new
organizations. The last admin of an organization can be neither removed nor demoted."""
import datetime as dt
import secrets
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import Invitation, Membership, Organization, Role
from dashboard.services.audit import audit_record
from dashboard.services.auth import login_attempted, login_refusal, token_digest

INVITATION_PREFIX = "inv_"


def _locked_with_admins(membership: Membership) -> tuple[Membership, bool]:
    """The membership, re-read, and whether another admin of its organization exists, with the target and every
    admin row locked in one ordered query: two admins demoting each other at once cannot both succeed, nor
    deadlock."""
    rows = list(
        Membership.objects.select_for_update()
        .filter(Q(organization_id=membership.organization_id, role=Role.ADMIN) | Q(pk=membership.pk))
        .order_by("pk")
    )
    target = next((row for row in rows if row.pk == membership.pk), None)
    if target is None:
        raise NotFound("this member is no longer in the organization")
    return target, any(row.pk != target.pk and row.role == Role.ADMIN for row in rows)


def _role(value, field: str = "role") -> str:
    if value not in Role.values:
        raise ValidationFailed.from_errors([FieldError(field, f"must be one of {', '.join(Role.values)}, not {value!r}")])
    return value


def membership_role_change(*, membership: Membership, role: str, actor: AbstractBaseUser) -> Membership:
    role = _role(role)
    with transaction.atomic():
        membership, other_admins = _locked_with_admins(membership)
        if membership.role == role:
            return membership
        if membership.role == Role.ADMIN and not other_admins:
            raise Conflict(
                f"{membership.user.get_username()} is the last admin of {membership.organization.name}; "
                "make another member admin first",
                [FieldError("role", "the last admin cannot be demoted")],
            )
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(organization=membership.organization, actor=actor, action="member.role_changed",
                     target=membership.user.get_username(), details={"from": before, "to": role})
    return membership


def membership_remove(*, membership: Membership, actor: AbstractBaseUser) -> None:
    """The member loses the organization at once (pages, API tokens, JWTs); what they reviewed keeps their name."""
    with transaction.atomic():
        membership, other_admins = _locked_with_admins(membership)
        if membership.role == Role.ADMIN and not other_admins:
            raise Conflict(
                f"{membership.user.get_username()} is the last admin of {membership.organization.name}; "
                "make another member admin first",
                [FieldError("member", "the last admin cannot be removed")],
            )
        audit_record(organization=membership.organization, actor=actor, action="member.removed",
                     target=membership.user.get_username(), details={"role": membership.role})
        membership.delete()


def invitation_create(*, organization: Organization, invitee: str, role: str, created_by: AbstractBaseUser,
                      link_for: Callable[[str], str]) -> tuple[Invitation, str]:
    """An invitation for an email address (anything with an @) or a username, and its one-time link.

    The link is mailed when the invitee is an address (Django's email backend: the console by default) and
    returned either way, for the admin to copy. Only the token's digest is stored.
    """
    fields = Fields()
    invitee = fields.text(invitee, "invitee", max_length=254, required=True)
    fields.check()
    role = _role(role)
    email, username = (invitee, "") if "@" in invitee else ("", invitee)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed.from_errors([FieldError("invitee", f"{email!r} is not a valid email address")]) from None
    existing = get_user_model().objects.filter(**({"email__iexact": email} if email else {"username": username}))
    if Membership.objects.filter(organization=organization, user__in=existing).exists():
        raise Conflict(f"{invitee} is already a member of {organization.name}",
                       [FieldError("invitee", "is already a member")])
    plain = INVITATION_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + dt.timedelta(hours=settings.LOUPE_INVITATION_HOURS)
    with transaction.atomic():
        invitation = Invitation.objects.create(organization=organization, email=email, username=username, role=role,
                                               digest=token_digest(plain), expires_at=expires_at, created_by=created_by)
        audit_record(organization=organization, actor=created_by, action="invitation.created", target=invitee,
                     details={"role": role, "expires_at": expires_at.isoformat()})
    link = link_for(plain)
    if email:
        # After the commit: a mail server that is down must not undo the invitation, whose link is on screen too.
        send_mail(
            subject=f"You are invited to {organization.name} on Loupe",
            message=(f"{created_by.get_username()} invites you to join {organization.name} on Loupe as "
                     f"{Role(role).label}.\n\nOpen this link to accept (it works once, until "
                     f"{expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n"),
            from_email=None, recipient_list=[email], fail_silently=True,
        )
    return invitation, plain


def invitation_revoke(*, invitation: Invitation, actor: AbstractBaseUser) -> None:
    with transaction.atomic():
        updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now())
        if updated:
            audit_record(organization=invitation.organization, actor=actor, action="invitation.revoked",
                         target=invitation.invitee)


def invitation_for_link(*, plain: str) -> Invitation:
    """The invitation a link names while it can still be accepted, else NotFound saying why not."""
    invitation = Invitation.objects.select_related("organization").filter(digest=token_digest(plain)).first()
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("this invitation link is unknown or was withdrawn")
    if invitation.accepted_at is not None:
        raise NotFound("this invitation link has already been used")
    if invitation.expires_at <= timezone.now():
        raise NotFound("this invitation link has expired; ask an admin for a new one")
    return invitation


def invitation_existing_user(invitation: Invitation):
    """The account the invitation is for when one exists (by username, or by a unique email address)."""
    users = get_user_model().objects.filter(is_active=True)
    if invitation.username:
        return users.filter(username=invitation.username).first()
    matches = list(users.filter(email__iexact=invitation.email)[:2])
    return matches[0] if len(matches) == 1 else None


def _existing_password_check(invitation: Invitation, password: str):
    """The existing account the invitation is for, once its password is checked (with the login pages' guard
    against guessing: dashboard.services.auth.login_refusal); None when the invitee has no account yet."""
    user = invitation_existing_user(invitation)
    if user is None:
        return None
    name = user.get_username()
    if refusal := login_refusal(username=name):
        raise ValidationFailed.from_errors([FieldError("password", refusal)])
    succeeded = user.check_password(password or "")
    login_attempted(username=name, succeeded=succeeded)
    if not succeeded:
        raise ValidationFailed.from_errors([FieldError("password", f"is not the password of {name}")])
    return user


def invitation_accept(*, plain: str, password: str, username: str = "") -> AbstractBaseUser:
    """Accept an invitation once: a new invitee chooses a username and password; an existing account confirms
    with its own password. The membership, the link's use and the audit line commit together."""
    user_model = get_user_model()
    # Before the transaction, so that a failed try is counted even though the transaction would roll it back.
    checked = _existing_password_check(invitation_for_link(plain=plain), password)
    with transaction.atomic():
        invitation = invitation_for_link(plain=plain)
        invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
        if invitation.accepted_at is not None:  # accepted by a concurrent request since the first read
            raise NotFound("this invitation link has already been used")
        user = invitation_existing_user(invitation)
        if user is not None:
            if checked is None or checked.pk != user.pk:  # an account made or changed since the check
                raise ValidationFailed.from_errors([FieldError("password", f"is not the password of {user.get_username()}")])
        else:
            username = (username or invitation.username or "").strip()
            errors = []
            if not username:
                errors.append(FieldError("username", "is required"))
            elif len(username) > 150 or not all(c.isalnum() or c in "@.+-_" for c in username):
                errors.append(FieldError("username", "must be 1 to 150 letters, digits and @.+-_"))
            elif user_model.objects.filter(username=username).exists():
                errors.append(FieldError("username", f"{username!r} is taken; choose another"))
            candidate = user_model(username=username, email=invitation.email)
            try:
                password_validation.validate_password(password or "", user=candidate)
            except ValidationError as error:
                errors.append(FieldError("password", " ".join(error.messages)))
            if errors:
                raise ValidationFailed.from_errors(errors)
            candidate.set_password(password)
            try:
                with transaction.atomic():
                    candidate.save()
            except IntegrityError:
                raise ValidationFailed.from_errors([FieldError("username", f"{username!r} is taken; choose another")]) from None
            user = candidate
        membership, created = Membership.objects.get_or_create(organization=invitation.organization, user=user,
                                                               defaults={"role": invitation.role})
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(organization=invitation.organization, actor=user, action="invitation.accepted",
                     target=user.get_username(), details={"role": membership.role, "new_member": created})
    return user


def organization_create(*, name: str, admin: AbstractBaseUser, actor: AbstractBaseUser | None) -> Organization:
    fields = Fields()
    name = fields.text(name, "name", max_length=100, required=True)
    fields.check()
    try:
        with transaction.atomic():
            organization = Organization.objects.create(name=name)
            Membership.objects.create(organization=organization, user=admin, role=Role.ADMIN)
            audit_record(organization=organization, actor=actor, action="organization.created", target=name,
                         details={"admin": admin.get_username()})
    except IntegrityError:
        raise Conflict(f"an organization named {name!r} already exists", [FieldError("name", "is taken")]) from None
    return organization
