"""Every public name (``vaekit.__all__``) is documented in the API reference pages
(docs/api/*.md): by a ``::: vaekit.NAME`` directive, a directive for the object's own path,
or a directive for the module that defines it (documented with its members). Cheap: reads
Markdown only, no site build."""

import re
import types
from pathlib import Path

import pytest

import vaekit

API = Path(__file__).resolve().parents[2] / "docs" / "api"


def _directives() -> set[str]:
    found = set()
    for page in API.glob("*.md"):
        found |= set(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.M))
    return found


def _covered(name: str, directives: set[str]) -> bool:
    obj = getattr(vaekit, name)
    if f"vaekit.{name}" in directives:
        return True
    if isinstance(obj, types.ModuleType):
        return obj.__name__ in directives
    module, qualname = getattr(obj, "__module__", ""), getattr(obj, "__qualname__", "")
    return f"{module}.{qualname}" in directives or (
        not module.rsplit(".", 1)[-1].startswith("_") and module in directives
    )


def test_api_pages_exist():
    if not API.is_dir():
        pytest.skip("docs/api is not part of this checkout")
    assert _directives(), "no ::: directives found in docs/api/*.md"


@pytest.mark.parametrize("name", vaekit.__all__)
def test_public_name_in_api_reference(name):
    if not API.is_dir():
        pytest.skip("docs/api is not part of this checkout")
    assert _covered(name, _directives()), (
        f"vaekit.{name} is in vaekit.__all__ but not in the API reference: add '::: vaekit.{name}' "
        "to the page of its subpackage in docs/api/."
    )
