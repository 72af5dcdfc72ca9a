"""The review queue's search language: reading a search-bar string and turning it into a PredictedAsset filter."""
import difflib
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import AssetStatus, AssetTerm, Label

MAX_LENGTH = 1000
MAX_TERMS = 30

# (example, meaning): the page shows these as the language's documentation.
QUERY_HELP = [
    ("status:to_review label:car", "Terms separated by spaces must all hold."),
    ("status:to_review", "Waiting for review; also status:reviewed and status:submitted."),
    ("label:car", 'The champion predicted a car: a label name (any case) or class id (label:3); '
                  'quote names with spaces: label:"cat face".'),
    ("reviewed_label:car", "The review settled on a car (a label name or class id, like label:)."),
    ("tag:night", "The frame was sent with the tag night (any case)."),
    ("shapes>3", "More than 3 predicted shapes; also =, >=, <, <= and shapes:0 for none."),
    ("score<0.5", "Some shape scored below 0.5 (or <=); frames without shapes never match."),
    ("score>0.9", "Some shape scored above 0.9 (or >=); score=X is refused, since a frame has a score per shape."),
    ("outlier>0.9", "Outlier score above 0.9 (also =, >=, <, <=); frames without an outlier score never match."),
    ("latency>200ms", "The champion took more than 200 ms; plain numbers are seconds (latency>0.2)."),
    ("source:camera-1", "Sent by the source camera-1 (exact, case-sensitive)."),
    ("since:24h", "Predicted in the last 24 hours (units s, m, h, d, w), or since a UTC date or time: "
                  "since:2026-11-01, since:2026-11-01T08:30."),
    ("until:2026-11-01", "Predicted before that moment (UTC); takes the same values as since."),
    ("reviewed_by:alice", "Reviewed by the user alice; reviewed_by:me, by you."),
    ("filename:*.png", "The filename matches the pattern, any case: * is any characters, ? exactly one."),
    ("frame_12", 'A word without a filter: the filename contains it, any case; quote words holding : < > = '
                 'or spaces ("cam:1").'),
    ("-label:person", "A leading - keeps exactly what the term rejects: -tag:night, -status:submitted, "
                      "-outlier>0.9 (which keeps frames without an outlier score)."),
]


class QuerySyntaxError(ValidationFailed):
    """A query the language cannot use: `message` for people (characters counted from 1 there),
    `position` (0-based offset into the query) and `length` to underline the fault."""

    def __init__(self, message: str, *, position: int, length: int):
        super().__init__(message, [FieldError("q", message)], position=position, length=length)
        self.position = position
        self.length = length


@dataclass(frozen=True)
class Term:
    """One term: key "" is a bare word; operator is as typed (":" and "=" both mean equal).

    value is unquoted; position/length span the whole term (its "-" included), value_position where its value starts.
    """

    key: str
    operator: str
    value: str
    negated: bool
    position: int
    length: int
    value_position: int


class _BadValue(Exception):
    """A value a filter cannot use, as (problem, hint); the caller knows where the value is."""

    def __init__(self, problem: str, hint: str = ""):
        super().__init__(problem)
        self.problem, self.hint = problem, hint


def _error(problem: str, position: int, length: int, hint: str = "") -> QuerySyntaxError:
    message = f"{problem} at character {position + 1}" + (f"; {hint}" if hint else "")
    return QuerySyntaxError(message, position=position, length=length)


# ---- tokenizer --------------------------------------------------------------------------------------------------

# A key is a word not starting with a digit (so "12:30" stays a bare word), directly followed by its operator.
_KEY = re.compile(r"([^\W\d]\w*)(>=|<=|[:=<>])")


def parse_query(text: str) -> list[Term]:
    """The terms of `text`, each checked against its filter; raises QuerySyntaxError. Needs no database."""
    if len(text) > MAX_LENGTH:
        raise _error("the query is too long", MAX_LENGTH, len(text) - MAX_LENGTH, f"at most {MAX_LENGTH} characters")
    for index, char in enumerate(text):
        if not char.isspace() and unicodedata.category(char) in ("Cc", "Cs"):
            raise _error(f"unexpected control character {char!r}", index, 1)
    terms: list[Term] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        if len(terms) == MAX_TERMS:
            raise _error("too many terms", index, len(text) - index, f"at most {MAX_TERMS}")
        term = _read_term(text, index)
        _check(term)
        terms.append(term)
        index = term.position + term.length
    return terms


def _read_term(text: str, start: int) -> Term:
    negated = text[start] == "-"
    index = start + negated
    match = _KEY.match(text, index)
    key, operator = (match[1].lower(), match[2]) if match else ("", "")
    value_position = match.end() if match else index
    parts = []
    index = value_position
    while index < len(text) and not text[index].isspace():
        if text[index] == '"':
            end = text.find('"', index + 1)
            if end < 0:
                raise _error("unterminated quote", index, len(text) - index, 'close it with another "')
            parts.append(text[index + 1:end])
            index = end + 1
        else:
            end = index
            while end < len(text) and not text[end].isspace() and text[end] != '"':
                end += 1
            parts.append(text[index:end])
            index = end
    return Term(key, operator, "".join(parts), negated, start, index - start, value_position)


