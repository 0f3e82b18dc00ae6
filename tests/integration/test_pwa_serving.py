"""The web app is served by the API: shell files revalidated, the worker at the root, every
precached file present (one missing file makes the worker's install fail)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PWA = Path(__file__).resolve().parents[2] / "pwa"


async def test_service_worker_served_from_root_without_caching(client: Any) -> None:
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert "javascript" in response.headers["content-type"]


async def test_every_precached_file_is_served(client: Any) -> None:
    source = (PWA / "sw.js").read_text(encoding="utf-8")
    shell = re.findall(
        r'^\s+"(/[^"]*)",$', source.split("const SHELL = [", 1)[1].split("];")[0], re.M
    )
    assert "/" in shell and "/js/app.js" in shell
    for path in shell:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-cache", path


async def test_manifest_makes_the_app_installable(client: Any) -> None:
    response = await client.get("/manifest.webmanifest")
    assert response.status_code == 200
    manifest = json.loads(response.content)
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200
