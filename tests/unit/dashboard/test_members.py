"""The admin's console for people: roles, removals, the last-admin rule, invitations (one-time, expiring), the audit
log, the pages' role checks and CSRF, and access that ends at once (tokens, JWTs, removals, demotions)."""
import datetime as dt
import json
import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from dashboard.errors import Conflict, NotFound, ValidationFailed
from dashboard.models import ApiToken, AuditEvent, Invitation, Membership, PredictedAsset, Role
from dashboard.services.auth import api_token_revoke
from dashboard.services.members import (
    invitation_accept, invitation_create, membership_remove, membership_role_change, organization_create,
)
from tests.fixtures import PASSWORD

DET = "OBJECT_DETECTION"


def link_for(plain):
    return f"http://testserver/invitations/{plain}/"


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, path: str, data: dict):
    """A POST as a browser sends it: with the CSRF token the page's form carries."""
    client.get("/deployments/")
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def membership(users, role):
    return Membership.objects.get(user=users[role])


# ---------------------------------------------------------------- roles and the last admin


def test_an_admin_changes_a_role_and_the_log_says_who_what_and_to_whom(users, organization):
    membership_role_change(membership=membership(users, "labeler"), role=Role.ML_LEAD, actor=users["admin"])
    assert membership(users, "labeler").role == Role.ML_LEAD
    event = AuditEvent.objects.get(action="member.role_changed")
    assert (event.organization, event.actor, event.actor_name, event.target) == (
        organization, users["admin"], "admin", "labeler")
    assert event.details == {"from": "labeler", "to": "ml_lead"}


def test_the_last_admin_cannot_be_demoted_or_removed(users):
    admin = membership(users, "admin")
    with pytest.raises(Conflict) as demoted:
        membership_role_change(membership=admin, role=Role.LABELER, actor=users["admin"])
    assert demoted.value.errors[0].field == "role" and "last admin" in demoted.value.message
    with pytest.raises(Conflict) as removed:
        membership_remove(membership=admin, actor=users["admin"])
    assert "last admin" in removed.value.message
    assert membership(users, "admin").role == Role.ADMIN
    assert not AuditEvent.objects.filter(action__in=["member.role_changed", "member.removed"]).exists()


def test_with_a_second_admin_the_first_may_step_down(users):
    membership_role_change(membership=membership(users, "ml_lead"), role=Role.ADMIN, actor=users["admin"])
    membership_role_change(membership=membership(users, "admin"), role=Role.LABELER, actor=users["admin"])
    assert membership(users, "admin").role == Role.LABELER
    # Now ml_lead is the last admin, and the rule holds for them.
    with pytest.raises(Conflict):
        membership_remove(membership=membership(users, "ml_lead"), actor=users["ml_lead"])


def test_an_unknown_role_is_refused_naming_the_field(users):
    with pytest.raises(ValidationFailed) as refused:
        membership_role_change(membership=membership(users, "labeler"), role="owner", actor=users["admin"])
    assert refused.value.errors[0].field == "role"


def test_a_removed_members_reviews_stay_attributed(users, deployments, monitor_payload):
    from monitoring.services.ingest import prediction_ingest

    asset = prediction_ingest(deployment=deployments[DET], payload=monitor_payload(DET)).asset
    PredictedAsset.objects.filter(pk=asset.pk).update(reviewed_by=users["labeler"], status="REVIEWED")
    membership_remove(membership=membership(users, "labeler"), actor=users["admin"])
    assert not Membership.objects.filter(user=users["labeler"]).exists()
    assert PredictedAsset.objects.get(pk=asset.pk).reviewed_by == users["labeler"]
    assert AuditEvent.objects.filter(action="member.removed", target="labeler").exists()


# ---------------------------------------------------------------- invitations


