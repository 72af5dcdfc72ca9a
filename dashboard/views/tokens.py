"""The page where a member creates, sees once, and revokes their API tokens."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.services.auth import api_token_create, api_token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    created_plain = None
    error = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 100:
            error = "Give the token a name of 1 to 100 characters, e.g. the script or camera that will use it."
        else:
            _, created_plain = api_token_create(user=request.user, name=name)
    tokens = request.user.api_tokens.all()
    return render(
        request, "dashboard/token_list.html", {"tokens": tokens, "created_plain": created_plain, "error": error}
    )


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("token-list")
