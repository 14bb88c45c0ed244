"""Every message the code and templates ask for is translated in both catalogs, and no catalog
keeps a message nobody asks for (Babel's own extraction, as `pybabel extract` would run it)."""

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from domain.enums import Locale
from web.i18n import LOCALES_DIR, translations

ROOT = Path(__file__).resolve().parents[3]
# where user-facing words may be marked: the web layer (code and templates) and the use cases
SOURCES = {
    "web": [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
    "services": [("**.py", "python")],
    "domain": [("**.py", "python")],
}
JINJA_OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> dict[str | tuple[str, str], str]:
    found: dict[str | tuple[str, str], str] = {}
    for folder, method_map in SOURCES.items():
        for filename, line, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map=method_map, options_map=JINJA_OPTIONS, keywords=DEFAULT_KEYWORDS
        ):
            key = message if isinstance(message, str) else tuple(message[:2])
            found.setdefault(key, f"{folder}/{filename}:{line}")
    return found


def _catalog(locale: Locale):
    with (LOCALES_DIR / locale.value / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=locale.value)


def _po_entry(key) -> str:
    if isinstance(key, str):
        return f'msgid "{key}"\nmsgstr ""'
    return f'msgid "{key[0]}"\nmsgid_plural "{key[1]}"\nmsgstr[0] ""\nmsgstr[1] ""'


EXTRACTED = _extracted()


def test_extraction_finds_the_messages_of_code_and_templates():
    assert EXTRACTED["Wrong e-mail or password."].startswith("web/auth.py")
    assert EXTRACTED["Skip to content"].startswith("web/templates/base.html")
    assert ("%(num)d conversation", "%(num)d conversations") in EXTRACTED


def test_every_message_is_translated_in_every_catalog_and_none_is_stale():
    problems = []
    for locale in Locale:
        catalog = _catalog(locale)
        entries = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
        for key, where in EXTRACTED.items():
            message = entries.get(key)
            strings = [] if message is None else [message.string] if isinstance(key, str) else list(message.string)
            if message is None or not all(strings):
                problems.append(f"{locale}: untranslated ({where}):\n{_po_entry(key)}")
        problems += [f"{locale}: stale entry nobody uses: {key!r}" for key in entries.keys() - EXTRACTED.keys()]
        problems += [f"{locale}: fuzzy entry: {m.id!r}" for m in entries.values() if m.fuzzy]
    assert not problems, "\n\n".join(problems)


def test_translations_keep_the_placeholders_of_their_message():
    wrong = []
    for locale in Locale:
        for message in _catalog(locale):
            if not message.id:
                continue
            wanted = set(PLACEHOLDER.findall(message.id if isinstance(message.id, str) else message.id[0]))
            for text in [message.string] if isinstance(message.string, str) else message.string:
                if set(PLACEHOLDER.findall(text)) != wanted:
                    wrong.append(f"{locale}: {message.id!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)


def test_russian_plural_forms():
    ru = translations(Locale.RU)
    counted = {
        n: ru.ngettext("%(num)d conversation", "%(num)d conversations", n) % {"num": n}
        for n in (1, 2, 5, 11, 21, 22, 112)
    }
    assert counted == {
        1: "1 диалог",
        2: "2 диалога",
        5: "5 диалогов",
        11: "11 диалогов",
        21: "21 диалог",
        22: "22 диалога",
        112: "112 диалогов",
    }
    en = translations(Locale.EN)
    assert en.ngettext("%(num)d conversation", "%(num)d conversations", 1) % {"num": 1} == "1 conversation"
    assert en.ngettext("%(num)d conversation", "%(num)d conversations", 2) % {"num": 2} == "2 conversations"
