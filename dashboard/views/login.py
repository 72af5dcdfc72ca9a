"""The login pages (Loupe's and the Django admin's): Django's, with a guard against guessing passwords
(dashboard.services.auth.login_refusal)."""
from django.contrib.auth import views as auth_views
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from dashboard.services.auth import login_attempted, login_refusal


class _Guarded:
    """Too many failed log-ins for a username refuse its next tries unchecked for a while."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and (refusal := login_refusal(username=username)):
            raise ValidationError(refusal, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if username and error.code == "invalid_login":
                login_attempted(username=username, succeeded=False)
            raise
        if username:
            login_attempted(username=username, succeeded=True)
        return cleaned


class LoginForm(_Guarded, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password did not match. Try again.",
    }


class AdminLoginForm(_Guarded, AdminAuthenticationForm):
    pass


login = auth_views.LoginView.as_view(form_class=LoginForm)
