"""The entry point of the client: one API token acting in one organization of one Loupe server."""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from loupe_sdk.dataset import Dataset
from loupe_sdk.deployment import Deployment
from loupe_sdk.exceptions import LoupeError, NotFoundError, UnauthorizedError
from loupe_sdk.http import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    DEFAULT_SERVING_TIMEOUT,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
)
from loupe_sdk.model import Model
from loupe_sdk.project import Project
from loupe_sdk.tag import TagsGiven, tag_names
from loupe_sdk.types.enums import InferenceType

DEFAULT_HOST = "http://127.0.0.1:8000"


class Client:
    """Connects to Loupe and picks the organization that later calls act in.

    `host` defaults to $LOUPE_HOST, then to a local server; `api_token` to $LOUPE_API_TOKEN. The organization
    is chosen by name or id; with neither, the token's user must belong to exactly one.
    `timeout` bounds platform and monitoring calls, `serving_timeout` predictions, which wait for a model to run;
    either is seconds or a (connect, read) pair.
    """

    def __init__(
        self,
        api_token: Optional[str] = None,
        organization_name: Optional[str] = None,
        organization_id: Optional[Union[str, uuid.UUID]] = None,
        host: Optional[str] = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        serving_timeout: Timeout = DEFAULT_SERVING_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        token = api_token or os.environ.get("LOUPE_API_TOKEN")
        if not token:
            raise UnauthorizedError("no API token: pass api_token or set LOUPE_API_TOKEN")
        self._transport = Transport(
            host or os.environ.get("LOUPE_HOST") or DEFAULT_HOST,
            token,
            timeout=timeout,
            serving_timeout=serving_timeout,
            max_retries=max_retries,
            backoff=backoff,
        )
        memberships = self._transport.platform("GET", "/api/organizations").get("items") or []
        organization = _pick_organization(memberships, organization_name, organization_id)
        self.organization_id = str(organization["id"])
        self.organization_name: str = organization.get("name", "")
        self.role: Optional[str] = organization.get("role")

    @property
    def host(self) -> str:
        return self._transport.host

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(host={self.host!r}, organization_name={self.organization_name!r})"

    def get_deployment(self, name: str) -> Deployment:
        items = self._list("/api/deployments", name=name)
        if not items:
            raise NotFoundError(f"no deployment named {name!r} in organization {self.organization_name!r}")
        return Deployment(self._transport, items[0])

    def get_deployment_by_id(self, id: Union[str, uuid.UUID]) -> Deployment:
        return Deployment(self._transport, self._transport.platform("GET", f"/api/deployment/{id}"))

    def list_deployments(self) -> List[Deployment]:
        return [Deployment(self._transport, info) for info in self._list("/api/deployments")]

    def create_deployment(
        self,
        name: str,
        type: Union[InferenceType, str],
        labels: Union[Mapping[int, str], Sequence[str]],
        min_threshold: Optional[float] = None,
        tags: TagsGiven = None,
        organization_id: Optional[Union[str, uuid.UUID]] = None,
    ) -> Deployment:
        """Create a deployment in this client's organization (or the one given) and return it.

        `labels` maps class ids to names, or lists names, which then take the ids 1, 2, ...: the ids the
        prediction formats' `detection_classes` refer to.
        """
        body: Dict[str, Any] = {
            "name": name,
            "type": type.value if isinstance(type, InferenceType) else str(type).strip().upper(),
            "labels": _label_map(labels),
            "organization_id": str(organization_id) if organization_id is not None else self.organization_id,
        }
        if min_threshold is not None:
            body["min_threshold"] = min_threshold
        if tags is not None:
            body["tags"] = tag_names(tags)
        return Deployment(self._transport, self._transport.platform("POST", "/api/deployments", json=body))

    def create_project(self, name: str) -> Project:
        """Create a project, where continuous training runs its experiments."""
        info = self._transport.platform(
            "POST", "/api/projects", json={"name": name, "organization_id": self.organization_id}
        )
        return Project(info)

    def get_project(self, name: str) -> Project:
        items = self._list("/api/projects", name=name)
        if not items:
            raise NotFoundError(f"no project named {name!r} in organization {self.organization_name!r}")
        return Project(items[0])

    def get_model(self, name: str) -> Model:
        items = self._list("/api/models", name=name)
        if not items:
            raise NotFoundError(f"no model named {name!r} in organization {self.organization_name!r}")
        return Model(items[0])

    def get_dataset(self, name: str) -> Dataset:
        items = self._list("/api/datasets", name=name)
        if not items:
            raise NotFoundError(f"no dataset named {name!r} in organization {self.organization_name!r}")
        return Dataset(self._transport, items[0])

    def list_datasets(self) -> List[Dataset]:
        return [Dataset(self._transport, info) for info in self._list("/api/datasets")]

    def _list(self, path: str, **filters: Any) -> List[Dict[str, Any]]:
        answer = self._transport.platform("GET", path, params={**filters, "organization_id": self.organization_id})
        return list(answer.get("items") or [])


def _label_map(labels: Union[Mapping[int, str], Sequence[str]]) -> Dict[str, str]:
    """Class ids as JSON keys ({"1": "car"}), the form the server stores and answers label maps in."""
    if isinstance(labels, str):
        raise TypeError("labels are a list of names or a dict of class id to name, not one string")
    pairs = labels.items() if isinstance(labels, Mapping) else enumerate(labels, start=1)
    label_map: Dict[str, str] = {}
    for class_id, label in pairs:
        if isinstance(class_id, bool) or not isinstance(class_id, (int, str)) or not str(class_id).isdigit():
            raise ValueError(f"a class id is a non-negative integer, not {class_id!r}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"class {class_id} needs a name, not {label!r}")
        label_map[str(int(class_id))] = label
    return label_map


def _pick_organization(
    memberships: List[Dict[str, Any]],
    name: Optional[str],
    organization_id: Optional[Union[str, uuid.UUID]],
) -> Dict[str, Any]:
    if organization_id is not None:
        wanted = str(organization_id).lower()
        found = [item for item in memberships if str(item.get("id")).lower() == wanted]
        if name is not None:
            found = [item for item in found if item.get("name") == name]
        described = f"id {organization_id}" + (f" and name {name!r}" if name is not None else "")
    elif name is not None:
        found = [item for item in memberships if item.get("name") == name]
        described = f"name {name!r}"
    else:
        if len(memberships) == 1:
            return memberships[0]
        if not memberships:
            raise NotFoundError("this API token's user belongs to no organization")
        names = ", ".join(repr(item.get("name")) for item in memberships)
        raise LoupeError(f"this API token's user belongs to several organizations ({names}): pass organization_name")
    if not found:
        raise NotFoundError(f"this API token's user is not a member of an organization with {described}")
    return found[0]
