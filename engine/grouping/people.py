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
from engine.store.schema import BY_CLUSTER, BY_SUGGESTION, BY_USER, IS_NOT, Constraint, Face, ModelRecord, Person

from .cluster import cluster_faces, knn


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
    """Faces with an embedding in the active model's space. While a library is being re-embedded into
    a space of another size (e.g. SFace's 128-D to arcface-mbf's 512-D) the faces not yet re-embedded
    cannot be compared with the others: they are left out, so they keep their person as they are."""
    dim = active_dim(session)
    q = select(Face.id, Face.photo_id, Face.person_id, Face.assignment, Face.embedding).where(
        Face.embedding.is_not(None), func.length(Face.embedding) == dim
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


def recognise(
    known: FaceTable, query: np.ndarray, threshold: float, k: int = 10, forbidden: list[set[int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN vote of each query face among faces of known people.

    Returns (person id or -1, squared distance to that person's nearest face). A person wins
    when it has the most neighbours within ``threshold`` (ties: nearest)."""
    m = len(query)
    out_p = np.full(m, -1, np.int64)
    out_d = np.full(m, np.inf, np.float32)
    if len(known.ids) == 0 or m == 0:
        return out_p, out_d
    kk = min(k, len(known.ids))
    dist, idx = knn(known.emb, query, kk)
    for i in range(m):
        votes: Counter = Counter()
        best: dict[int, float] = {}
        for d, j in zip(dist[i], idx[i], strict=True):
            if j < 0 or d > threshold:
                continue
            pid = int(known.person_ids[j])
            if forbidden and pid in forbidden[i]:
                continue
            votes[pid] += 1
            best[pid] = min(best.get(pid, np.inf), float(d))
        if votes:
            pid = max(votes, key=lambda p: (votes[p], -best[p]))
            out_p[i], out_d[i] = pid, best[pid]
    return out_p, out_d


def cluster_new_faces(store: LibraryStore, face_ids: list[int], config: ClusterConfig | None = None) -> dict:
    """Recognition, then grouping: faces are first matched to named people by k-NN (as suggestions
    the user can confirm); every face that is not with a named person is then grouped again."""
    cfg = config or ClusterConfig()
    with store.transaction() as s:
        named = {p.id for p in s.scalars(select(Person).where(Person.name.is_not(None)))}
        forbid = _is_not(s)
        # Faces in no group yet, e.g. committed by an import that was killed before grouping.
        face_ids = sorted(set(face_ids) | set(s.scalars(select(Face.id).where(Face.person_id.is_(None)))))
        if named and face_ids:
            known = load_faces(s, Face.person_id.in_(named) & Face.assignment.in_([BY_USER, BY_CLUSTER]))
            new = load_faces(
                s, Face.id.in_(face_ids) & ((Face.assignment != BY_USER) | Face.assignment.is_(None))
            )
            new_keep = [i for i, pid in enumerate(new.person_ids) if pid not in named]
            pids, dists = recognise(
                known,
                new.emb[new_keep],
                cfg.recognise_threshold,
                forbidden=[forbid.get(int(new.ids[i]), set()) for i in new_keep],
            )
            for i, pid, d in zip(new_keep, pids, dists, strict=True):
                if pid >= 0:
                    face = s.get(Face, int(new.ids[i]))
                    face.person_id, face.assignment, face.confidence = int(pid), BY_SUGGESTION, float(d)
    return _regroup_unnamed(store, cfg)


def recluster(store: LibraryStore, config: ClusterConfig | None = None) -> dict:
    """Group the library again, e.g. with a new threshold.

    Faces with a named person stay there (they change only by the user's edits); all other faces
    are matched to named people, then grouped. Faces the user placed never move.
    """
    with store.session() as s:
        named = list(s.scalars(select(Person.id).where(Person.name.is_not(None))))
        q = select(Face.id)
        if named:
            q = q.where(Face.person_id.is_(None) | ~Face.person_id.in_(named))
        ids = list(s.scalars(q))
    return cluster_new_faces(store, ids, config)


def _regroup_unnamed(store: LibraryStore, cfg: ClusterConfig) -> dict:
    """Cluster every face that is not with a named person. Each new group takes over the unnamed
    person it overlaps most; faces the user placed in an unnamed person keep it."""
    with store.transaction() as s:
        people = {p.id: p for p in s.scalars(select(Person))}
        named = [pid for pid, p in people.items() if p.name]
        t = load_faces(s, (Face.person_id.is_(None) | ~Face.person_id.in_(named)) if named else None)
        if len(t.ids) == 0:
            _drop_empty(s, people)
            return {"faces": 0, "groups": 0, "changed": 0}
        fixed = np.array(
            [pid if a == BY_USER and pid >= 0 else -1 for pid, a in zip(t.person_ids, t.assignment, strict=True)],
            np.int64,
        )
        labels = cluster_faces(t.emb, cfg.threshold, photo_ids=t.photo_ids, fixed=fixed, k=cfg.k)
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
