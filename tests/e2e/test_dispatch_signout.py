"""Signing out of the console ends the session on the server, not only in the browser."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, open_console

TOKEN_KEY = "tournee.dispatch-token"


def test_console_sign_out_revokes_the_session(browsers: Browsers, api: Api) -> None:
    console = open_console(browsers, "dispatch-signout")
    expect(console.locator("#dispatch-signout")).to_be_visible()
    token = console.evaluate("(key) => localStorage.getItem(key)", TOKEN_KEY)
    assert token
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.http.get("/api/v1/crews", headers=bearer).status_code == 200

    console.click("#dispatch-signout")
    expect(console.locator("#dispatch-username")).to_be_visible()
    assert console.evaluate("(key) => localStorage.getItem(key)", TOKEN_KEY) is None
    assert api.http.get("/api/v1/crews", headers=bearer).status_code == 401
