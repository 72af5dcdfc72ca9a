"""Tags: names attached to a deployment (and to the data it creates), and the forms callers give them in."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Union


class Tag:
    """One tag; only its name matters on the wire."""

    def __init__(self, info: Union[Dict[str, Any], str]) -> None:
        info = {"name": info} if isinstance(info, str) else info
        self.name: str = str(info["name"])
        self.id: Optional[str] = str(info["id"]) if info.get("id") is not None else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tag) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Tag(name={self.name!r})"


TagsGiven = Union[str, Tag, Iterable[Union[str, Tag]], None]


def tag_names(tags: TagsGiven) -> List[str]:
    """The names of tags given as one name, one Tag, or a list mixing both; a lone string is one tag, not letters."""
    if tags is None:
        return []
    if isinstance(tags, (str, Tag)):
        tags = [tags]
    names = []
    for tag in tags:
        if isinstance(tag, Tag):
            names.append(tag.name)
        elif isinstance(tag, str):
            names.append(tag)
        else:
            raise TypeError(f"a tag is a name or a Tag, not {type(tag).__name__}")
    return names
