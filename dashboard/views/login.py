"""The login pages (Loupe's and the Django admin's): Django's, with a guard against guessing passwords
(dashboard.services.auth.login_wait)."""
import math

from django.contrib.auth import views as auth_views
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from dashboard.services.auth import login_failed, login_succeeded, login_wait


class _Guarded:
    """Too many failed log-ins for a username refuse its next tries unchecked for a while."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            wait = login_wait(username=username)
            if wait is not None:
                minutes = max(1, math.ceil(wait.total_seconds() / 60))
                raise ValidationError(
                    "Too many failed log-ins for this username: try again in %(minutes)d minute%(plural)s.",
                    code="throttled", params={"minutes": minutes, "plural": "" if minutes == 1 else "s"},
                )
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if username and error.code == "invalid_login":
                login_failed(username=username)
            raise
        if username:
            login_succeeded(username=username)
        return cleaned


class LoginForm(_Guarded, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password did not match. Try again.",
    }


class AdminLoginForm(_Guarded, AdminAuthenticationForm):
    pass


login = auth_views.LoginView.as_view(form_class=LoginForm)