def test_an_invitation_by_email_is_mailed_stored_hashed_and_accepted_once(users, organization):
    invitation, plain = invitation_create(organization=organization, invitee="ada@example.com", role=Role.LABELER,
                                          created_by=users["admin"], link_for=link_for)
    assert invitation.digest != plain and plain not in invitation.digest
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    assert link_for(plain) in mail.outbox[0].body
    user = invitation_accept(plain=plain, password="a-long-new-password-42", username="ada")
    assert Membership.objects.get(user=user, organization=organization).role == Role.LABELER
    assert user.email == "ada@example.com" and user.check_password("a-long-new-password-42")
    with pytest.raises(NotFound) as again:
        invitation_accept(plain=plain, password="a-long-new-password-42", username="ada2")
    assert "already been used" in again.value.message
    assert list(AuditEvent.objects.filter(organization=organization).order_by("id").values_list("action", flat=True)) \
        == ["invitation.created", "invitation.accepted"]


def test_an_expired_invitation_is_refused_and_makes_nobody(users, organization, django_user_model):
    invitation, plain = invitation_create(organization=organization, invitee="late", role=Role.ML_LEAD,
                                          created_by=users["admin"], link_for=link_for)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(NotFound) as refused:
        invitation_accept(plain=plain, password="a-long-new-password-42")
    assert "expired" in refused.value.message
    assert not django_user_model.objects.filter(username="late").exists()


def test_a_weak_password_or_a_taken_username_is_refused_and_the_link_still_works(users, organization):
    _, plain = invitation_create(organization=organization, invitee="bea@example.com", role=Role.LABELER,
                                 created_by=users["admin"], link_for=link_for)
    with pytest.raises(ValidationFailed) as taken:
        invitation_accept(plain=plain, password="a-long-new-password-42", username="admin")
    assert [e.field for e in taken.value.errors] == ["username"]
    with pytest.raises(ValidationFailed) as weak:
        invitation_accept(plain=plain, password="123", username="bea")
    assert [e.field for e in weak.value.errors] == ["password"]
    assert invitation_accept(plain=plain, password="a-long-new-password-42", username="bea").username == "bea"


def test_an_existing_user_accepts_with_their_own_password(users, organization, outsider):
    _, plain = invitation_create(organization=organization, invitee="outsider", role=Role.ML_LEAD,
                                 created_by=users["admin"], link_for=link_for)
    with pytest.raises(ValidationFailed):
        invitation_accept(plain=plain, password="not-their-password")
    assert invitation_accept(plain=plain, password=PASSWORD) == outsider
    assert Membership.objects.get(user=outsider, organization=organization).role == Role.ML_LEAD


def test_an_invitation_link_is_no_way_around_the_guard_on_guessed_passwords(users, organization, outsider):
    from dashboard.models import LoginFailure
    from dashboard.services.auth import LOGIN_FAILURES_ALLOWED

    _, plain = invitation_create(organization=organization, invitee="outsider", role=Role.ML_LEAD,
                                 created_by=users["admin"], link_for=link_for)
    for _ in range(LOGIN_FAILURES_ALLOWED):
        with pytest.raises(ValidationFailed):
            invitation_accept(plain=plain, password="a guess")
    # Counted, though each refusal rolled its transaction back; the right password now waits too.
    assert LoginFailure.objects.filter(username="outsider").count() == LOGIN_FAILURES_ALLOWED
    with pytest.raises(ValidationFailed) as refused:
        invitation_accept(plain=plain, password=PASSWORD)
    assert "Too many failed log-ins" in refused.value.errors[0].message
    assert not Membership.objects.filter(user=outsider, organization=organization).exists()


def test_inviting_a_member_again_is_a_conflict(users, organization):
    with pytest.raises(Conflict) as refused:
        invitation_create(organization=organization, invitee="labeler", role=Role.LABELER,
                          created_by=users["admin"], link_for=link_for)
    assert refused.value.errors[0].field == "invitee"


# ---------------------------------------------------------------- pages


def test_the_members_page_lists_roles_and_last_activity_and_shows_a_link_once(users, organization):
    client = logged_in(users["admin"])
    page = client.get(f"/organizations/{organization.id}/members/").content.decode()
    for role in Role.values:
        assert f'data-username="{role}"' in page
    answer = csrf_post(client, f"/organizations/{organization.id}/members/",
                       {"invitee": "cy@example.com", "role": "labeler"})
    assert answer.status_code == 200
    link = re.search(r'value="(http://testserver/invitations/inv_[^"]+/)"', answer.content.decode()).group(1)
    assert link in mail.outbox[0].body
    assert link not in client.get(f"/organizations/{organization.id}/members/").content.decode()


