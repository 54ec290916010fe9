"""The built-in table that turns a PMS language value into an ISO 639-1 code.

A PMS stores a guest's language in many shapes: `en`, `ENG`, `GER`, `E`, `German`,
`Deutsch`, `en-US`, `zh_Hans_CN`, `Chinese (Simplified)`. `lookup_language` knows all
of them for the languages below; the property's `language_map` (applied first, by
`loopsync.mapping`) covers the rest and overrides this table.

What is recognised, case-insensitively:
- every ISO 639-1 two-letter code, as is; the legacy codes `iw`, `in`, `ji`, `jw`, `mo`;
- ISO 639-2/B and 639-2/T three-letter codes (`ger`/`deu`, `fre`/`fra`, `chi`/`zho`, ...);
- English names, and native names where guests or PMSs commonly use them;
- locale forms: `en-US`, `en_GB`, `zh-Hans-CN`, `pt-BR`, `de_DE.UTF-8` (primary subtag);
- single-letter PMS codes (`SINGLE_LETTER_CODES`): E English, G and D German, F French,
  S Spanish, I Italian, N Dutch, P Portuguese, R Russian, J Japanese, C Chinese,
  K Korean. Other letters are ambiguous between PMSs (A, H, T, ...) and belong in
  `property.language_map`, which also overrides these (e.g. `D = "nl"`);
- a few country codes that PMSs store in the language column and that are not
  language codes themselves (`GB`, `US`, `DK`, `CZ`, `GR`, `JP`, `CN`, `UA`). Country
  codes that are also language codes (`SE` Northern Sami, `KR` Kanuri, `BR` Breton)
  keep their ISO 639-1 meaning.
"""

from __future__ import annotations

import re
import unicodedata

# ISO 639-1, complete.
ISO_639_1 = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs
    cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha
    he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn
    ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb
    nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
    se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw
    ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()  # noqa: SIM905 - a compact table reads better than 184 quoted codes
)

SINGLE_LETTER_CODES: dict[str, str] = {
    "E": "en",
    "G": "de",
    "D": "de",
    "F": "fr",
    "S": "es",
    "I": "it",
    "N": "nl",
    "P": "pt",
    "R": "ru",
    "J": "ja",
    "C": "zh",
    "K": "ko",
}

