"""Every message exists in French and English, and every code raised in the code is translated."""

from __future__ import annotations

import ast
import pathlib

import pytest

from server.i18n import ENTITY_NAMES, LANGUAGES, MESSAGES, negotiate, translate

SERVER = pathlib.Path(__file__).resolve().parents[2] / "server"
ERROR_CLASSES = {"DomainError", "NotFound", "Forbidden", "Unauthorized", "Conflict", "Invalid"}


def test_every_message_has_both_languages() -> None:
    for key, entry in {**MESSAGES, **ENTITY_NAMES}.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(text.strip() for text in entry.values()), key
    for key, entry in MESSAGES.items():
        assert entry["fr"] != entry["en"], f"{key}: untranslated"


def _raised_codes() -> set[str]:
    codes: set[str] = set()
    for path in SERVER.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ERROR_CLASSES - {"NotFound"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                codes.add(node.args[0].value)
    return codes


def _not_found_entities() -> set[str]:
    entities: set[str] = set()
    for path in SERVER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "NotFound"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                entities.add(str(node.args[0].value))
    return entities


def test_every_raised_code_is_translated() -> None:
    assert _raised_codes() - set(MESSAGES) == set()
    assert _not_found_entities() - set(ENTITY_NAMES) == set()


def test_state_machine_refusal_codes_are_translated() -> None:
    from sync.states import RefusalCode

    assert {code.value for code in RefusalCode} <= set(MESSAGES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "fr"),
        ("", "fr"),
        ("en", "en"),
        ("en-CA,en;q=0.9,fr;q=0.8", "en"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,en;q=0.5", "en"),
        ("de-DE", "fr"),
        ("en;q=0.2,fr;q=0.9", "fr"),
        ("en;q=0", "fr"),
        ("*", "fr"),
        ("en;q=abc", "fr"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_translate_fills_params_and_entity_names() -> None:
    assert translate("entity_not_found", "fr", entity="work_order", id=7) == (
        "Bon de travail n° 7 introuvable."
    )
    assert translate("entity_not_found", "en", entity="work_order", id=7) == (
        "Work order #7 not found."
    )
