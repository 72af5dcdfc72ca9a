"""The API reference page: Swagger UI (vendored) over /api/openapi.json."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def api_docs(request):
    return render(request, "dashboard/api_docs.html")
