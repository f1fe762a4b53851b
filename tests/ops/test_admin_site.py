"""The admin's own header: Clearway branding and the operators' other consoles."""

from __future__ import annotations


def test_admin_pages_link_the_operator_consoles(admin_client, settings) -> None:
    settings.TEMPORAL_UI_URL = "http://temporal.example:8233/"
    settings.TEMPORAL_NAMESPACE = "clearway-ops"

    page = admin_client.get("/admin/").content.decode()

    assert "<title>Site administration | Clearway admin</title>" in page
    assert 'href="http://temporal.example:8233/namespaces/clearway-ops/workflows"' in page
    assert 'href="/admin/withdrawals/withdrawal/?queue=awaiting"' in page
    assert 'href="/api/docs/"' in page and 'href="/readyz"' in page


def test_the_login_page_shows_no_console_links(client) -> None:
    page = client.get("/admin/login/").content.decode()

    assert "Clearway admin" in page
    assert "Temporal UI" not in page and "queue=awaiting" not in page
