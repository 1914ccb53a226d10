"""Person names: splitting shop A's one free-text field, tidying case, dedup keys, conflicts.

`split_full_name` is best effort (there is no reliable way to tell a surname from a first name):

* tokens are words; `И.И.` counts as two initials;
* one word plus initials (`ИВАНОВ И.И.`, `И. И. Иванов`, `Иванов И.`): the word is the last name,
  the initials are the first and middle names in order;
* two words: `Фамилия Имя` unless the other order is more likely: the word that is a known first
  name is the first name; if neither or both are known, the word that ends like a surname
  (-ов, -ев, -ин, -ский, ...) is the last name; `Иван Иванович` is first + middle;
* three words: `Фамилия Имя Отчество`, unless the middle word is a patronymic and the last one is
  not (`Иван Иванович Иванов`);
* more words: last, first, and the rest as the middle name (`... Гусейн оглы`).

Words typed all upper- or all lower-case are title-cased (`ИВАНОВ` -> `Иванов`, `петрова-водкина`
-> `Петрова-Водкина`); mixed case is kept as typed.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

# A word starts with a letter and runs to a space, a dot (kept: `И.`) or punctuation.
_TOKEN = re.compile(r"[^\W\d_][^\s.,;:()\"«»]*\.?")
_SURNAME_ENDINGS = (
    "ов", "ев", "ёв", "ин", "ын", "ова", "ева", "ёва", "ина", "ына", "ский", "цкий", "ской", "цкой",
    "ская", "цкая", "ых", "их", "енко", "ук", "юк", "ян", "дзе", "швили",
)
_PARTICLES = frozenset({"оглы", "кызы", "улы", "кизи"})  # stay lower case: `Гусейн оглы`
_PATRONYMIC_ENDINGS = ("вич", "вна", "ична", "инична", "ьич", "ыч", "кич", "мич", "тич", "лич", "оглы", "кызы")

# Common Russian first names (normalised: lower case, ё -> е), used only to decide the order of
# two-word names. A name missing here falls back on the surname-ending rule.
KNOWN_FIRST_NAMES = frozenset("""
александр алексей анатолий андрей антон аркадий арсений артем артур богдан борис вадим валентин
валерий василий вениамин виктор виталий владимир владислав вячеслав геннадий георгий герман глеб
григорий давид даниил денис дмитрий евгений егор захар иван игорь илья иннокентий иосиф кирилл
константин лев леонид макар максим марат марк матвей михаил никита николай олег павел петр платон
роберт родион роман руслан рустам савелий семен сергей станислав степан тарас тимофей тимур федор
филипп эдуард эльдар юрий яков ярослав камиль ренат ринат айдар рафаэль ильдар фарид
александра алена алина алиса алла анастасия ангелина анна антонина арина валентина валерия варвара
вера вероника виктория галина дарья диана ева евгения екатерина елена елизавета жанна зинаида зоя
инна ирина кристина ксения лариса лидия любовь людмила маргарита марина мария милана надежда нина
оксана ольга полина раиса регина светлана софья софия таисия тамара татьяна ульяна эльвира юлия
яна ярослава карина снежана эвелина алсу гульнара лилия розалия венера динара
""".split())


class FullName(NamedTuple):
    last: str
    first: str
    middle: str


_NO_NAME = FullName("", "", "")
_SIMPLE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*(?: [^\W\d_]+(?:-[^\W\d_]+)*)*")


def _norm(word: str) -> str:
    return word.lower().replace("ё", "е")


def _is_initial(token: str) -> bool:
    return len(token) == 1 or (len(token) == 2 and token[1] == ".")


def _is_first_name(token: str) -> bool:
    return _norm(token) in KNOWN_FIRST_NAMES


def _is_surname(token: str) -> bool:
    norm = _norm(token)
    return norm.endswith(_SURNAME_ENDINGS) and norm not in KNOWN_FIRST_NAMES


def _is_patronymic(token: str) -> bool:
    return len(token) > 4 and _norm(token).endswith(_PATRONYMIC_ENDINGS)


def tidy_name(word: str) -> str:
    """Title-case a name typed all upper/lower case (`ИВАНОВ` -> `Иванов`); an initial becomes
    `И.`; mixed case is kept."""
    if word.istitle() and not _is_initial(word):  # `Иванов`, `Петрова-Водкина`: already tidy
        return word
    if not word:
        return ""
    if _is_initial(word):
        return word[0].upper() + "."
    if word.lower() in _PARTICLES:
        return word.lower()
    if word.isupper() or word.islower():
        return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))
    return word


def tidy_name_part(text: str) -> str:
    """A whole name field (shop B's NAME_LAST etc.): every word tidied, whitespace collapsed."""
    if text.istitle() and " " not in text and len(text) > 2:  # the usual `Иванов`
        return text
    if not text:
        return ""
    return " ".join(tidy_name(w) for w in text.split())


def split_full_name(text: str) -> FullName:
    """One free-text name -> FullName(last, first, middle); see the module docstring."""
    if _SIMPLE.fullmatch(text):  # words of letters and hyphens, single spaces: the usual shape
        tokens = [tidy_name(t) for t in text.split(" ")]
    else:
        tokens = [tidy_name(t) for t in _TOKEN.findall(text)]
    n = len(tokens)
    if n == 3:
        a, b, c = tokens
        if _is_initial(b) or _is_initial(c) or _is_initial(a):
            pass  # the initials rule below
        elif _is_patronymic(b) and not _is_patronymic(c):
            return FullName(c, a, b)
        else:
            return FullName(a, b, c)
    if n == 0:
        return _NO_NAME
    initials = [_is_initial(t) for t in tokens]
    if n > 1 and initials.count(False) == 1:
        words = [t for t, i in zip(tokens, initials) if not i]
        given = [t for t, i in zip(tokens, initials) if i]
        return FullName(words[0], given[0], " ".join(given[1:]))
    if n == 1:
        only = tokens[0]
        return FullName("", only, "") if _is_first_name(only) else FullName(only, "", "")
    if n == 2:
        a, b = tokens
        if _is_patronymic(b) and not _is_patronymic(a):
            return FullName("", a, b)
        if _first_then_last(a, b):
            return FullName(b, a, "")
        return FullName(a, b, "")
    return FullName(tokens[0], tokens[1], " ".join(tokens[2:]))


def _first_then_last(a: str, b: str) -> bool:
    """Is `a b` more likely `Имя Фамилия` than `Фамилия Имя`?"""
    a_first, b_first = _is_first_name(a), _is_first_name(b)
    if a_first != b_first:
        return a_first
    a_sur, b_sur = _is_surname(a), _is_surname(b)
    if a_sur != b_sur:
        return b_sur
    return False


@lru_cache(maxsize=1 << 16)  # names repeat: a dict hit is a third of the work below
def normalize_name(text: str) -> str:
    """Dedup form of a name or name part: lower case, `ё` -> `е`, whitespace collapsed."""
    return " ".join(text.lower().replace("ё", "е").split())


def full_name_key(last: str, first: str, middle: str) -> str | None:
    """`"last first middle"` normalised, or None unless all three parts are present (the truth
    rules match on a full name only when it is complete). Initials do not count as present."""
    if not (last and first and middle) or _is_initial(first) or _is_initial(middle):
        return None
    return normalize_name(f"{last} {first} {middle}")


def _parts(name: Any) -> tuple[str, str, str]:
    if type(name) is tuple:  # the usual (last, first, middle)
        return name
    if hasattr(name, "last_name"):
        return name.last_name, name.first_name, name.middle_name
    last, first, middle = name
    return last, first, middle


def _given_conflict(x: str, y: str) -> bool:
    if not x or not y or x == y:
        return False
    x, y = normalize_name(x).rstrip("."), normalize_name(y).rstrip(".")
    if x == y:
        return False
    if len(x) == 1 or len(y) == 1:  # an initial is compatible with any name it starts
        return x[0] != y[0]
    return True


def names_conflict(a: Any, b: Any) -> bool:
    """Do two names belong to different people (truth rules, "Contact identity")?

    `a`, `b`: a (last, first, middle) tuple such as FullName, or anything with `last_name`,
    `first_name`, `middle_name` (a Contact). Conflict: both have a last name and they differ; or
    both have a first (or middle) name and they differ where neither is an initial of the other.
    Comparison is on the normalised form (case, `ё`).
    """
    al, af, am = _parts(a)
    bl, bf, bm = _parts(b)
    if al and bl and al != bl and normalize_name(al) != normalize_name(bl):
        return True
    return _given_conflict(af, bf) or _given_conflict(am, bm)
