"""What one sync did: rows per entity, API calls, time; and a one-line summary for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SKIPPED_KEPT = 50  # skipped rows remembered in the summary (all of them are logged)


@dataclass
class SyncSummary:
    realm: str
    mode: str = "none"                                      # "full", "incremental", "resumed", "mixed", "none"
    written: dict[str, int] = field(default_factory=dict)   # rows inserted or updated, per entity
    deleted: dict[str, int] = field(default_factory=dict)   # rows marked deleted, per entity
    skipped: dict[str, int] = field(default_factory=dict)   # bad rows logged and skipped, per entity
    skipped_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, Id, reason)
    api_calls: int = 0
    retries: int = 0
    duration: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, entity: str, *, written: int = 0, deleted: int = 0) -> None:
        self.written[entity] = self.written.get(entity, 0) + written
        self.deleted[entity] = self.deleted.get(entity, 0) + deleted

    def skip(self, entity: str, ident: str, reason: str) -> None:
        self.skipped[entity] = self.skipped.get(entity, 0) + 1
        if len(self.skipped_rows) < SKIPPED_KEPT:
            self.skipped_rows.append((entity, ident, reason))

    def counts(self) -> dict[str, Any]:
        return {"written": dict(self.written), "deleted": dict(self.deleted), "skipped": dict(self.skipped)}

    def line(self) -> str:
        parts = [f"{n} {entity}" for entity, n in self.written.items() if n]
        text = f"realm {self.realm}: {self.mode} sync, " + (", ".join(parts) if parts else "no changes")
        deleted = sum(self.deleted.values())
        skipped = sum(self.skipped.values())
        if deleted:
            text += f", {deleted} deleted"
        if skipped:
            text += f", {skipped} skipped (see log)"
        text += f"; {self.api_calls} API call{'s' if self.api_calls != 1 else ''}"
        if self.retries:
            text += f" ({self.retries} retried)"
        text += f" in {self.duration:.1f} s"
        if self.errors:
            text += f"; FAILED: {'; '.join(self.errors)}"
        return text
