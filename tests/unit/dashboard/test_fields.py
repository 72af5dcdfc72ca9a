"""dashboard.fields: every refusal names its field and its rule, and a request is refused once with all of them."""
import uuid

import pytest

from dashboard.errors import ValidationFailed
from dashboard.fields import MISSING, Fields, integer_param, is_finite_number, uuid_field


def test_fields_collect_every_refusal_then_check_raises_them_all():
    fields = Fields()
    assert fields.text("", "name", max_length=5, required=True) == ""
    assert fields.text("  ab ", "label", max_length=5) == "ab"
    assert fields.number(-1, "latency", low=0, required=True, unit="seconds", default=0.0) == 0.0
    assert fields.number(None, "shadow_latency", required=True, unit="seconds") is None
    assert fields.integer(0, "width", low=1, high=10, required=True, default=0) == 0
    assert fields.boolean("yes", "active") is None
    assert fields.tags(["a", " a", "b", ""], "tags") is None
    assert fields.uuid("nope", "deployment_id") is None
    with pytest.raises(ValidationFailed) as refused:
        fields.check()
    messages = {error.field: error.message for error in refused.value.errors}
    assert messages == {
        "name": "must be a non-empty string",
        "latency": "must be a finite number of seconds >= 0, not -1",
        "shadow_latency": "is required (seconds)",
        "width": "must be an integer from 1 to 10, not 0",
        "active": "must be true or false, not 'yes'",
        "tags[3]": "must be a non-empty string of at most 100 characters",
        "deployment_id": "must be a UUID",
    }


def test_clean_values_pass_and_absent_optional_ones_take_their_default():
    fields = Fields()
    assert fields.number(0.5, "min_threshold", low=0, high=1) == 0.5
    assert fields.integer(MISSING, "limit", low=1, high=9, default=3) == 3
    assert fields.tags(["night", "night ", "rain"], "tags") == ["night", "rain"]
    assert fields.boolean(False, "active") is False
    fields.check()


def test_one_value_helpers_raise_at_once():
    value = uuid.uuid4()
    assert uuid_field(str(value), "id") == value
    assert integer_param("7", "limit", low=1, high=10, default=3) == 7
    assert integer_param(None, "limit", low=1, high=10, default=3) == 3
    with pytest.raises(ValidationFailed) as refused:
        integer_param("x", "offset", low=0, high=10, default=0)
    assert refused.value.errors[0].field == "offset"


@pytest.mark.parametrize("value, finite", [(1, True), (1.5, True), (float("nan"), False), (float("inf"), False),
                                           (True, False), ("1", False), (10**400, False)])
def test_finite_numbers(value, finite):
    assert is_finite_number(value) is finite
