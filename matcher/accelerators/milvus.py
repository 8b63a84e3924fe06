"""``"milvus"``: candidates from a Milvus collection, re-scored exactly by the index.

The same :mod:`pymilvus` client speaks to a Milvus cluster (``http://host:19530``) and to
milvus-lite, which serves a local ``.db`` file path in process (tests, single-node sites).
The collection mirrors the index: primary key the template id, one 128-d float vector,
inner-product metric. The index keeps its float rows, so every candidate is re-scored
exactly from them and per-subject best scores and the calibrated decisions do not depend on
Milvus's scores; a template id the index does not hold (a stale or erased row still in the
collection) maps to no row and is never returned.

What is saved (``state``) is not the vectors but the collection's identity and the last sync:
a small JSON document (collection, index type, rows, highest template id, time). On reopen
the collection is checked against the restored rows (it exists, holds as many rows, and its
highest template id is there); any difference and it is rebuilt from them, which is also what
:meth:`retrained` (``GalleryIndex.rebuild``, ``wajah index rebuild``) does: drop the
collection, create it anew and insert every row.

A new index (``create``) contacts nothing until its first write, which replaces whatever
collection of that name is there (a new index starts empty; the database is the source of
truth and a rebuild refills it). The accelerator is its collection's one writer: adds are
inserts (Milvus does not enforce unique primary keys on insert, so a repeated id would be a
second row; candidates are de-duplicated all the same) and removals deletes by primary key.
Several replicas sharing one Milvus give each its own collection name (see deploy/README.md).

Thread safety: the index serialises writes and runs searches under its read lock; one
:class:`pymilvus.MilvusClient` per URI is shared by every accelerator in the process (gRPC
channels are safe to share; milvus-lite allows one opener of a file per process).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, ClassVar, Self

import numpy as np

from wajah.biometric.templates import TEMPLATE_DIM
from wajah.matcher.accelerators.base import Accelerator, AcceleratorState, GalleryRows
from wajah.matcher.config import MILVUS_INSERT_BATCH, MILVUS_MAX_TOPK, IndexConfig, IndexKind
from wajah.matcher.errors import VectorBackendUnavailable
from wajah.matcher.storage import TemplateRows

logger = logging.getLogger(__name__)

ID_FIELD = "template_id"
VECTOR_FIELD = "vector"
STATE_FORMAT = 1

_clients: dict[str, Any] = {}  # uri -> MilvusClient, shared in the process
_clients_lock = threading.Lock()


class MilvusUnavailable(VectorBackendUnavailable):
    """The Milvus URI is unset or the server did not answer."""


def milvus_client(uri: str) -> Any:
    """The process's client for ``uri`` (opened once; milvus-lite starts on first use)."""
    if not uri:
        raise MilvusUnavailable("index kind 'milvus' needs milvus_uri (WAJAH_MILVUS_URI)")
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            from pymilvus import MilvusClient  # imported here: only this kind needs it

            try:
                client = MilvusClient(uri=uri)
            except Exception as error:  # pymilvus raises MilvusException and grpc errors
                raise MilvusUnavailable(f"cannot reach Milvus: {type(error).__name__}") from error
            _clients[uri] = client
        return client


