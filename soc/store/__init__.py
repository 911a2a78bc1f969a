"""Alert stores behind one interface: SQLite (embedded default) and Elasticsearch, with a disk spool in front."""

from __future__ import annotations

from soc.core.config import StoreSettings
from soc.core.errors import StoreError
from soc.store.base import AlertQuery, AlertStore
from soc.store.spool import DiskSpool, SpooledStore


def open_store(settings: StoreSettings, base_dir: str | None = None) -> AlertStore:
    """The store named by ``settings.url`` (sqlite:///PATH or http(s)://...), without a spool."""
    url = settings.url
    if url.startswith("sqlite://"):
        from soc.store.sqlite import SqliteStore

        path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"SQLite store url needs a path: sqlite:///FILE (got {url})")
        if base_dir and not path.startswith("/"):  # a relative path in soc.yaml is relative to that file
            path = f"{base_dir}/{path}"
        return SqliteStore(path)
    if url.startswith(("http://", "https://")):
        from soc.store.elasticsearch import ElasticsearchStore

        return ElasticsearchStore(url, settings.elasticsearch)
    raise StoreError(f"unknown store url {url}: use sqlite:///FILE or http(s)://HOST:PORT")


def open_spooled_store(settings: StoreSettings, spool_dir: str, base_dir: str | None = None) -> SpooledStore:
    return SpooledStore(open_store(settings, base_dir), DiskSpool(spool_dir))


__all__ = ["AlertQuery", "AlertStore", "DiskSpool", "SpooledStore", "open_spooled_store", "open_store"]