def _check(term: Term) -> None:
    if not term.key:
        if not term.value:
            problem = 'nothing after "-"' if term.negated and term.length == 1 else "empty search term"
            raise _error(problem, term.position, term.length, "write what to search for")
        return
    key_position = term.position + term.negated
    operator_position = term.value_position - len(term.operator)
    spec = _FILTERS.get(term.key)
    if spec is None:
        close = difflib.get_close_matches(term.key, _FILTERS, n=1)
        raise _error(
            f'unknown filter "{term.key}"' + (f" (did you mean {close[0]}?)" if close else ""),
            key_position, operator_position - key_position,
            f"known: {', '.join(_FILTERS)}; put a word in quotes to search filenames for it",
        )
    if term.operator not in spec.operators:
        raise _error(f'{term.key} cannot use "{term.operator}"', operator_position, len(term.operator),
                     spec.operator_error or f"write e.g. {spec.example}")
    if not term.value:
        raise _error(f"{term.key} needs a value", term.position, term.length, f"write e.g. {spec.example}")
    _convert(term, spec)


def _convert(term: Term, spec: "_Filter"):
    try:
        return spec.convert(term.value)
    except _BadValue as bad:
        raise _value_error(term, bad) from None


def _value_error(term: Term, bad: _BadValue) -> QuerySyntaxError:
    return _error(bad.problem, term.value_position, term.position + term.length - term.value_position, bad.hint)


# ---- values -----------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def _number(value: str, *, what: str = "a number", signed: bool = False) -> float:
    digits = value[1:] if signed and value[:1] == "-" else value
    number = float(value) if _NUMBER.fullmatch(digits) else math.nan
    if not math.isfinite(number):
        raise _BadValue(f'"{value}" is not {what}')
    return number


def _fraction(value: str) -> float:
    number = _number(value, what="a score from 0 to 1")
    if number > 1:
        raise _BadValue(f"score {value} is over 1", "scores go from 0 to 1")
    return number


def _signed(value: str) -> float:
    return _number(value, signed=True)


