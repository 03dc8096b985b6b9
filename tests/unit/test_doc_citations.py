"""Every ``docs/<file>.md §N`` cited in the code names a file and a section that exist.

The code cites the project's own notes (``docs/protocol.md``, ``docs/ipmi.md``, …) by
numbered section. This keeps those citations honest when a document is edited, and keeps
out citations of research notes that are not in the repository.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("agent", "baremetal", "boot_hooks", "tests")
SCANNED_SUFFIXES = {".py", ".md", ".toml", ".txt", ".html", ".js", ".json", ".ps1", ".sh"}

# "docs/x.md", optionally followed by "§N" and more "§N" chained by ",", ";", "-" or "and".
CITATION = re.compile(
    r"(?<![\w/.-])(?P<doc>docs/[\w.-]+\.md)"
    r"(?P<sections>(?: §[\d.]+)(?:(?:, | and |; |-)§[\d.]+)*)?"
)
SECTION = re.compile(r"§([\d.]+)")
HEADING = re.compile(r"^#{1,6}\s+§?(\d+(?:\.\d+)*)[.\s]")

# Documents of other repositories, cited with their owner next to them.
EXTERNAL_DOCS = {"docs/sdk_user_manual.md"}  # DeepLinkProtocol/DeepLinkSDK-Win
# Research notes outside the repository: a reader of the code does not have them.
FORBIDDEN = ("dbc-protocol.md", "ipmi-anchors", "cybercafe-and-deeplink")


def _scanned_files() -> list[Path]:
    me = Path(__file__).resolve()
    files = []
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SCANNED_SUFFIXES and path.is_file() and path.resolve() != me:
                files.append(path)
    return files


@cache
def _headings(doc: str) -> frozenset[str]:
    text = (ROOT / doc).read_text(encoding="utf-8")
    return frozenset(m.group(1) for line in text.splitlines() if (m := HEADING.match(line)))


def _citations() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in _scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            if match.group("doc") in EXTERNAL_DOCS:
                continue
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            numbers = [s.rstrip(".") for s in SECTION.findall(match.group("sections") or "")]
            found.append((where, match.group("doc"), numbers))
    return found


def test_the_code_cites_the_new_documents() -> None:
    docs = {doc for _where, doc, _numbers in _citations()}
    assert {"docs/protocol.md", "docs/ipmi.md"} <= docs


def test_every_cited_document_exists() -> None:
    missing = [f"{where}: {doc}" for where, doc, _ in _citations() if not (ROOT / doc).is_file()]
    assert not missing, "citations of documents not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_is_a_heading_of_its_document() -> None:
    unknown = [
        f"{where}: {doc} §{number}"
        for where, doc, numbers in _citations()
        if (ROOT / doc).is_file()
        for number in numbers
        if number not in _headings(doc)
    ]
    assert not unknown, "citations of sections that do not exist:\n" + "\n".join(unknown)


def test_no_file_cites_research_notes_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _scanned_files()
        for name in FORBIDDEN
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not offenders, "cite docs/protocol.md or docs/ipmi.md instead:\n" + "\n".join(offenders)


def test_the_heading_pattern_reads_numbered_headings() -> None:
    assert HEADING.match("### 6.2 ipmitool and `sh -c`").group(1) == "6.2"
    assert HEADING.match("## 10. Emulator fidelity checklist").group(1) == "10"
    assert HEADING.match("#### 3.3.2 Hang with `str` credentials").group(1) == "3.3.2"
    assert HEADING.match("## Layout") is None
    cited = CITATION.search("see (docs/protocol.md §3.6, §4.4), then")
    assert cited is not None and SECTION.findall(cited.group("sections")) == ["3.6", "4.4"]
    assert CITATION.search("https://example.org/docs/x.md") is None
