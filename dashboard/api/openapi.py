"""The API's OpenAPI document as JSON: public, like any API reference, since it holds no data."""
from django.http import HttpRequest

from dashboard.api.base import api_view
from dashboard.openapi import openapi_document


@api_view(methods=("GET",), auth="none")
def openapi_json(request: HttpRequest):
    return 200, openapi_document()