# code -> other spellings: ISO 639-2 B/T codes, legacy and country codes, English and
# native names. Keys are compared after NFC and casefold, so case does not matter here.
_ALIASES: dict[str, tuple[str, ...]] = {
    "en": ("eng", "english", "gb", "us"),
    "de": ("deu", "ger", "german", "deutsch"),
    "fr": ("fra", "fre", "french", "français", "francais"),
    "es": ("spa", "spanish", "español", "espanol", "castellano", "castilian"),
    "it": ("ita", "italian", "italiano"),
    "nl": ("nld", "dut", "dutch", "nederlands", "flemish", "vlaams"),
    "pt": ("por", "portuguese", "português", "portugues"),
    "ru": ("rus", "russian", "русский"),
    "zh": (
        "zho",
        "chi",
        "cmn",
        "yue",
        "cn",
        "chinese",
        "mandarin",
        "cantonese",
        "中文",
        "汉语",
        "漢語",
        "普通话",
        "简体中文",
        "繁體中文",
        "粤语",
        "粵語",
    ),
    "ja": ("jpn", "jp", "japanese", "日本語", "nihongo"),
    "ko": ("kor", "korean", "한국어", "조선말"),
    "ar": ("ara", "arabic", "العربية", "عربي"),
    "he": ("heb", "iw", "hebrew", "עברית"),
    "tr": ("tur", "turkish", "türkçe", "turkce"),
    "pl": ("pol", "polish", "polski"),
    "cs": ("ces", "cze", "cz", "czech", "čeština", "cestina"),
    "sk": ("slk", "slo", "slovak", "slovenčina", "slovencina"),
    "hu": ("hun", "hungarian", "magyar"),
    "ro": ("ron", "rum", "mo", "romanian", "moldavian", "română", "romana"),
    "bg": ("bul", "bulgarian", "български"),
    "el": ("ell", "gre", "gr", "greek", "ελληνικά"),
    "sv": ("swe", "swedish", "svenska"),
    "da": ("dan", "dk", "danish", "dansk"),
    "no": ("nor", "norwegian", "norsk"),
    "nb": ("nob", "bokmål", "bokmal", "norwegian bokmål", "norwegian bokmal"),
    "nn": ("nno", "nynorsk", "norwegian nynorsk"),
    "fi": ("fin", "finnish", "suomi"),
    "is": ("isl", "ice", "icelandic", "íslenska"),
    "et": ("est", "estonian", "eesti"),
    "lv": ("lav", "latvian", "latviešu"),
    "lt": ("lit", "lithuanian", "lietuvių"),
    "sl": ("slv", "slovenian", "slovene", "slovenščina"),
    "hr": ("hrv", "croatian", "hrvatski"),
    "sr": ("srp", "serbian", "српски", "srpski"),
    "bs": ("bos", "bosnian", "bosanski"),
    "mk": ("mkd", "mac", "macedonian", "македонски"),
    "sq": ("sqi", "alb", "albanian", "shqip"),
    "uk": ("ukr", "ua", "ukrainian", "українська"),
    "be": ("bel", "belarusian", "беларуская"),
    "ka": ("kat", "geo", "georgian", "ქართული"),
    "hy": ("hye", "arm", "armenian", "հայերեն"),
    "az": ("aze", "azerbaijani", "azərbaycan"),
    "kk": ("kaz", "kazakh", "қазақ"),
    "fa": ("fas", "per", "persian", "farsi", "فارسی"),
    "ur": ("urd", "urdu", "اردو"),
    "hi": ("hin", "hindi", "हिन्दी", "हिंदी"),
    "bn": ("ben", "bengali", "bangla", "বাংলা"),
    "ta": ("tam", "tamil", "தமிழ்"),
    "te": ("tel", "telugu"),
    "th": ("tha", "thai", "ไทย"),
    "vi": ("vie", "vietnamese", "tiếng việt", "tieng viet"),
    "id": ("ind", "in", "indonesian", "bahasa indonesia"),
    "ms": ("msa", "may", "malay", "bahasa melayu"),
    "tl": ("tgl", "fil", "tagalog", "filipino"),
    "ca": ("cat", "catalan", "català"),
    "eu": ("eus", "baq", "basque", "euskara"),
    "gl": ("glg", "galician", "galego"),
    "ga": ("gle", "irish", "gaeilge"),
    "cy": ("cym", "wel", "welsh", "cymraeg"),
    "mt": ("mlt", "maltese", "malti"),
    "lb": ("ltz", "luxembourgish", "lëtzebuergesch"),
    "af": ("afr", "afrikaans"),
    "sw": ("swa", "swahili", "kiswahili"),
    "zu": ("zul", "zulu", "isizulu"),
    "xh": ("xho", "xhosa", "isixhosa"),
    "am": ("amh", "amharic", "አማርኛ"),
    "yi": ("yid", "ji", "yiddish", "ייִדיש"),
    "mn": ("mon", "mongolian", "монгол"),
    "ne": ("nep", "nepali", "नेपाली"),
    "si": ("sin", "sinhala", "sinhalese"),
    "km": ("khm", "khmer"),
    "lo": ("lao",),
    "my": ("mya", "bur", "burmese"),
    "pa": ("pan", "punjabi", "panjabi"),
    "gu": ("guj", "gujarati"),
    "mr": ("mar", "marathi"),
    "kn": ("kan", "kannada"),
    "ml": ("mal", "malayalam"),
    "uz": ("uzb", "uzbek"),
    "jv": ("jav", "jw", "javanese"),
    "mi": ("mri", "mao", "maori", "māori"),
    "la": ("lat", "latin"),
    "eo": ("epo", "esperanto"),
    "fo": ("fao", "faroese"),
}

# The primary subtag ends at the first of these: `en-US`, `en_GB`, `de_DE.UTF-8`,
# `sr@latin`, `Chinese (Simplified)`, `Portuguese - Brazil`, `Chinese, Traditional`.
_SUBTAG_END = re.compile(r"[-_.@(,;/]")


def language_key(text: str) -> str:
    """The form a language value is looked up by: NFC, casefolded, single-spaced."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _build_table() -> dict[str, str]:
    table = {code: code for code in ISO_639_1}
    entries = [(alias, code) for code, aliases in _ALIASES.items() for alias in aliases]
    entries += [(letter, code) for letter, code in SINGLE_LETTER_CODES.items()]
    for alias, code in entries:
        key = language_key(alias)
        if table.get(key, code) != code:
            raise ValueError(f"language alias {alias!r} maps to both {table[key]} and {code}")
        table[key] = code
    return table


LANGUAGE_TABLE: dict[str, str] = _build_table()


def primary_subtag(text: str) -> str:
    """The part before the first locale separator: `en-US` -> `en`, `zh_Hans_CN` -> `zh`."""
    return _SUBTAG_END.split(language_key(text), maxsplit=1)[0].strip()


def lookup_language(text: str) -> str | None:
    """The ISO 639-1 code of a language value by the built-in table, or None if unknown."""
    key = language_key(text)
    if not key:
        return None
    found = LANGUAGE_TABLE.get(key)
    if found is None:
        found = LANGUAGE_TABLE.get(primary_subtag(key))
    return found
