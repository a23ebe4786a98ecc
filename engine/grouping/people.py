"""People: grouping faces (recognition + clustering) and mapping groups onto existing people so
names, confirmations and "not this person" statements survive every re-run."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update

from engine.config import ClusterConfig
from engine.models.quantize import dequantize
from engine.store.database import LibraryStore
from engine.store.dates import photo_date
from engine.store.journal import drop_redo
from engine.store.schema import (
    BY_CLUSTER,
    BY_SUGGESTION,
    BY_USER,
    IS_NOT,
    NOT_A_FACE,
    NOT_KNOWN,
    CannotLink,
    Constraint,
    Face,
    ModelRecord,
    Person,
    Photo,
)

from .children import child_weights
from .cluster import cluster_faces, knn
from .normalise import centre_library
from .thresholds import stored_cluster_config

THRESHOLD_SETTING = "cluster_threshold"

# Faces that take part in grouping: embedded, not deleted by the user as "not a face" and not marked
# "not someone I know".
GROUPABLE = Face.embedding.is_not(None) & (
    Face.assignment.not_in([NOT_A_FACE, NOT_KNOWN]) | Face.assignment.is_(None))


@dataclass
class FaceTable:
    ids: np.ndarray
    photo_ids: np.ndarray
    person_ids: np.ndarray  # -1 = none
    assignment: list[str | None]
    emb: np.ndarray


def active_dim(session) -> int:
    """Dimension of the active embedder's space (128 when the library records none)."""
    dim = session.scalar(
        select(ModelRecord.dim).where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
    )
    return int(dim or 128)


def load_faces(session, where=None) -> FaceTable:
    """Faces that take part in grouping (GROUPABLE) with an embedding in the active model's space. While
    a library is being re-embedded into a space of another size (e.g. SFace's 128-D to arcface-mbf's
    512-D) the faces not yet re-embedded cannot be compared with the others: they are left out, so they
    keep their person as they are."""
    dim = active_dim(session)
    q = select(Face.id, Face.photo_id, Face.person_id, Face.assignment, Face.embedding).where(
        GROUPABLE, func.length(Face.embedding) == dim
    )
    if where is not None:
        q = q.where(where)
    rows = session.execute(q.order_by(Face.id)).all()
    n = len(rows)
    emb = np.zeros((n, dim), np.float32)
    if n:
        raw = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.int8).reshape(n, -1)
        emb = dequantize(raw)
    return FaceTable(
        ids=np.array([r[0] for r in rows], np.int64),
        photo_ids=np.array([r[1] for r in rows], np.int64),
        person_ids=np.array([r[2] if r[2] is not None else -1 for r in rows], np.int64),
        assignment=[r[3] for r in rows],
        emb=emb,
    )


def _is_not(session) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for fid, pid in session.execute(
        select(Constraint.face_id, Constraint.person_id).where(Constraint.kind == IS_NOT)
    ):
        out[fid].add(pid)
    return out


def cannot_links(session) -> list[tuple[list[int], list[int]]]:
    """The user's "no" answers to "same person?": (faces of one side, faces of the other)."""
    return [(list(a), list(b)) for a, b in session.execute(select(CannotLink.faces_a, CannotLink.faces_b))]


