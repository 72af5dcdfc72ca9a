"""Authentication: API tokens (hashed, shown once, revocable) and the one-hour deployment JWTs of monitoring."""
import hashlib
import io
import json
import time

import jwt as pyjwt
import pytest
from django.utils import timezone
from django.core.management import CommandError, call_command

from dashboard.models import ApiToken, PredictedAsset
from dashboard.services.auth import JWT_ALGORITHM, JWT_AUDIENCE, api_token_revoke

DET, CLS = "OBJECT_DETECTION", "CLASSIFICATION"


def login(client, api_token, deployment_id, path="/api/auth/login", **headers):
    body = {"deployment_id": str(deployment_id)}
    if api_token is not None:
        body["api_token"] = api_token
    return client.post(path, data=json.dumps(body), content_type="", headers=headers)


def assert_json_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    return body


def make_jwt(user, deployment, *, exp_in=3600, key=None, **claims):
    """A JWT signed with the server's key, naming the user's first API token (when they have one) as Loupe's do."""
    from django.conf import settings

    token = ApiToken.objects.filter(user=user).first()
    payload = {"sub": str(user.pk), "deployment": str(deployment.pk), "exp": int(time.time()) + exp_in,
               "aud": JWT_AUDIENCE, **({"tid": token.pk} if token else {}), **claims}
    return pyjwt.encode(payload, key or settings.SECRET_KEY, algorithm=JWT_ALGORITHM)


# ---------------------------------------------------------------- login


def test_login_with_a_good_token_gives_a_jwt_for_an_hour(client, api_tokens, deployments):
    response = login(client, api_tokens["ml_lead"], deployments[DET].id)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["jwt"], str) and body["jwt"].count(".") == 2
    assert abs(body["expires"] - (time.time() + 3600)) < 10
    claims = pyjwt.decode(body["jwt"], options={"verify_signature": False})
    assert claims["deployment"] == str(deployments[DET].id) and claims["exp"] == body["expires"]


def test_login_takes_the_token_from_the_authorization_header_as_the_seeds_send_it(client, api_tokens, deployments):
    response = login(client, None, deployments[DET].id, Authorization=f"Token {api_tokens['ml_lead']}")
    assert response.status_code == 200 and response.json()["jwt"]


def test_the_serving_login_path_answers_the_same(client, api_tokens, deployments):
    response = login(client, api_tokens["admin"], deployments[CLS].id, path="/api/login")
    assert response.status_code == 200 and set(response.json()) >= {"jwt", "expires"}


def test_a_labeler_may_log_in_to_read(client, api_tokens, deployments):
    assert login(client, api_tokens["labeler"], deployments[DET].id).status_code == 200


def test_login_with_a_wrong_token_is_a_401(client, api_tokens, deployments):
    assert_json_error(login(client, "loupe_not-a-real-token", deployments[DET].id), 401)


def test_login_to_a_deployment_of_another_organization_is_a_401(client, api_tokens, other_deployment):
    body = assert_json_error(login(client, api_tokens["admin"], other_deployment.id), 401)
    assert "jwt" not in body


