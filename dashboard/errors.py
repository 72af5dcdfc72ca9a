"""Errors the domain raises and the API answers as JSON: a message plus the fields at fault."""
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


class ApiError(Exception):
    status = 400

    def __init__(self, message: str, errors: list[FieldError] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.extra = extra

    def as_dict(self) -> dict:
        return {"message": self.message, "errors": [error.as_dict() for error in self.errors], **self.extra}

    def for_form(self) -> list[dict]:
        """The refusals a page lists beside its form: each field and rule, after the message when it says more."""
        items = [error.as_dict() for error in self.errors]
        if not items or not isinstance(self, ValidationFailed):
            items.insert(0, {"field": "", "message": self.message})
        return items


class ValidationFailed(ApiError):
    status = 400

    @classmethod
    def from_errors(cls, errors: list[FieldError]) -> "ValidationFailed":
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return cls(f"{first.field}: {first.message}{more}", errors)


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class ServiceUnavailable(ApiError):
    """Something Loupe depends on (the database) is down for now: nothing was done, the request may be sent again."""

    status = 503