def cannot_link_pairs(links: list[tuple[list[int], list[int]]], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (face of one side, face of the other) pair of ``links`` as row indices into ``ids`` (sorted face
    ids of a FaceTable); faces not in the table are left out."""
    us, vs = [], []
    for a, b in links:
        ia, ib = _rows(ids, a), _rows(ids, b)
        if len(ia) and len(ib):
            us.append(np.repeat(ia, len(ib)))
            vs.append(np.tile(ib, len(ia)))
    if not us:
        z = np.zeros(0, np.int64)
        return z, z
    return np.concatenate(us), np.concatenate(vs)


def _rows(ids: np.ndarray, face_ids: list[int]) -> np.ndarray:
    f = np.asarray(face_ids, np.int64)
    pos = np.searchsorted(ids, f)
    ok = pos < len(ids)
    ok[ok] = ids[pos[ok]] == f[ok]
    return pos[ok].astype(np.int64)


def _cannot_link_people(session, links) -> dict[int, set[int]]:
    """face id -> the named people holding faces the user said are not that face's person: recognition
    must not suggest them (the other side of a "no" may have been named since)."""
    if not links:
        return {}
    owner = dict(session.execute(
        select(Face.id, Face.person_id).join(Person, Person.id == Face.person_id).where(Person.name.is_not(None))
    ).all())
    out: dict[int, set[int]] = defaultdict(set)
    for a, b in links:
        for side, other in ((a, b), (b, a)):
            people = {owner[f] for f in other if f in owner}
            if people:
                for f in side:
                    out[f] |= people
    return out


def unborn(session, photo_ids) -> dict[int, set[int]]:
    """photo id -> the people with a birth date after the day the photo was taken: a face in it is
    never suggested for them (a baby photo of the parent is not the child)."""
    births = dict(session.execute(select(Person.id, Person.birth_date).where(Person.birth_date.is_not(None))).all())
    if not births:
        return {}
    ids = sorted({int(i) for i in photo_ids})
    out: dict[int, set[int]] = {}
    for i in range(0, len(ids), 900):
        for pid, taken, mtime in session.execute(
            select(Photo.id, Photo.taken_at, Photo.mtime).where(Photo.id.in_(ids[i : i + 900]))
        ):
            day = photo_date(taken, mtime)[0].date()
            out[pid] = {person for person, born in births.items() if day < born}
    return out


# Date-aware recognition: a known face of a person votes for a new face only if it was taken within this
# many days of that person's face nearest in time to the new one. A child is matched against their own
# faces of about the same age (and links through the years in between, one import after another), not
# against the average of every age, and not against a parent's childhood photos when the parent has
# photos from the new one's year too.
DATE_WINDOW_DAYS = 730.0
# A face the user confirmed is worth this many votes of faces grouped automatically.
CONFIRMED_VOTES = 2


def photo_days(session, photo_ids) -> np.ndarray:
    """Per photo id (in the order given): days since 1970 of its EXIF date taken, NaN without one. The
    file time is not used: copies and backups reset it, which would put a baby photo in the wrong year."""
    ids = [int(i) for i in photo_ids]
    taken: dict[int, float] = {}
    uniq = sorted(set(ids))
    for i in range(0, len(uniq), 900):
        for pid, t in session.execute(
            select(Photo.id, Photo.taken_at).where(Photo.id.in_(uniq[i : i + 900]), Photo.taken_at.is_not(None))
        ):
            taken[pid] = t.timestamp() / 86400.0 if hasattr(t, "timestamp") else np.nan
    return np.array([taken.get(i, np.nan) for i in ids], np.float64)


def recognise(
    known: FaceTable,
    query: np.ndarray,
    threshold: float,
    k: int = 10,
    forbidden: list[set[int]] | None = None,
    *,
    known_days: np.ndarray | None = None,
    query_days: np.ndarray | None = None,
    window_days: float = DATE_WINDOW_DAYS,
    known_child: np.ndarray | None = None,
    query_child: np.ndarray | None = None,
    child_penalty: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN vote of each query face among faces of known people.

    Returns (person id or -1, squared distance to that person's nearest face). A person wins
    when it has the most votes within ``threshold`` (ties: nearest); a face the user confirmed counts
    ``CONFIRMED_VOTES``. With dates (days, NaN = unknown) for the known and the query faces, a dated known
    face votes for a dated query only within ``window_days`` of its person's face nearest in time to the
    query (``DATE_WINDOW_DAYS``); undated faces always vote. With child likelihoods for both sides, the
    distance between two child-like faces grows by ``child_penalty * c_query * c_known``, as the grouping's
    edges do (engine/grouping/children.py): a named child does not take another child's new photos."""
    m = len(query)
    out_p = np.full(m, -1, np.int64)
    out_d = np.full(m, np.inf, np.float32)
    if len(known.ids) == 0 or m == 0:
        return out_p, out_d
    dated = known_days is not None and query_days is not None and np.isfinite(known_days).any()
    # With dates, look further: the faces of other ages that the window drops make room for the right ones.
    kk = min(3 * k if dated else k, len(known.ids))
    dist, idx = knn(known.emb, query, kk)
    if child_penalty > 0 and known_child is not None and query_child is not None:
        kc = np.asarray(known_child, np.float64)
        dist = (np.asarray(dist, np.float64)
                + child_penalty * np.asarray(query_child, np.float64)[:, None] * np.where(idx >= 0, kc[idx], 0.0))
        order = np.argsort(dist, axis=1, kind="stable")
        dist, idx = np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)
    weight = np.array([CONFIRMED_VOTES if a == BY_USER else 1 for a in known.assignment], np.int64)
    person_days: dict[int, np.ndarray] = {}
    if dated:
        for pid in np.unique(known.person_ids):
            d = known_days[(known.person_ids == pid) & np.isfinite(known_days)]
            person_days[int(pid)] = np.sort(d)
    for i in range(m):
        votes: Counter = Counter()
        best: dict[int, float] = {}
        tq = float(query_days[i]) if dated else np.nan
        gap: dict[int, float] = {}
        for d, j in zip(dist[i], idx[i], strict=True):
            if j < 0 or d > threshold:
                continue
            pid = int(known.person_ids[j])
            if forbidden and pid in forbidden[i]:
                continue
            tj = float(known_days[j]) if dated else np.nan
            if np.isfinite(tq) and np.isfinite(tj):
                if pid not in gap:
                    pd = person_days[pid]
                    pos = int(np.searchsorted(pd, tq))
                    gap[pid] = float(min(abs(pd[q] - tq) for q in (pos - 1, pos) if 0 <= q < len(pd)))
                if abs(tj - tq) > gap[pid] + window_days:
                    continue  # a face of this person from another age: not what the new face is compared with
            votes[pid] += int(weight[j])
            best[pid] = min(best.get(pid, np.inf), float(d))
        if votes:
            pid = max(votes, key=lambda p: (votes[p], -best[p]))
            out_p[i], out_d[i] = pid, best[pid]
    return out_p, out_d


