"""The pages under docs/ are executed, and their links resolve.

For each page (a fresh namespace per page) every ```python block runs in order;
what a block prints must equal the ```text block right after it, if there is
one: exactly (trailing spaces aside), or, with ```text tol=1e-6, the same text
with every number within that relative (or absolute, near 0) tolerance. Every
relative link ``[..](path)`` must name an existing file or folder.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ["mlp_backprop.md", "convolution.md", "pooling.md", "architectures.md", "alexnet_recipe.md",
         "architecture.md"]

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def blocks(text):
    """``(language, info, body, line)`` of every fenced block, in order."""
    for m in _FENCE.finditer(text):
        info = m.group(1).strip()
        lang = info.split()[0] if info else ""
        yield lang, info, m.group(2), text.count("\n", 0, m.start()) + 1


def _tolerance(info):
    m = re.search(r"\btol=([0-9.eE+-]+)", info)
    return float(m.group(1)) if m else None


def _norm(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def same_output(got, want, tol=None):
    """Exact text, or the same text with numbers within ``tol`` (relative; absolute below 1)."""
    got, want = _norm(got), _norm(want)
    if tol is None:
        return got == want
    if _NUMBER.split(got) != _NUMBER.split(want):
        return False
    a, b = _NUMBER.findall(got), _NUMBER.findall(want)
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= tol * max(1.0, abs(float(y)))
                                    for x, y in zip(a, b))


def test_same_output_can_fail():
    assert same_output("loss 1.0000001\n", "loss 1.0", tol=1e-6)
    assert not same_output("loss 1.1", "loss 1.0", tol=1e-6)
    assert not same_output("loss 1.0", "gain 1.0", tol=1e-6)
    assert not same_output("a 1.0", "a 1", tol=None)


def test_every_page_is_there():
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_and_prints_what_it_says(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    items = list(blocks((DOCS / page).read_text(encoding="utf-8")))
    namespace = {"__name__": f"docs_{Path(page).stem}"}
    ran = 0
    for k, (lang, info, body, line) in enumerate(items):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(body, f"docs/{page}:{line}", "exec"), namespace)
        ran += 1
        nxt = items[k + 1] if k + 1 < len(items) else None
        if nxt is not None and nxt[0] == "text":
            assert same_output(out.getvalue(), nxt[2], _tolerance(nxt[1])), (
                f"docs/{page}, block at line {line}: printed\n{out.getvalue()}\nbut the page says\n{nxt[2]}")
    if page != "architecture.md":
        assert ran > 0, f"docs/{page} has no python block"


def _documentation_section(readme):
    """README.md's "## Documentation" section (the rest of the README is not checked here)."""
    m = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    return m.group(1) if m else ""


def missing_links(folder, text):
    """The relative link targets in ``text`` (outside code blocks) that name no file under ``folder``."""
    missing = []
    for target in _LINK.findall(_FENCE.sub("", text)):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (folder / target.split("#", 1)[0]).exists():
            missing.append(target)
    return missing


def test_missing_links_can_fail():
    text = "[ok](tests/test_docs.py#top) [web](https://x.org) [gone](glassnet/nope.py)\n```\n[code](no.py)\n```\n"
    assert missing_links(ROOT, text) == ["glassnet/nope.py"]


@pytest.mark.parametrize("page", [f"docs/{p}" for p in PAGES] + ["README.md"])
def test_relative_links_resolve(page):
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    if page == "README.md":
        text = _documentation_section(text)
    missing = missing_links(path.parent, text)
    assert not missing, f"{page}: links to missing files: {missing}"
