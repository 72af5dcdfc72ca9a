"""Parsing of input fields, each refusal naming the field and its rule: ids, numbers, texts, flags and tags.

`Fields` collects every refusal of a request so that it is answered once with all of them; the one-value
helpers below it raise at once, for query parameters and single-field bodies.
"""
import math
import uuid

from dashboard.errors import FieldError, ValidationFailed

MISSING = object()


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


class Fields:
    """Parses values one field at a time; each method returns the clean value, or its default after noting the
    refusal. `check()` raises ValidationFailed with every refusal noted."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def refuse(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed.from_errors(self.errors)

    def _absent(self, value, field: str, required: bool, what: str) -> bool:
        if value is None or value is MISSING:
            if required:
                self.refuse(field, f"is required{what}")
            return True
        return False

    def uuid(self, value, field: str, *, required: bool = True) -> uuid.UUID | None:
        if self._absent(value, field, required, ""):
            return None
        try:
            return uuid.UUID(str(value))
        except ValueError:
            self.refuse(field, "must be a UUID")
            return None

    def integer(self, value, field: str, *, low: int, high: int, default: int | None = None,
                required: bool = False, from_text: bool = False) -> int | None:
        """An integer in [low, high]; `from_text` also takes its decimal text (query parameters)."""
        if value == "" and from_text:
            value = None
        if self._absent(value, field, required, ""):
            return default
        if from_text and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.refuse(field, f"must be an integer from {low} to {high}, not {value!r}")
            return default
        return value

    def number(self, value, field: str, *, low: float | None = None, high: float | None = None,
               default: float | None = None, required: bool = False, unit: str = "") -> float | None:
        """A finite number, within [low, high] where given."""
        if self._absent(value, field, required, f" ({unit})" if unit else ""):
            return default
        bounds = " ".join(part for part in (
            f">= {low}" if low is not None and high is None else "",
            f"in [{low}, {high}]" if low is not None and high is not None else "",
            f"<= {high}" if high is not None and low is None else "",
        ) if part)
        what = "a finite number" + (f" of {unit}" if unit else "") + (f" {bounds}" if bounds else "")
        if not is_finite_number(value) or (low is not None and value < low) or (high is not None and value > high):
            self.refuse(field, f"must be {what}, not {value!r}")
            return default
        return float(value)

    def text(self, value, field: str, *, max_length: int, required: bool = False, default: str = "") -> str:
        """A non-empty string of at most `max_length` characters, stripped of surrounding white space."""
        if self._absent(value, field, required, ""):
            return default
        if not isinstance(value, str) or not value.strip():
            self.refuse(field, "must be a non-empty string")
            return default
        if len(value) > max_length:
            self.refuse(field, f"must be at most {max_length} characters")
            return default
        return value.strip()

    def boolean(self, value, field: str, *, required: bool = True, default: bool | None = None) -> bool | None:
        if self._absent(value, field, required, " (true or false)"):
            return default
        if not isinstance(value, bool):
            self.refuse(field, f"must be true or false, not {value!r}")
            return default
        return value

    def tags(self, value, field: str, *, max_count: int = 50, max_length: int = 100,
             required: bool = False) -> list[str] | None:
        """A list of distinct non-empty strings (order kept, white space stripped); None when not given."""
        if self._absent(value, field, required, " (a list of strings)"):
            return None
        if not isinstance(value, list) or len(value) > max_count:
            self.refuse(field, f"must be a list of at most {max_count} strings")
            return None
        before = len(self.errors)
        for index, tag in enumerate(value):
            if not isinstance(tag, str) or not tag.strip() or len(tag) > max_length:
                self.refuse(f"{field}[{index}]", f"must be a non-empty string of at most {max_length} characters")
        if len(self.errors) > before:
            return None
        return list(dict.fromkeys(tag.strip() for tag in value))


def uuid_field(value, field: str) -> uuid.UUID:
    """`value` as a UUID, or a 400 naming the field."""
    fields = Fields()
    parsed = fields.uuid(value, field)
    fields.check()
    return parsed


def integer_param(value, field: str, *, low: int, high: int, default: int) -> int:
    """A query parameter's integer in [low, high], `default` when absent, or a 400 naming the parameter."""
    fields = Fields()
    parsed = fields.integer(value, field, low=low, high=high, default=default, from_text=True)
    fields.check()
    return parsed