def saved_config(session) -> ClusterConfig:
    """The grouping settings of this library: the threshold the user chose last, else the active
    model's calibrated thresholds (engine/grouping/thresholds.py)."""
    return stored_cluster_config(session)


def cluster_new_faces(store: LibraryStore, face_ids: list[int], config: ClusterConfig | None = None) -> dict:
    """Recognition, then grouping: faces are first matched to named people by k-NN (as suggestions
    the user can confirm); every face that is not with a named person is then grouped again.

    Runs in one transaction, with the library's saved threshold unless ``config`` is given. When it
    changes any group, the redo stack is dropped: a redo would write group states from before this
    grouping over it (see docs/gui.md, "Undo and redo")."""
    with store.transaction() as s:
        result = group_faces(s, face_ids, config or saved_config(s))
        if result["changed"]:
            drop_redo(s)
        return result


def group_faces(s, face_ids: list[int], cfg: ClusterConfig, only: list[int] | None = None) -> dict:
    """:func:`cluster_new_faces` inside the caller's transaction (a journaled regroup uses it). ``only``:
    cluster just these unnamed faces (whole groups, see :func:`near_faces`) instead of every unnamed face."""
    recognised = 0
    named = {p.id for p in s.scalars(select(Person).where(Person.name.is_not(None)))}
    forbid = _is_not(s)
    for fid, people in _cannot_link_people(s, cannot_links(s)).items():
        forbid[fid] |= people
    # Faces in no group yet, e.g. committed by an import that was killed or cancelled before grouping.
    loose = s.scalars(select(Face.id).where(Face.person_id.is_(None), GROUPABLE))
    face_ids = sorted(set(face_ids) | set(loose))
    if named and face_ids:
        known = load_faces(s, Face.person_id.in_(named) & Face.assignment.in_([BY_USER, BY_CLUSTER]))
        new = load_faces(
            s, Face.id.in_(face_ids) & ((Face.assignment != BY_USER) | Face.assignment.is_(None))
        )
        new_keep = [i for i, pid in enumerate(new.person_ids) if pid not in named]
        too_early = unborn(s, new.photo_ids[new_keep])
        # The children's penalty of the grouping, on the same faces' likelihoods.
        known_child, penalty = child_weights(s, known.emb, cfg)
        query_child, _ = child_weights(s, new.emb[new_keep], cfg)
        pids, dists = recognise(
            known,
            new.emb[new_keep],
            cfg.recognise_threshold,
            forbidden=[
                forbid.get(int(new.ids[i]), set()) | too_early.get(int(new.photo_ids[i]), set()) for i in new_keep
            ],
            known_days=photo_days(s, known.photo_ids),
            query_days=photo_days(s, new.photo_ids[new_keep]),
            known_child=known_child,
            query_child=query_child,
            child_penalty=penalty,
        )
        for i, pid, d in zip(new_keep, pids, dists, strict=True):
            if pid >= 0:
                face = s.get(Face, int(new.ids[i]))
                face.person_id, face.assignment, face.confidence = int(pid), BY_SUGGESTION, float(d)
                recognised += 1
    s.flush()
    result = _regroup_unnamed(s, cfg, None if only is None else sorted(set(only) | set(face_ids)))
    result["changed"] += recognised
    return result


