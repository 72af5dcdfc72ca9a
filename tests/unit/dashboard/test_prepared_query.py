"""dashboard.selectors.prepared: a hot path's queryset compiled once, answering what the queryset itself answers."""
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.errors import Forbidden, NotFound
from dashboard.models import Deployment, Membership, Role
from dashboard.selectors.access import deployment_for_monitoring
from dashboard.selectors.prepared import PreparedQuery

DET = "OBJECT_DETECTION"
RELATED = ("champion__model", "shadow__model")


def _same_row(found, expected):
    assert found is not None and type(found) is type(expected)
    assert {field.attname: getattr(found, field.attname) for field in found._meta.concrete_fields} == {
        field.attname: getattr(expected, field.attname) for field in expected._meta.concrete_fields}


def test_the_deployment_with_its_versions_role_and_labels_is_the_querysets(deployments, users):
    deployment = deployments[DET]
    deployment.labels.filter(class_id=2).update(retired_at="2026-01-01T00:00:00Z")
    expected = Deployment.objects.select_related(*RELATED).get(pk=deployment.pk)
    def found_now():
        return deployment_for_monitoring(user_id=users[Role.ML_LEAD].pk, deployment_id=deployment.pk,
                                         role=Role.ML_LEAD, related=RELATED)

    found_now()  # SQLite's connection asks once whether it has JSON functions
    labels = (expected.class_ids, expected.retired_classes)
    with CaptureQueriesContext(connection) as queries:
        found = found_now()
        # Everything read with the deployment: no query of their own.
        _same_row(found, expected)
        _same_row(found.champion, expected.champion)
        _same_row(found.champion.model, expected.champion.model)
        _same_row(found.shadow, expected.shadow)
        assert found.member_role == Role.ML_LEAD
        assert (found.class_ids, found.retired_classes) == labels
        assert list(found.retired_classes) == [2]
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_a_deployment_without_a_shadow_has_none(deployments, users):
    deployment = deployments[DET]
    Deployment.objects.filter(pk=deployment.pk).update(shadow=None)
    found = deployment_for_monitoring(user_id=str(users[Role.ADMIN].pk), deployment_id=str(deployment.pk),
                                      role=Role.ML_LEAD, related=RELATED)
    assert found.shadow is None and found.champion_id == deployment.champion_id


def test_each_call_has_its_own_values(deployments, users, outsider, other_deployment):
    deployment = deployments[DET]
    assert deployment_for_monitoring(user_id=users[Role.LABELER].pk, deployment_id=deployment.pk,
                                     role=Role.LABELER).member_role == Role.LABELER
    with pytest.raises(Forbidden):
        deployment_for_monitoring(user_id=users[Role.LABELER].pk, deployment_id=deployment.pk, role=Role.ML_LEAD)
    with pytest.raises(NotFound):
        deployment_for_monitoring(user_id=outsider.pk, deployment_id=deployment.pk, role=Role.LABELER)
    assert deployment_for_monitoring(user_id=outsider.pk, deployment_id=other_deployment.pk,
                                     role=Role.ADMIN).pk == other_deployment.pk
    Membership.objects.filter(user=users[Role.LABELER]).update(role=Role.ML_LEAD)
    assert deployment_for_monitoring(user_id=users[Role.LABELER].pk, deployment_id=deployment.pk,
                                     role=Role.ML_LEAD).member_role == Role.ML_LEAD
    users[Role.ADMIN].is_active = False
    users[Role.ADMIN].save()
    with pytest.raises(NotFound):
        deployment_for_monitoring(user_id=users[Role.ADMIN].pk, deployment_id=deployment.pk, role=Role.LABELER)


def test_the_queryset_is_built_once_and_a_missing_row_is_none(deployments, users):
    built = []

    def build(*, deployment_id, organization_id):
        built.append((deployment_id, organization_id))
        return Deployment.objects.filter(pk=deployment_id, organization_id=organization_id).order_by()[:1]

    query = PreparedQuery(build, deployment_id=Deployment._meta.pk,
                          organization_id=Deployment._meta.get_field("organization"))
    deployment = deployments[DET]
    for other in deployments.values():
        assert query.first(deployment_id=other.pk, organization_id=other.organization_id).name == other.name
    assert query.first(deployment_id=deployment.pk, organization_id=uuid.uuid4()) is None
    assert len(built) == 1
    # The stand-ins it was built with are values no row holds.
    assert built[0][0] not in {d.pk for d in deployments.values()} and built[0][1] != deployment.organization_id


def test_a_value_the_query_does_not_use_is_refused():
    query = PreparedQuery(lambda *, deployment_id, user_id: Deployment.objects.filter(pk=deployment_id)[:1],
                          deployment_id=Deployment._meta.pk, user_id=Membership._meta.get_field("user"))
    with pytest.raises(ValueError, match="user_id"):
        query.first(deployment_id=None, user_id=1)
