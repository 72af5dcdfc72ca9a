"""Two admins demoting each other at the same moment, each in its own connection: one may win, never both, and the
organization always keeps an admin (on PostgreSQL the loser is told it is the last admin; SQLite may instead
refuse it as a locked database, which changes nothing either)."""
import threading

import pytest
from django.db import connection

from dashboard.errors import Conflict
from dashboard.models import Membership, Role
from dashboard.services.members import membership_role_change

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_admins_demoting_each_other_at_once_leave_one_admin(users, organization):
    Membership.objects.filter(user=users["ml_lead"]).update(role=Role.ADMIN)
    first, second = Membership.objects.get(user=users["admin"]), Membership.objects.get(user=users["ml_lead"])
    barrier, outcomes = threading.Barrier(2), []

    def demote(target, actor):
        try:
            barrier.wait()
            membership_role_change(membership=target, role=Role.LABELER, actor=actor)
            outcomes.append("demoted")
        except Conflict:
            outcomes.append("last admin")
        except Exception as error:  # noqa: BLE001 - SQLite's "database is locked"; the assertions below decide
            outcomes.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(first, users["ml_lead"])),
               threading.Thread(target=demote, args=(second, users["admin"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2
    assert outcomes.count("demoted") <= 1
    assert Membership.objects.filter(organization=organization, role=Role.ADMIN).count() >= 1
    if connection.vendor == "postgresql":
        assert sorted(outcomes) == ["demoted", "last admin"]