def near_faces(s, person_ids: list[int], threshold: float, neighbours: int = 12, reach: float = 0.5) -> list[int]:
    """The faces a regrouping after an edit of ``person_ids`` looks at: every face of those people that are
    unnamed and of the ``neighbours`` unnamed groups nearest each of them (average linkage, the distance
    of group means, up to ``threshold + reach``; named people count as seeds too, their faces stay out).
    Whole groups, so that :func:`_regroup_unnamed` with ``only`` leaves every other group as it is; the
    work is a few groups' faces, not the library's (a full regrouping of 20,000 faces takes seconds)."""
    people = dict(s.execute(select(Person.id, Person.name)).all())
    t = load_faces(s, Face.person_id.is_not(None))
    if not len(t.ids):
        return []
    groups, gidx = np.unique(t.person_ids, return_inverse=True)
    gidx = gidx.reshape(-1)
    sums = np.zeros((len(groups), t.emb.shape[1]), np.float64)
    np.add.at(sums, gidx, t.emb.astype(np.float64))
    means = sums / np.bincount(gidx, minlength=len(groups))[:, None]
    named = np.array([bool(people.get(int(p))) for p in groups], bool)
    seeds = np.flatnonzero(np.isin(groups, np.asarray(list(person_ids), np.int64)))
    if not len(seeds):
        return []
    dist = 2.0 - 2.0 * means[seeds] @ means.T  # (seeds, groups)
    dist[:, named] = np.inf
    take = set(seeds[~named[seeds]].tolist())
    for row in dist:
        near = np.argsort(row, kind="stable")[:neighbours]
        take |= {int(g) for g in near if row[g] <= threshold + reach}
    return [int(f) for f in t.ids[np.isin(gidx, np.fromiter(take, np.int64, len(take)))]]


def reclusterable_faces(s) -> list[int]:
    """Every face a full regrouping looks at: all but those with a named person."""
    named = list(s.scalars(select(Person.id).where(Person.name.is_not(None))))
    q = select(Face.id).where(GROUPABLE)
    if named:
        q = q.where(Face.person_id.is_(None) | ~Face.person_id.in_(named))
    return list(s.scalars(q))


def recluster(store: LibraryStore, config: ClusterConfig | None = None) -> dict:
    """Group the library again, e.g. with a new threshold (not journaled: ``edits.regroup`` is the
    undoable one the CLI and the GUI call).

    Faces with a named person stay there (they change only by the user's edits); all other faces
    are matched to named people, then grouped. Faces the user placed never move.
    """
    with store.transaction() as s:
        result = group_faces(s, reclusterable_faces(s), config or saved_config(s))
        if result["changed"]:
            drop_redo(s)
        return result


