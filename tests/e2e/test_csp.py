"""The Content-Security-Policy is on, and the e2e fixtures would notice a violation."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Browsers


def test_an_inline_script_is_refused_and_reported(browsers: Browsers) -> None:
    page = browsers.context("csp").new_page()
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    ran: Any = page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__inline_ran = true";
          document.body.append(s);
          return window.__inline_ran === true;
        }"""
    )
    assert ran is False
    page.wait_for_timeout(300)
    assert any("script-src" in v for v in browsers.csp_violations), browsers.csp_violations
    browsers.csp_violations.clear()  # seen: the teardown check stays for the rest
