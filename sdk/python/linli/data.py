"""The plugin-private document store (`data` capability), as collections of JSON documents."""
import json as _json
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ._pages import all_pages
from .errors import LinliError, call, code_name, needs

_wit = needs("data", "data")

T = TypeVar("T")

UPDATE_ATTEMPTS = 16
#: Page size of `list_all` and `query_all`.
PAGE = 200


@dataclass
class Versioned(Generic[T]):
    key: str
    value: T
    version: int


@dataclass
class Page(Generic[T]):
    items: list[Versioned[T]]
    next_cursor: str | None


class Collection(Generic[T]):
    def __init__(self, name: str):
        self.name = name

    def get(self, key: str) -> Versioned[T] | None:
        doc = call(_wit.get, self.name, key)
        return self._decode(doc) if doc is not None else None

    def put(self, key: str, value: T) -> int:
        """Write unconditionally; the new version."""
        return call(_wit.put, self.name, key, _json.dumps(value, ensure_ascii=False), None)

    def insert(self, key: str, value: T) -> int:
        """Write only if `key` does not exist yet (otherwise `conflict`)."""
        return call(_wit.put, self.name, key, _json.dumps(value, ensure_ascii=False), 0)

    def replace(self, key: str, value: T, version: int) -> int:
        """Write only if the stored version is still `version` (otherwise `conflict`)."""
        return call(_wit.put, self.name, key, _json.dumps(value, ensure_ascii=False), version)

    def delete(self, key: str) -> bool:
        return call(_wit.delete, self.name, key, None)

    def update(self, key: str, change: Callable[[T], T | None], initial: Callable[[], T]) -> Versioned[T]:
        """Read, change and write back, retrying when another request wrote in between; a missing document starts as `initial()`."""
        return self._swap(key, change, initial)

    def modify(self, key: str, change: Callable[[T], T | None]) -> Versioned[T]:
        """As `update`, but a missing document is `not-found`."""

        def missing():
            raise LinliError.not_found(f"`{self.name}/{key}` does not exist")

        return self._swap(key, change, missing)

    def _swap(self, key, change, missing) -> Versioned[T]:
        from componentize_py_types import Err

        for _ in range(UPDATE_ATTEMPTS):
            current = self.get(key)
            value = current.value if current is not None else missing()
            changed = change(value)
            value = value if changed is None else changed
            try:
                version = _wit.put(self.name, key, _json.dumps(value, ensure_ascii=False), current.version if current is not None else 0)
                return Versioned(key, value, version)
            except Err as e:
                if code_name(e.value.code) == "conflict":
                    continue
                raise LinliError(code_name(e.value.code), e.value.message) from None
        raise LinliError.conflict(f"`{self.name}/{key}` kept changing; gave up after {UPDATE_ATTEMPTS} attempts")

    def list(self, prefix: str, cursor: str | None, limit: int) -> Page[T]:
        """Documents whose key starts with `prefix`, in key order, at most `limit` (1..=1000)."""
        return self._decode_page(call(_wit.list, self.name, prefix, cursor, limit))

    def query(self, field: str, value: Any, cursor: str | None, limit: int) -> Page[T]:
        """Documents whose indexed top-level `field` equals `value` (declared in `[data.indexes]`)."""
        return self._decode_page(call(_wit.query, self.name, field, _json.dumps(value, ensure_ascii=False), cursor, limit))

    def list_all(self, prefix: str) -> list[Versioned[T]]:
        return all_pages(lambda cursor: self.list(prefix, cursor, PAGE))

    def query_all(self, field: str, value: Any) -> list[Versioned[T]]:
        return all_pages(lambda cursor: self.query(field, value, cursor, PAGE))

    def _decode(self, doc) -> Versioned[T]:
        try:
            return Versioned(doc.key, _json.loads(doc.value), doc.version)
        except ValueError as e:
            raise LinliError.internal(f"stored document `{doc.key}` is not JSON: {e}") from None

    def _decode_page(self, page) -> Page[T]:
        return Page([self._decode(doc) for doc in page.items], page.next_cursor)
