"""Smoke test of the browser infrastructure: Debian's Chromium renders a page of the live server."""


def test_admin_login_page_renders(live_server, page, screenshot_dir):
    page.goto(live_server.url + "/admin/login/")
    assert "Log in" in page.title()
    page.screenshot(path=str(screenshot_dir / "infra-smoke-admin-login.png"), full_page=True)
