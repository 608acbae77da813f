"""The portal speaks Korean and English: the same keys in both, no text outside them."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from seoulchain.api.portal import PORTAL_DIR

LANGUAGES = ("ko", "en")
TEXT_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")
HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
PROSE = re.compile(r"[A-Za-z]{2,}[,.!?:]?\s+[A-Za-z]{2,}")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^") | {""}
REGEX_KEYWORDS = {"return", "typeof", "case", "of", "in", "do", "else", "void", "yield",
                  "await"}
WORDY_ATTRIBUTE = re.compile(r"[A-Za-z]{3,}|[\uac00-\ud7a3]")
KEY_LIKE = re.compile(r"^[a-z_]+(?:\.[a-z_0-9]+)+$")
FILE_SUFFIXES = (".html", ".js", ".css", ".json", ".csv")


def load_strings(language: str) -> dict[str, str]:
    return json.loads((PORTAL_DIR / "i18n" / f"{language}.json").read_text(encoding="utf-8"))


def css_classes() -> set[str]:
    return set(re.findall(r"\.([a-z][a-z0-9-]*)", (PORTAL_DIR / "style.css").read_text()))


def js_files() -> list[Path]:
    """Return the portal's scripts but the verifier's (verify/): its failure reasons and
    proved statements are the wording of docs/spec/proofs.md, shown after a translated
    sentence, as the node's problem details are."""
    return sorted(path for path in PORTAL_DIR.rglob("*.js")
                  if path.relative_to(PORTAL_DIR).parts[0] != "verify")


def read_regex(text: str, start: int) -> int:
    """Return the index just past the regular expression literal starting at `start`."""
    index, in_class = start + 1, False
    while index < len(text) and (text[index] != "/" or in_class):
        if text[index] == "\\":
            index += 1
        elif text[index] in "[]":
            in_class = text[index] == "["
        index += 1
    return index + 1


def js_literals(path: Path) -> list[str]:
    """Return the string literals of a JavaScript file (comments and regexes skipped).

    A `/` starts a regular expression where an expression may start (after an operator,
    an opening bracket or a keyword such as `return`), else it divides.
    """
    text = path.read_text(encoding="utf-8")
    literals, index, previous = [], 0, ""
    while index < len(text):
        char = text[index]
        if text.startswith("//", index):
            index = text.find("\n", index) % (len(text) + 1)
            continue
        if text.startswith("/*", index):
            index = text.index("*/", index) + 2
            continue
        if char in "\"'`":
            end = index + 1
            while text[end] != char:
                end += 2 if text[end] == "\\" else 1
            literals.append(text[index + 1:end])
            index, previous = end + 1, "x"
            continue
        if char == "/" and (previous in REGEX_AFTER or previous in REGEX_KEYWORDS):
            index, previous = read_regex(text, index), "x"
            continue
        if char.isalnum() or char in "_$":
            word = re.match(r"[\w$]+", text[index:]).group()
            index, previous = index + len(word), word
            continue
        if not char.isspace():
            previous = char
        index += 1
    return literals


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    korean, english = (load_strings(language) for language in LANGUAGES)
    assert sorted(set(korean) ^ set(english)) == []
    for key in english:
        assert korean[key].strip() and english[key].strip(), key
        assert set(PLACEHOLDER.findall(korean[key])) == set(PLACEHOLDER.findall(english[key])), key


def test_korean_strings_are_korean() -> None:
    """A Korean string copied from English prose is untranslated; names, placeholders and
    examples ("English", "{name}: SHA-256 {hash}") read the same in both."""
    korean = load_strings("ko")
    english = load_strings("en")
    untranslated = [key for key, text in korean.items() if text == english[key]
                    and PROSE.search(PLACEHOLDER.sub("", text))]
    assert untranslated == []


class TextCollector(HTMLParser):
    """Collect text not inside a `data-i18n` element, and literal text attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.untranslated: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for attribute in TEXT_ATTRIBUTES:
            if WORDY_ATTRIBUTE.search(names.get(attribute) or ""):
                self.untranslated.append(f'<{tag} {attribute}="{names[attribute]}">')
        if tag not in ("meta", "link", "input", "br", "img", "hr"):
            inside = any(translated for _, translated in self.stack)
            self.stack.append((tag, inside or "data-i18n" in names or tag in ("script",
                                                                                "style")))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if data.strip() and not any(translated for _, translated in self.stack):
            self.untranslated.append(data.strip())


@pytest.mark.parametrize("page", sorted(path.name for path in PORTAL_DIR.glob("*.html")))
def test_html_text_comes_from_the_strings_files(page: str) -> None:
    collector = TextCollector()
    collector.feed((PORTAL_DIR / page).read_text(encoding="utf-8"))
    assert collector.untranslated == []
    english = load_strings("en")
    html = (PORTAL_DIR / page).read_text(encoding="utf-8")
    keys = re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', html)
    assert keys and [key for key in keys if key not in english] == []


def test_javascript_shows_no_literal_text() -> None:
    """Text for people in the scripts is always t("key"): no Hangul, no English prose."""
    classes = css_classes()
    found = []
    for path in js_files():
        for literal in js_literals(path):
            words = re.sub(r"\$\{[^}]*\}", " ", literal).split()
            if all(word in classes for word in words):
                continue  # a class list such as "notice error"
            if HANGUL.search(literal) or PROSE.search(re.sub(r"\$\{[^}]*\}", "", literal)):
                found.append(f"{path.relative_to(PORTAL_DIR)}: {literal!r}")
    assert found == []


def test_every_key_the_scripts_name_exists() -> None:
    english = load_strings("en")
    namespaces = {key.split(".")[0] for key in english}
    missing = []
    for path in js_files():
        for literal in js_literals(path):
            if KEY_LIKE.match(literal) and literal.split(".")[0] in namespaces \
                    and not literal.endswith(FILE_SUFFIXES) and literal not in english:
                missing.append(f"{path.relative_to(PORTAL_DIR)}: {literal}")
    assert missing == []


def test_status_words_the_lists_use_are_translated() -> None:
    english = load_strings("en")
    for status in ("ok", "failed", "pending", "unknown", "committed"):
        assert f"status.{status}" in english


def test_the_checks_catch_untranslated_text(tmp_path: Path) -> None:
    """The collectors above do find text written straight into a page or a script."""
    collector = TextCollector()
    collector.feed('<p data-i18n="a.b"></p><p>Hello</p><input placeholder="Name">')
    assert collector.untranslated == ['<input placeholder="Name">', "Hello"] or \
        sorted(collector.untranslated) == sorted(['<input placeholder="Name">', "Hello"])
    script = tmp_path / "x.js"
    script.write_text('// a comment, not text\nel.textContent = "Nothing found";\n'
                      'const k = t("nav.home"); const c = "notice error";\n')
    literals = js_literals(script)
    assert "Nothing found" in literals and "a comment, not text" not in " ".join(literals)
    assert PROSE.search("Nothing found") and not PROSE.search("nav.home")