def close_clients() -> None:
    """Close every shared client (tests, shutdown)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


class MilvusAccelerator(Accelerator):
    """A Milvus collection proposing candidates by template id; see the module docstring."""

    kind: ClassVar[IndexKind] = "milvus"

    def __init__(self, config: IndexConfig, *, adopted: bool) -> None:
        self._uri = config.milvus_uri
        self._collection = config.milvus_collection
        self._index_type = config.milvus_index_type
        self._nlist = config.milvus_nlist
        # False for a new index: its first write replaces any collection of that name.
        self._adopted = adopted
        self._count = 0  # rows this accelerator has put in (or verified in) the collection
        self._last_template_id = -1
        self._pending_deletes: set[int] = set()  # erased template ids Milvus has not deleted

    @classmethod
    def create(cls, config: IndexConfig, model_tag: str) -> Self:
        return cls(config, adopted=False)

    @classmethod
    def from_state(
        cls, config: IndexConfig, model_tag: str, state: AcceleratorState, gallery: GalleryRows
    ) -> Self:
        accelerator = cls(config, adopted=True)
        saved = _parse_state(state.blob)
        if saved is not None and accelerator._in_step(saved, gallery):
            accelerator._count = int(gallery.template_ids.shape[0])
            accelerator._last_template_id = _highest(gallery.template_ids)
            return accelerator
        return accelerator.retrained(gallery)

    def _in_step(self, saved: dict[str, Any], gallery: GalleryRows) -> bool:
        """Whether the collection still mirrors ``gallery``: the same identity, as many rows,
        and the gallery's highest template id held (a cheap check, not a full comparison)."""
        if saved.get("collection") != self._collection:
            return False
        if saved.get("index_type") != self._index_type:
            return False
        client = self._client()
        if not client.has_collection(self._collection):
            return False
        rows = int(client.get_collection_stats(self._collection)["row_count"])
        count = int(gallery.template_ids.shape[0])
        if rows != count or int(saved.get("rows", -1)) != count:
            return False
        if count == 0:
            return True
        highest = _highest(gallery.template_ids)
        client.load_collection(self._collection)  # a reopened collection starts released
        found = client.get(self._collection, ids=[highest], output_fields=[ID_FIELD])
        return len(found) == 1

    def state(self, template_of_row: np.ndarray) -> AcceleratorState:
        document = {
            "format": STATE_FORMAT,
            "collection": self._collection,
            "index_type": self._index_type,
            # -1 while erasures have not reached Milvus: the next open rebuilds the collection
            "rows": -1 if self._pending_deletes else int(template_of_row.shape[0]),
            "last_template_id": _highest(template_of_row),
            "synced_at": time.time(),
        }
        blob = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8).copy()
        return AcceleratorState(blob=blob)

    @property
    def searching(self) -> bool:
        return True

    @property
    def approximate(self) -> bool:
        return self._index_type != "FLAT"

    def _client(self) -> Any:
        return milvus_client(self._uri)

    def _recreate(self) -> None:
        """Drop the collection (if any) and create it empty with its vector index."""
        from pymilvus import DataType, MilvusClient

        client = self._client()
        if client.has_collection(self._collection):
            client.drop_collection(self._collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=TEMPLATE_DIM)
        index_params = client.prepare_index_params()
        params: dict[str, int] = {}
        if self._index_type == "IVF_FLAT":
            params = {"nlist": self._nlist}
        elif self._index_type == "HNSW":
            params = {"M": 32, "efConstruction": 80}  # as HNSW_M / HNSW_EF_CONSTRUCTION
        index_params.add_index(
            field_name=VECTOR_FIELD, index_type=self._index_type, metric_type="IP", params=params
        )
        client.create_collection(self._collection, schema=schema, index_params=index_params)
        self._adopted = True
        self._count = 0
        self._last_template_id = -1
        self._pending_deletes.clear()  # a new collection holds none of them

    def add(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        if not self._adopted:
            self._recreate()
        self._retry_deletes()
        self._upsert(template_ids, vectors)

    def _upsert(self, template_ids: np.ndarray, vectors: np.ndarray) -> None:
        client = self._client()
        for start in range(0, template_ids.shape[0], MILVUS_INSERT_BATCH):
            ids = template_ids[start : start + MILVUS_INSERT_BATCH].tolist()
            block = vectors[start : start + MILVUS_INSERT_BATCH]
            rows = [{ID_FIELD: i, VECTOR_FIELD: v} for i, v in zip(ids, block, strict=True)]
            client.insert(self._collection, rows)
        self._count += int(template_ids.shape[0])
        if template_ids.size:
            self._last_template_id = max(self._last_template_id, _highest(template_ids))
        if template_ids.shape[0] >= MILVUS_INSERT_BATCH:
            # A bulk load (rebuild, replay) is sealed into indexed segments at once: milvus-lite
            # searches unsealed rows far slower (20k rows: ~1 s a query unsealed, ~16-35 ms
            # sealed, 2 loaded cores). Single enrollments are left to Milvus's own flushing.
            client.flush(self._collection)

    def remove(self, rows: np.ndarray, template_ids: np.ndarray) -> None:
        """Erasure reaches the collection: its rows are deleted by primary key. When Milvus
        refuses, the index still removes the templates (so they are never answered: an id
        it does not hold maps to no row); the ids wait in ``_pending_deletes``, retried at
        the next write, and the saved state asks for a rebuild of the collection on reopen
        until they are gone."""
        if not self._adopted or template_ids.size == 0:
            return
        self._pending_deletes.update(int(i) for i in template_ids.tolist())
        self._count -= int(template_ids.shape[0])
        self._retry_deletes()

    def _retry_deletes(self) -> None:
        if not self._pending_deletes:
            return
        waiting = sorted(self._pending_deletes)
        try:
            self._client().delete(self._collection, ids=waiting)
        except Exception as error:  # pymilvus and gRPC errors alike
            logger.warning(
                "milvus_delete_deferred",
                extra={"templates": len(waiting), "error": type(error).__name__},
            )
            return
        self._pending_deletes.difference_update(waiting)

    def needs_retrain(self, count: int) -> bool:
        """Milvus maintains its own index (per segment, at flush and compaction)."""
        return False

    def retrained(self, gallery: GalleryRows) -> Self:
        """The collection dropped, created anew and refilled from the index's rows."""
        self._recreate()
        self._upsert(gallery.template_ids, gallery.vectors())
        return self

    def candidates(
        self, queries: np.ndarray, depth: int, config: IndexConfig, id_rows: TemplateRows
    ) -> np.ndarray:
        found = np.full((queries.shape[0], depth), -1, dtype=np.int64)
        if not self._adopted or self._count <= 0:
            return found
        limit = min(depth, MILVUS_MAX_TOPK)
        if config.milvus_index_type == "IVF_FLAT":
            params: dict[str, int] = {"nprobe": min(config.milvus_nprobe, config.milvus_nlist)}
        elif config.milvus_index_type == "HNSW":
            params = {"ef": max(config.milvus_ef, limit)}
        else:
            params = {}
        try:
            answers = self._client().search(
                self._collection,
                data=list(queries),
                limit=limit,
                anns_field=VECTOR_FIELD,
                output_fields=[ID_FIELD],
                search_params={"metric_type": "IP", "params": params},
            )
        except MilvusUnavailable:
            raise
        except Exception as error:  # pymilvus and gRPC errors: the index searches exactly
            raise MilvusUnavailable(f"Milvus search failed: {type(error).__name__}") from error
        for query, hits in enumerate(answers):
            ids = [int(hit["id"] if "id" in hit else hit[ID_FIELD]) for hit in hits]
            found[query, : len(ids)] = ids
        rows = id_rows.rows(found)  # unknown (stale, erased) ids and padding map to -1
        for query in range(rows.shape[0]):  # a row proposed twice is re-scored once
            _, first = np.unique(rows[query], return_index=True)
            if first.shape[0] < rows.shape[1]:
                repeated = np.ones(rows.shape[1], dtype=bool)
                repeated[first] = False
                rows[query, repeated] = -1
        return rows

    def memory_bytes(self) -> int:
        """Nothing in this process: the vectors and their index live in Milvus (milvus-lite
        in process is measured by ``benchmarks.milvus_1m``, not estimated here)."""
        return 0


def _highest(template_ids: np.ndarray) -> int:
    return int(template_ids.max()) if template_ids.size else -1


def _parse_state(blob: np.ndarray) -> dict[str, Any] | None:
    if not blob.size:
        return None
    try:
        document = json.loads(blob.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        return None
    return document