@pytest.mark.parametrize("deployment_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_login_to_an_unknown_deployment_is_a_401(client, api_tokens, deployment_id):
    assert_json_error(login(client, api_tokens["admin"], deployment_id), 401)


def test_login_without_a_deployment_id_is_a_400_naming_it(client, api_tokens):
    response = client.post("/api/auth/login", data=json.dumps({"api_token": api_tokens["admin"]}), content_type="")
    body = assert_json_error(response, 400)
    assert [error["field"] for error in body["errors"]] == ["deployment_id"]


def test_login_with_a_revoked_token_is_a_401(client, api_tokens, deployments):
    api_token_revoke(token=ApiToken.objects.get(user__username="admin"))
    assert_json_error(login(client, api_tokens["admin"], deployments[DET].id), 401)


def test_login_of_an_inactive_user_is_a_401(client, api_tokens, users, deployments):
    users["admin"].is_active = False
    users["admin"].save()
    assert_json_error(login(client, api_tokens["admin"], deployments[DET].id), 401)


# ---------------------------------------------------------------- using the JWT


@pytest.fixture
def ingest(client, monitor_payload, deployments):
    """ingest(jwt, type=DET) -> the response of a valid monitored prediction sent with that Authorization."""

    def post(authorization, deployment_type=DET):
        headers = {"Authorization": authorization} if authorization is not None else {}
        return client.post(
            f"/api/deployment/{deployments[deployment_type].id}/predictions",
            data=json.dumps(monitor_payload(deployment_type)),
            content_type="",
            headers=headers,
        )

    return post


@pytest.mark.parametrize("role", ["ml_lead", "admin"])
def test_an_ml_lead_or_admin_jwt_may_ingest(ingest, api_login, api_tokens, deployments, role):
    token = api_login(api_tokens[role], deployments[DET])
    assert ingest(f"Bearer {token}").status_code == 201


def test_traffic_with_a_jwt_counts_as_its_tokens_use(ingest, api_login, api_tokens, deployments):
    import datetime as dt

    token = api_login(api_tokens["ml_lead"], deployments[DET])
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    ApiToken.objects.filter(user__username="ml_lead").update(last_used_at=hour_ago)
    assert ingest(f"Bearer {token}").status_code == 201
    used = ApiToken.objects.get(user__username="ml_lead").last_used_at
    assert used > hour_ago + dt.timedelta(minutes=59)  # the admin console's last activity follows the JWT's use
    assert ingest(f"Bearer {token}").status_code == 201
    assert ApiToken.objects.get(user__username="ml_lead").last_used_at == used  # at most one write a minute


def test_a_labelers_jwt_may_not_ingest(ingest, api_login, api_tokens, deployments):
    token = api_login(api_tokens["labeler"], deployments[DET])
    assert_json_error(ingest(f"Bearer {token}"), 403)
    assert PredictedAsset.objects.count() == 0


def test_a_jwt_bound_to_one_deployment_is_refused_on_another(ingest, api_login, api_tokens, deployments):
    token = api_login(api_tokens["admin"], deployments[DET])
    assert_json_error(ingest(f"Bearer {token}", CLS), 401)
    assert PredictedAsset.objects.count() == 0


def test_an_expired_jwt_is_a_401_saying_it_expired(ingest, api_login, api_tokens, deployments, settings):
    settings.LOUPE_JWT_LIFETIME_SECONDS = -10
    token = api_login(api_tokens["admin"], deployments[DET])
    body = assert_json_error(ingest(f"Bearer {token}"), 401)
    assert "expired" in body["message"]
    assert PredictedAsset.objects.count() == 0


def test_a_jwt_made_outside_loupe_with_the_right_key_works_until_it_expires(ingest, users, api_tokens, deployments):
    assert ingest(f"Bearer {make_jwt(users['admin'], deployments[DET])}").status_code == 201
    body = assert_json_error(ingest(f"Bearer {make_jwt(users['admin'], deployments[DET], exp_in=-60)}"), 401)
    assert "expired" in body["message"]


def test_a_tampered_jwt_is_a_401(ingest, api_login, api_tokens, deployments, users):
    token = api_login(api_tokens["labeler"], deployments[DET])
    header, _, signature = token.split(".")
    # Claim to be the admin, keeping the labeler's signature.
    forged_claims = pyjwt.decode(token, options={"verify_signature": False}) | {"sub": str(users["admin"].pk)}
    forged_payload = pyjwt.utils.base64url_encode(json.dumps(forged_claims).encode()).decode()
    assert_json_error(ingest(f"Bearer {header}.{forged_payload}.{signature}"), 401)
    assert PredictedAsset.objects.count() == 0


def test_a_jwt_signed_with_another_key_is_a_401(ingest, users, deployments):
    token = make_jwt(users["admin"], deployments[DET], key="not-the-server-secret-key-but-long-enough")
    assert_json_error(ingest(f"Bearer {token}"), 401)


def test_a_jwt_for_another_audience_is_a_401(ingest, users, deployments):
    assert_json_error(ingest(f"Bearer {make_jwt(users['admin'], deployments[DET], aud='someone-else')}"), 401)


def test_an_unsigned_jwt_is_a_401(ingest, users, deployments):
    claims = {"sub": str(users["admin"].pk), "deployment": str(deployments[DET].pk), "exp": int(time.time()) + 600, "aud": JWT_AUDIENCE}
    token = pyjwt.encode(claims, None, algorithm="none")
    assert_json_error(ingest(f"Bearer {token}"), 401)


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "garbage"])
def test_a_missing_or_malformed_authorization_is_a_401(ingest, authorization, deployments):
    assert_json_error(ingest(authorization), 401)
    assert PredictedAsset.objects.count() == 0