def _regroup_unnamed(s, cfg: ClusterConfig, only: list[int] | None = None) -> dict:
    """Cluster every face that is not with a named person (``only``: just these of them, whole groups, so
    that the groups outside stay as they are). Each new group takes over the unnamed person it overlaps
    most; faces the user placed in an unnamed person keep it."""
    people = {p.id: p for p in s.scalars(select(Person))}
    named = [pid for pid, p in people.items() if p.name]
    where = (Face.person_id.is_(None) | ~Face.person_id.in_(named)) if named else None
    if only is not None:
        where = Face.id.in_(only) if where is None else where & Face.id.in_(only)
    t = load_faces(s, where)
    if len(t.ids) == 0:
        _drop_empty(s, people)
        return {"faces": 0, "groups": 0, "changed": 0}
    fixed = np.array(
        [pid if a == BY_USER and pid >= 0 else -1 for pid, a in zip(t.person_ids, t.assignment, strict=True)],
        np.int64,
    )
    # The per-library normalisation (off unless ClusterConfig.centre is set) only changes the vectors the
    # grouping sees; the fixed and cannot-link constraints apply as before.
    child, penalty = child_weights(s, t.emb, cfg)
    labels = cluster_faces(centre_library(t.emb, cfg.centre), cfg.threshold, photo_ids=t.photo_ids, fixed=fixed,
                           k=cfg.k, method=cfg.method,
                           cannot_link=cannot_link_pairs(cannot_links(s), t.ids), child=child, child_penalty=penalty)
    forbid = _is_not(s)
    members: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(labels):
        members[int(c)].append(i)
    # A group with user-placed faces belongs to their person; otherwise the unnamed person it
    # overlaps most takes it (largest overlaps first), so group ids stay stable across runs.
    target: dict[int, int] = {}
    claims: list[tuple[int, int, int]] = []
    for c, idx in members.items():
        fixed_p = {int(fixed[i]) for i in idx if fixed[i] >= 0}
        if fixed_p:
            target[c] = fixed_p.pop()
            continue
        overlap = Counter(int(t.person_ids[i]) for i in idx if t.person_ids[i] >= 0)
        claims.extend((cnt, c, pid) for pid, cnt in overlap.items())
    taken = set(target.values())
    for _cnt, c, pid in sorted(claims, key=lambda x: (-x[0], x[1], x[2])):
        if c not in target and pid not in taken and pid in people:
            target[c] = pid
            taken.add(pid)
    updates: dict[tuple[int, str], list[int]] = defaultdict(list)
    for c, idx in members.items():
        pid = target.get(c)
        if pid is None:
            pid = target[c] = _new_person(s, people)
        for i in idx:
            fid = int(t.ids[i])
            if fixed[i] >= 0:
                continue
            new_pid = pid
            if pid in forbid.get(fid, ()):  # the user said no: leave it on its own
                new_pid = _new_person(s, people)
            if t.person_ids[i] != new_pid or t.assignment[i] != BY_CLUSTER:
                updates[(new_pid, BY_CLUSTER)].append(fid)
    for (pid, asg), fids in updates.items():
        for j in range(0, len(fids), 900):
            s.execute(
                update(Face).where(Face.id.in_(fids[j : j + 900])).values(person_id=pid, assignment=asg),
                execution_options={"synchronize_session": False},
            )
    s.flush()
    _drop_empty(s, people)
    return {"faces": len(t.ids), "groups": len(members), "changed": sum(len(v) for v in updates.values())}


def _new_person(s, people: dict[int, Person]) -> int:
    person = Person()
    s.add(person)
    s.flush()
    people[person.id] = person
    return person.id


def _drop_empty(s, people: dict[int, Person]) -> None:
    """Unnamed people with no faces left disappear; covers point at a face of the person."""
    face_counts: Counter = Counter()
    best: dict[int, int] = {}
    owner: dict[int, int] = {}
    # Ascending score: the last face seen for a person is its best-scored one.
    for pid, fid in s.execute(select(Face.person_id, Face.id).order_by(Face.score.asc())):
        if pid is not None:
            face_counts[pid] += 1
            best[pid] = fid
            owner[fid] = pid
    for pid, p in list(people.items()):
        if face_counts.get(pid, 0) == 0:
            if not p.name:
                s.delete(p)
                del people[pid]
            continue
        if p.cover_face_id is None or owner.get(p.cover_face_id) != pid:
            p.cover_face_id = best.get(pid)
