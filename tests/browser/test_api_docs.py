"""The API reference page in a real browser: Swagger UI draws every operation of /api/openapi.json under the site's
Content-Security-Policy, with nothing inline and nothing fetched from elsewhere."""
import re

import pytest

from dashboard.openapi import openapi_document
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_reference_renders_every_operation_under_the_csp(page, live_server, users, screenshot_dir):
    console, violations, foreign = [], [], []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("request", lambda request: foreign.append(request.url)
            if not request.url.startswith((live_server.url, "data:", "blob:")) else None)
    log_in(page, live_server, "labeler")
    page.add_init_script("""document.addEventListener("securitypolicyviolation",
        event => (window.__violations = window.__violations || []).push(event.violatedDirective + " " + event.blockedURI));""")

    page.click("nav a[href=\"/api/docs\"]")
    page.wait_for_url(re.compile(r"/api/docs$"))
    page.wait_for_selector(".opblock", timeout=20_000)

    document = openapi_document()
    expected = sum(1 for item in document["paths"].values() for method in item if method in
                   {"get", "post", "put", "patch", "delete"})
    assert page.locator(".opblock").count() == expected
    assert page.locator(".opblock-summary-path", has_text="/api/deployment/{deployment_id}/predictions").count() >= 1
    assert page.locator(".info .title").inner_text().startswith("Loupe API")
    page.screenshot(path=str(screenshot_dir / "api-docs.png"), full_page=False)

    # One operation opened: its request body names the monitoring payload, its answers include the error shape.
    ingest = page.locator("#operations-Monitoring-predictionCreate")
    ingest.locator(".opblock-summary").click()
    ingest.locator(".responses-wrapper").wait_for()
    assert ingest.locator(".response-col_status", has_text="409").count() == 1
    assert page.locator("button.authorize").count() == 1
    page.screenshot(path=str(screenshot_dir / "api-docs-ingest.png"), full_page=False)

    violations += page.evaluate("window.__violations || []")
    assert not [line for line in console if "Content Security Policy" in line], console
    assert violations == []
    assert foreign == [], "the reference page fetched something from outside the site"