def _count(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise _BadValue(f'"{value}" is not a whole number of shapes')
    return int(value)


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(.*?)(ms|s)?", value, re.IGNORECASE)
    try:
        number = _number(match[1])
    except _BadValue:
        raise _BadValue(f'"{value}" is not a duration', "write seconds (0.2) or milliseconds (200ms)") from None
    return number / 1000 if (match[2] or "").lower() == "ms" else number


def _status(value: str) -> str:
    if value.upper() not in AssetStatus.values:
        raise _BadValue(f'unknown status "{value}"', f'known: {", ".join(s.lower() for s in AssetStatus.values)}')
    return value.upper()


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LONGEST_DURATION = 100 * 366 * 86400


def _moment(value: str) -> timedelta | datetime:
    """A duration back from now (24h) or a moment (a date or ISO datetime, UTC unless it says otherwise)."""
    duration = re.fullmatch(r"([0-9]{1,12})([smhdw])", value, re.IGNORECASE)
    if duration:
        seconds = int(duration[1]) * _UNIT_SECONDS[duration[2].lower()]
        if seconds > _LONGEST_DURATION:
            raise _BadValue(f"{value} reaches too far back", "at most 100 years")
        return timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _BadValue(f'"{value}" is not a time',
                        "write a duration back from now (24h, 30m, 7d) or a UTC date or time (2026-11-01)") from None


def _text(value: str) -> str:
    return value


# ---- filters ----------------------------------------------------------------------------------------------------

_LOOKUPS = {":": "exact", "=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_EQUAL = (":", "=")
_COMPARE = tuple(_LOOKUPS)


@dataclass
class _Context:
    deployment: object
    now: datetime
    user: object = None  # the person searching, for reviewed_by:me
    _labels: list[tuple[int, str]] | None = field(default=None, repr=False)

    def has_term(self, terms: list[str]) -> Q:
        return Q(Exists(AssetTerm.objects.filter(
            deployment_id=self.deployment.id, asset_id=OuterRef("pk"), term__in=terms,
        )))

    def label_ids(self, value: str) -> list[int]:
        """The class ids a label:VALUE means: those named VALUE (any case), else the class id VALUE."""
        if self._labels is None:
            self._labels = list(Label.objects.filter(deployment=self.deployment).values_list("class_id", "name"))
        ids = [class_id for class_id, name in self._labels if name.casefold() == value.casefold()]
        if not ids and re.fullmatch(r"-?[0-9]{1,18}", value):
            ids = [class_id for class_id, _ in self._labels if class_id == int(value)]
        if not ids:
            known = [f"{name} ({class_id})" for class_id, name in self._labels[:20]]
            more = f" and {len(self._labels) - 20} more" if len(self._labels) > 20 else ""
            raise _BadValue(f'unknown label "{value}"', f'known: {", ".join(known) or "none"}{more}')
        return ids


def _compare(column: str) -> Callable:
    return lambda operator, value, context: Q(**{f"{column}__{_LOOKUPS[operator]}": value})


def _equal(column: str) -> Callable:
    return lambda operator, value, context: Q(**{column: value})


def _score(operator: str, value: float, context: _Context) -> Q:
    # Some shape below X is the lowest score below X; some shape above X is the highest above X.
    column = "min_score" if operator.startswith("<") else "max_score"
    return Q(**{f"{column}__{_LOOKUPS[operator]}": value})


def _label(operator: str, value: str, context: _Context) -> Q:
    return context.has_term([f"label:{class_id}" for class_id in context.label_ids(value)])


def _reviewed_label(operator: str, value: str, context: _Context) -> Q:
    return context.has_term([f"reviewed:{class_id}" for class_id in context.label_ids(value)])


def _reviewed_by(operator: str, value: str, context: _Context) -> Q:
    if value.casefold() == "me":
        if context.user is None:
            raise _BadValue("reviewed_by:me needs a signed-in person", "write a username: reviewed_by:alice")
        return Q(reviewed_by=context.user)
    return Q(reviewed_by__username=value)


def _tag(operator: str, value: str, context: _Context) -> Q:
    return context.has_term([f"tag:{value.lower()}"])


def _since(operator: str, value: timedelta | datetime, context: _Context) -> Q:
    return Q(timestamp__gte=context.now - value if isinstance(value, timedelta) else value)


def _until(operator: str, value: timedelta | datetime, context: _Context) -> Q:
    return Q(timestamp__lt=context.now - value if isinstance(value, timedelta) else value)


def _filename(operator: str, pattern: str, context: _Context) -> Q:
    """A glob, any case: a LIKE-able lookup when the wildcards are only at the ends, else an anchored regex."""
    inner = pattern.strip("*")
    if "*" not in inner and "?" not in inner:
        lookup = {(False, False): "iexact", (False, True): "istartswith",
                  (True, False): "iendswith", (True, True): "icontains"}[(pattern[0] == "*", pattern[-1] == "*")]
        return Q(**{f"filename__{lookup}": inner})
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return Q(filename__iregex=f"^{regex}$")


def _contains(operator: str, value: str, context: _Context) -> Q:
    return Q(filename__icontains=value)


@dataclass(frozen=True)
class _Filter:
    operators: tuple[str, ...]
    example: str
    convert: Callable[[str], object]
    build: Callable[[str, object, _Context], Q]
    operator_error: str = ""


_FILTERS = {
    "status": _Filter(_EQUAL, "status:to_review", _status, _equal("status")),
    "label": _Filter(_EQUAL, "label:car", _text, _label),
    "tag": _Filter(_EQUAL, "tag:night", _text, _tag),
    "shapes": _Filter(_COMPARE, "shapes>3", _count, _compare("shape_count")),
    "score": _Filter(
        ("<", "<=", ">", ">="), "score<0.5", _fraction, _score,
        operator_error="a frame has one score per shape, so write score<X (some shape scored below X) "
                       "or score>X (some shape scored above X)",
    ),
    "outlier": _Filter(_COMPARE, "outlier>0.9", _signed, _compare("outlier_score")),
    "latency": _Filter(_COMPARE, "latency>200ms", _seconds, _compare("latency")),
    "source": _Filter(_EQUAL, "source:camera-1", _text, _equal("source")),
    "since": _Filter(_EQUAL, "since:24h", _moment, _since),
    "until": _Filter(_EQUAL, "until:2026-11-01", _moment, _until),
    "reviewed_by": _Filter(_EQUAL, "reviewed_by:alice", _text, _reviewed_by),
    "reviewed_label": _Filter(_EQUAL, "reviewed_label:car", _text, _reviewed_label),
    "filename": _Filter(_EQUAL, "filename:*.png", _text, _filename),
}
_BARE_WORD = _Filter(("",), "frame_12", _text, _contains)


def query_filter(*, deployment, text: str, now: datetime | None = None, user=None) -> Q:
    """The Q that keeps the assets of `deployment` matching `text` (apply it to the deployment's assets).

    Label names are resolved against the deployment's label map; relative times count back from `now`;
    reviewed_by:me means `user`.
    """
    context = _Context(deployment, now or timezone.now(), user)
    condition = Q()
    for term in parse_query(text):
        spec = _FILTERS[term.key] if term.key else _BARE_WORD
        try:
            match = spec.build(term.operator, _convert(term, spec), context)
        except _BadValue as bad:
            raise _value_error(term, bad) from None
        condition &= ~match if term.negated else match
    return condition