def test_the_accept_page_sets_a_password_and_lands_on_the_deployments(users, organization):
    _, plain = invitation_create(organization=organization, invitee="dee", role=Role.LABELER,
                                 created_by=users["admin"], link_for=link_for)
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/invitations/{plain}/")
    assert page.status_code == 200 and b'name="password_again"' in page.content
    answer = client.post(f"/invitations/{plain}/", {
        "username": "dee", "password": "a-long-new-password-42", "password_again": "a-long-new-password-42",
        "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert answer.status_code == 302 and answer["Location"] == "/deployments/"
    assert client.get("/deployments/").context["user"].username == "dee"
    assert Client().get(f"/invitations/{plain}/").status_code == 404


@pytest.mark.parametrize("role", ["labeler", "ml_lead"])
def test_labelers_and_ml_leads_get_403_on_every_admin_url_and_see_no_admin_form(users, organization, deployments, role):
    client = logged_in(users[role])
    member = membership(users, "labeler")
    deployment = deployments[DET]
    for path in (f"/organizations/{organization.id}/members/", f"/organizations/{organization.id}/audit/",
                 f"/organizations/{organization.id}/deployments/new", f"/deployments/{deployment.id}/settings/"):
        assert client.get(path).status_code == 403, path
    for path, data in ((f"/organizations/{organization.id}/members/", {"invitee": "x@example.com", "role": "admin"}),
                       (f"/organizations/{organization.id}/members/{member.id}/role", {"role": "admin"}),
                       (f"/organizations/{organization.id}/members/{member.id}/remove", {}),
                       (f"/deployments/{deployment.id}/settings/delete", {"force_delete": "on"}),
                       (f"/deployments/{deployment.id}/settings/labels", {"action": "retire", "class_id": "1"})):
        assert csrf_post(client, path, data).status_code == 403, path
    assert membership(users, role).role == role and not Invitation.objects.exists()
    page = client.get("/deployments/").content.decode()
    assert "/members/" not in page and "deployments/new" not in page
    assert f"/deployments/{deployment.id}/settings/" not in client.get(f"/deployments/{deployment.id}/").content.decode()


def test_an_outsider_gets_404_on_the_organizations_admin_urls(outsider, organization):
    assert logged_in(outsider).get(f"/organizations/{organization.id}/members/").status_code == 404


def test_admin_forms_refuse_a_post_without_the_csrf_token(users, organization):
    client = logged_in(users["admin"])
    member = membership(users, "labeler")
    answer = client.post(f"/organizations/{organization.id}/members/{member.id}/role", {"role": "admin"})
    assert answer.status_code == 403
    assert membership(users, "labeler").role == Role.LABELER


def test_the_page_shows_the_last_admin_refusal(users, organization):
    client = logged_in(users["admin"])
    admin = membership(users, "admin")
    answer = csrf_post(client, f"/organizations/{organization.id}/members/{admin.id}/role", {"role": "labeler"})
    assert answer.status_code == 302
    page = client.get(answer["Location"]).content.decode()
    assert "last admin" in page and membership(users, "admin").role == Role.ADMIN


def test_the_audit_page_lists_changes_and_escapes_what_users_typed(users, organization):
    invitation_create(organization=organization, invitee="x@example.com",
                      role=Role.LABELER, created_by=users["admin"], link_for=link_for)
    organization_event = AuditEvent.objects.create(organization=organization, actor_name="admin",
                                                   action="deployment.created", target="<script>alert(1)</script>")
    page = logged_in(users["admin"]).get(f"/organizations/{organization.id}/audit/").content.decode()
    assert "invitation.created" in page and "x@example.com" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert organization_event.pk


# ---------------------------------------------------------------- access ends at once


@pytest.fixture
def ingest(client, monitor_payload, deployments):
    def post(jwt):
        return client.post(f"/api/deployment/{deployments[DET].id}/predictions",
                           data=json.dumps(monitor_payload(DET)), content_type="",
                           headers={"Authorization": f"Bearer {jwt}"})
    return post


def test_a_jwt_stops_working_when_its_token_is_revoked(ingest, api_login, api_tokens, deployments, users):
    jwt = api_login(api_tokens["admin"], deployments[DET])
    assert ingest(jwt).status_code == 201
    api_token_revoke(token=ApiToken.objects.get(user=users["admin"]), actor=users["admin"])
    answer = ingest(jwt)
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]
    assert PredictedAsset.objects.count() == 1
    assert AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_jwt_of_another_token_of_the_same_user_keeps_working(ingest, api_login, api_tokens, deployments, users):
    from dashboard.services.auth import api_token_create

    _, second = api_token_create(user=users["admin"], name="second")
    jwt = api_login(second, deployments[DET])
    api_token_revoke(token=ApiToken.objects.get(user=users["admin"], name="admin token"))
    assert ingest(jwt).status_code == 201


def test_a_jwt_of_a_demoted_member_loses_what_the_role_allowed(ingest, api_login, api_tokens, deployments, users):
    jwt = api_login(api_tokens["ml_lead"], deployments[DET])
    assert ingest(jwt).status_code == 201
    membership_role_change(membership=membership(users, "ml_lead"), role=Role.LABELER, actor=users["admin"])
    assert ingest(jwt).status_code == 403


def test_a_jwt_of_a_removed_member_no_longer_ingests(ingest, api_login, api_tokens, deployments, users):
    jwt = api_login(api_tokens["ml_lead"], deployments[DET])
    membership_remove(membership=membership(users, "ml_lead"), actor=users["admin"])
    assert ingest(jwt).status_code in (403, 404)


def test_a_jwt_without_its_token_id_is_refused(ingest, users, deployments):
    import time

    import jwt as pyjwt
    from django.conf import settings

    from dashboard.services.auth import JWT_ALGORITHM, JWT_AUDIENCE

    old = pyjwt.encode({"sub": str(users["admin"].pk), "deployment": str(deployments[DET].pk),
                        "exp": int(time.time()) + 600, "aud": JWT_AUDIENCE}, settings.SECRET_KEY, algorithm=JWT_ALGORITHM)
    assert ingest(old).status_code == 401


# ---------------------------------------------------------------- organizations


def test_create_organization_command_and_the_switcher(users, django_user_model, organization):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_organization", "Initech", admin="labeler", stdout=out)
    assert "Initech" in out.getvalue()
    initech = Membership.objects.get(user=users["labeler"], organization__name="Initech")
    assert initech.role == Role.ADMIN
    assert AuditEvent.objects.filter(organization=initech.organization, action="organization.created").exists()

    client = logged_in(users["labeler"])
    page = client.get("/deployments/").content.decode()
    assert 'data-testid="org-switch"' in page
    # Acme Vision sorts first: the labeler works there, and sees no admin link until they switch to Initech.
    assert f"/organizations/{initech.organization_id}/members/" not in page
    answer = csrf_post(client, "/organizations/switch", {"organization_id": str(initech.organization_id),
                                                          "next": "/deployments/"})
    assert answer.status_code == 302
    page = client.get("/deployments/").content.decode()
    assert f"/organizations/{initech.organization_id}/members/" in page
    assert f"/organizations/{organization.id}/members/" not in page


def test_only_a_superuser_opens_the_new_organization_page(users, django_user_model):
    assert logged_in(users["admin"]).get("/organizations/new/").status_code == 403
    root = django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    client = logged_in(root)
    answer = csrf_post(client, "/organizations/new/", {"name": "Hooli", "admin": "ml_lead"})
    assert answer.status_code == 302
    assert Membership.objects.get(user=users["ml_lead"], organization__name="Hooli").role == Role.ADMIN
    refused = csrf_post(client, "/organizations/new/", {"name": "Hooli", "admin": "ml_lead"})
    assert refused.status_code == 400 and b"is taken" in refused.content


def test_organization_create_refuses_a_taken_name(users, organization):
    with pytest.raises(Conflict):
        organization_create(name=organization.name, admin=users["admin"], actor=None)
