"""manage.py create_organization NAME --admin USER: a new organization with its first admin."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dashboard.errors import ApiError
from dashboard.services.members import organization_create


class Command(BaseCommand):
    help = "Create an organization whose first admin is an existing user; the admin invites the others."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--admin", required=True, help="username of the organization's first admin")

    def handle(self, *args, name, admin, **options):
        user = get_user_model().objects.filter(username=admin, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {admin!r}; create one first (manage.py createsuperuser)")
        try:
            organization = organization_create(name=name, admin=user, actor=None)
        except ApiError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{organization.id} {organization.name} (admin: {user.get_username()})")