def test_a_jwt_of_a_user_removed_from_the_organization_no_longer_ingests(ingest, api_login, api_tokens, deployments, users):
    token = api_login(api_tokens["admin"], deployments[DET])
    users["admin"].memberships.all().delete()
    response = ingest(f"Bearer {token}")
    assert response.status_code in (401, 403, 404)
    assert PredictedAsset.objects.count() == 0


def test_a_deployment_jwt_does_not_open_the_platform_api(client, api_login, api_tokens, deployments):
    token = api_login(api_tokens["admin"], deployments[DET])
    assert_json_error(client.get("/api/organizations", headers={"Authorization": f"Bearer {token}"}), 401)


# ---------------------------------------------------------------- API tokens


def test_a_revoked_token_no_longer_opens_the_platform_api(client, api_tokens):
    headers = {"Authorization": f"Bearer {api_tokens['admin']}"}
    assert client.get("/api/organizations", headers=headers).status_code == 200
    api_token_revoke(token=ApiToken.objects.get(user__username="admin"))
    assert_json_error(client.get("/api/organizations", headers=headers), 401)


def test_the_token_scheme_is_accepted_as_well_as_bearer(client, api_tokens):
    assert client.get("/api/organizations", headers={"Authorization": f"Token {api_tokens['admin']}"}).status_code == 200


def test_tokens_are_stored_hashed(api_tokens):
    for role, plain in api_tokens.items():
        token = ApiToken.objects.get(user__username=role)
        assert token.digest != plain
        assert token.digest == hashlib.sha256(plain.encode()).hexdigest()
        for field in ApiToken._meta.concrete_fields:
            assert plain not in str(field.value_from_object(token)), field.name
        assert plain.startswith(token.prefix) and len(token.prefix) < len(plain) // 2


def test_tokens_are_long_and_distinct(api_tokens):
    assert len(set(api_tokens.values())) == len(api_tokens)
    assert all(len(plain) >= 40 for plain in api_tokens.values())


def test_using_a_token_records_when_it_was_last_used(client, api_tokens):
    assert ApiToken.objects.get(user__username="ml_lead").last_used_at is None
    client.get("/api/organizations", headers={"Authorization": f"Bearer {api_tokens['ml_lead']}"})
    assert ApiToken.objects.get(user__username="ml_lead").last_used_at is not None


def test_the_create_api_token_command_prints_a_working_token(client, users, deployments):
    out = io.StringIO()
    call_command("create_api_token", "ml_lead", "--name", "camera-7", stdout=out)
    plain = out.getvalue().strip()
    assert ApiToken.objects.filter(user=users["ml_lead"], name="camera-7").count() == 1
    response = login(client, plain, deployments[DET].id)
    assert response.status_code == 200 and response.json()["jwt"]


def test_the_create_api_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="nobody"):
        call_command("create_api_token", "nobody", stdout=io.StringIO())
    assert ApiToken.objects.count() == 0
