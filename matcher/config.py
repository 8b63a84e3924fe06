"""Index configuration and the tuning constants of the gallery index, with their sources.

Measurements quoted here were taken on the 2-core development machines (21 GB/s measured read
bandwidth, OpenBLAS 0.3.31 from numpy 2.4, faiss-cpu 1.15.1) with 1,000,000 random unit
templates; the exact-search figures are tabulated in ``matcher/storage.py`` and
``matcher/index.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

IndexKind = Literal["flat", "hnsw", "ivf", "ivfpq", "sq8"]
INDEX_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw", "ivf", "ivfpq", "sq8")

# --- Tuning constants -----------------------------------------------------------------------
# name                          value   source / reason
HNSW_M = 32  # graph degree; faiss wiki "Guidelines to choose an index": 4..64, 32 is the
#              usual middle ground between recall and memory (M * 2 * 4 bytes per vector).
HNSW_EF_CONSTRUCTION = 80  # faiss default 40; 80 buys recall at build time only.
HNSW_EF_SEARCH = 128  # faiss default 16 is too low for biometric recall; raised per call to
#                       at least the number of candidates asked for. Not a tuned optimum:
#                       no efSearch meets "p99 <= 2 ms and mate rank-1 loss <= 0.1 %" at 1M
#                       real-fit templates, so HNSW is not the large-gallery kind ("ivfpq" is).
#                       M 32, efConstruction 40 (benchmarks/results/
#                       hnsw-1m-20261126T144206Z.md): efSearch 64 p99 ~1.5 ms, loss 11 %;
#                       128 p50 ~1.9 ms, loss 5 %; 512 p50 ~5 ms, loss 0.6 %. efConstruction 80
#                       (latest-hnsw-1m.md): efSearch 128 loss 4.3 %, p99 2.1 ms.
HNSW_REBUILD_TOMBSTONE_FRACTION = 0.5  # rebuild the graph on removal once dead nodes reach
#                       half the live ones: filtered HNSW search visits dead nodes, so latency
#                       and recall degrade with their share (faiss issue #1988 discussion).
IVF_LISTS_PER_SQRT_N = 4  # faiss wiki "Guidelines to choose an index": nlist 4*sqrt(N)..16*sqrt(N).
IVF_MIN_POINTS_PER_LIST = 39  # faiss Clustering.cpp warns below 39 training points per centroid;
#                       below that many templates the "ivf" kind answers by exact search.
IVF_NPROBE = 32  # lists visited per query; recall >= 0.95 at 20k templates / 128 lists (tests).
IVFPQ_DIMS = 64  # discriminant directions kept (matcher/template_space.py). At 1M real-fit
#                 templates, 2 cores (benchmarks/results/latest-ivfpq-1m.md): 32 directions cap
#                 mate rank-1 loss near 1.2 % whatever is scanned; 48 reach 0.1 %; 64 ~0.02 %.
IVFPQ_SUBQUANTIZERS = 32  # 4-bit PQ codes: 16 bytes a template, 2 directions per sub-quantiser;
#                 16 sub-quantisers (8 bytes) lost 1.2 % of mates at the same lists scanned.
IVFPQ_COARSE_DIMS = 32  # "ivfpq" lists are clustered in the first 32 discriminant directions:
#                 as many mates kept as with all 64 (1M real-fit, 8,000 lists, coarse level: 20
#                 against 16 lost at 10 % scanned, 8 against 6 at 12.5 %), better-balanced lists,
#                 half the cost of choosing them and of training them.
KMEANS_SEED = 1234  # faiss.Kmeans's own default, fixed here so a retrain is reproducible.
IVFPQ_LISTS_PER_SQRT_N = 2  # "ivfpq" lists: 2 * sqrt(N) (2,000 at 1M, ~500 templates a list).
#                 In faiss's fast-scan a visited list costs ~0.7 us whatever its length, a code
#                 ~1.6 ns (1M, 1 core: 1,000 lists of 125 codes 0.9 ms, where one flat scan of the
#                 same 127k codes takes 0.2 ms), so fewer, longer lists win even though finer
#                 lists keep more mates per template scanned. Layouts compared on one saved 1M
#                 real-fit gallery, 20k mates, 2 cores (a comparison with no result file; its
#                 figures are in the issue 6 note): 8,000 lists / 1,000 visited p50 0.91 ms,
#                 14 mates lost; 2,000 / 400 p50 0.70 ms, 6 lost; 1,000 / 200 0.64 ms, 14 lost;
#                 dlib-like gallery 14, 9 and 21 lost. The shipped layout on three galleries:
#                 benchmarks/results/latest-ivfpq-1m.md.
IVFPQ_RETRAIN_GROWTH = 2  # automatic "ivfpq" lists are retrained once 2 * sqrt(N) reaches this
#                 many times the lists held (the gallery has grown 4x since they were trained).
IVFPQ_PROBE_FRACTION = 0.25  # lists visited per query as a share of nlist when ivfpq_nprobe
#                 is None (500 of 2,000 at 1M). See benchmarks/results/latest-ivfpq-1m.md for
#                 the sweep of shares on three galleries.
IVFPQ_QUERY_SPLIT = 2  # an "ivfpq" query scans its lists as this many part-queries, so faiss's
#                 OpenMP threads share one query's lists (it parallelises over queries only):
#                 1M, 400 of 2,000 lists, 2 cores: 0.88 ms whole, 0.54 ms split.
IVFPQ_TRAINING_PER_LIST = 64  # templates per list used to train lists and codebooks (a sample;
#                 every template is still added): 128k at 2,000 lists.
RERANK_CANDIDATES = 100  # candidates of an approximate kind re-scored exactly from the stored
#                       float vectors before the top k are kept ("ivfpq": this many from each
#                       part-query, so up to 2x; see IvfPqAccelerator.search).
SQ8_VALUE_RANGE = (-1.0, 1.0)  # every component of a unit vector lies in [-1, 1]: a fixed range
#                       needs no training data and never clips. Step 2/255; score error std
#                       ~0.0023 for a unit query (uniform quantisation error, step/sqrt(12)).
EXACT_BATCH_MIN_QUERIES = 3  # measured at 1M: numpy sgemv 27.6 ms per query; faiss knn with BLAS
#                       77 ms for 3 queries, 80 ms for 4, 182 ms for 64 -> BLAS from 3 queries.
IDENTIFY_DEPTH_FACTOR = 4  # first depth of templates searched per subject asked for; doubled
#                       until k distinct subjects are found (a subject rarely has > 4 samples).
UNIT_NORM_TOLERANCE = 1e-3  # |norm - 1| allowed for a template; float32 normalisation error is
#                       ~1e-7, so anything beyond this was not normalised.
DICT_BYTES_PER_ENTRY = 106  # measured with tracemalloc: a dict of 1M int -> int entries.
DENSE_ID_SLACK = 8  # the template id -> row map stays a dense array (8 bytes per id up to the
#                 largest) while the largest id is below 8x the templates held; a dict beyond.


@dataclass(frozen=True)
class IndexConfig:
    """How a :class:`~wajah.matcher.index.GalleryIndex` is built and searched.

    kind:
        ``"flat"`` exact search on a float32 matrix (512 bytes a template);
        ``"hnsw"`` FAISS HNSW graph over the float vectors (about 2x the memory of flat; removal
        leaves tombstones until a rebuild);
        ``"ivf"`` FAISS inverted lists (IndexIVFFlat), trained on the gallery once it holds
        ``IVF_MIN_POINTS_PER_LIST * nlist`` templates, exact search before that;
        ``"ivfpq"`` inverted lists of 16-byte PQ codes in the discriminant space of the
        model's templates (``matcher/template_space.py``), trained like "ivf" (with
        ``2 * sqrt(N)`` lists, retrained as the gallery grows 4x); the approximate kind for
        large galleries (1M: p50 ~0.8-1.0 ms, under 0.1 % of the mates exact search finds
        lost);
        keeps the float vectors for re-scoring, so it needs ~540 bytes a template;
        ``"sq8"`` exhaustive search over 8-bit scalar-quantised codes (128 bytes a template,
        10M templates in ~1.3 GB of codes plus ids), no float copy is kept.
    hnsw_m, hnsw_ef_construction: graph structure (fixed once built).
    hnsw_ef_search: HNSW search breadth (runtime; raised to the number of candidates).
    ivf_nlist: number of inverted lists; ``None`` = ``4 * sqrt(N)`` ("ivf") or ``2 * sqrt(N)``
        ("ivfpq") at training time.
    ivf_nprobe: lists visited per query (runtime), kind "ivf".
    ivfpq_nprobe: lists visited per query (runtime), kind "ivfpq"; ``None`` =
        ``IVFPQ_PROBE_FRACTION`` of the lists.
    rerank_candidates: for "hnsw", "ivf" and "ivfpq", how many candidates are fetched and re-scored
        exactly from the stored float vectors (at least k are always fetched; "ivfpq" fetches
        this many from each of its part-queries).

    Structural fields (kind, hnsw_m, hnsw_ef_construction, ivf_nlist; nlist serves "ivfpq"
    too) must match a saved index;
    the runtime fields may change between runs.
    """

    kind: IndexKind = "flat"
    hnsw_m: int = HNSW_M
    hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION
    hnsw_ef_search: int = HNSW_EF_SEARCH
    ivf_nlist: int | None = None
    ivf_nprobe: int = IVF_NPROBE
    ivfpq_nprobe: int | None = None
    rerank_candidates: int = RERANK_CANDIDATES

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; expected one of {INDEX_KINDS}")
        for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nprobe"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.ivfpq_nprobe is not None and self.ivfpq_nprobe < 1:
            raise ValueError("ivfpq_nprobe must be >= 1 or None (automatic)")
        if self.ivf_nlist is not None and self.ivf_nlist < 1:
            raise ValueError("ivf_nlist must be >= 1 or None (automatic)")
        if self.rerank_candidates < 0:
            raise ValueError("rerank_candidates must be >= 0")

    def structural(self) -> dict[str, Any]:
        """The fields a saved index must agree on."""
        return {
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construction": self.hnsw_ef_construction,
            "ivf_nlist": self.ivf_nlist,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def automatic_nlist(count: int, kind: IndexKind = "ivf") -> int:
    """Inverted lists for ``count`` templates: 4 * sqrt(N) ("ivf"), 2 * sqrt(N) ("ivfpq")."""
    per_sqrt = IVFPQ_LISTS_PER_SQRT_N if kind == "ivfpq" else IVF_LISTS_PER_SQRT_N
    return max(1, round(per_sqrt * math.sqrt(count)))


def ivf_training_size(nlist: int | None, count: int, kind: IndexKind = "ivf") -> tuple[int, int]:
    """(lists, templates needed to train them) for a gallery of ``count`` templates."""
    lists = nlist if nlist is not None else automatic_nlist(count, kind)
    return lists, IVF_MIN_POINTS_PER_LIST * lists


def ivfpq_probes(nprobe: int | None, nlist: int) -> int:
    """Lists an "ivfpq" query visits: ``nprobe`` or ``IVFPQ_PROBE_FRACTION`` of ``nlist``."""
    chosen = nprobe if nprobe is not None else math.ceil(IVFPQ_PROBE_FRACTION * nlist)
    return max(1, min(nlist, chosen))
