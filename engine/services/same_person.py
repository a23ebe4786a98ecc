""""Same person?" questions for a library: built from its current groups, answered through the journal.

The queue is ranked from the library's current groups when it is asked for (``build_queue``; the
``Library`` reuses it while ``queue_signature`` is unchanged), so it always follows the library: a new
import's doubtful faces (small groups, or faces left beside a named person) enter it as soon as they are
grouped, a merge removes the pair, and a "no" keeps it out for good. The ranking is
``engine.grouping.same_person`` (docs/clustering.md, "Same person? questions").

A question's id is its two people's ids, ``"<a>-<b>"``: it stays valid from listing to answering (a script
lists, then answers), and answering checks that both people still exist.

The queue holds a second kind, "is this face one of them?" (``kind == "face"``, id ``"f<face>-<person>"``):
a face whose distances to the rest of its group are doubtful (``engine.grouping.same_person.rank_faces``),
shown against a strip of the group's most typical faces (nearest the group's mean). Yes confirms the face in
the group (it is the user's from then on); no takes it out into a group of its own and stores a cannot-link
between it and the faces of the strip, so that no later grouping puts it back with them. Both are journaled.
The two kinds are ranked together by their score (the expected corrections an answer saves).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from engine.errors import EditError
from engine.grouping.children import active_child_direction
from engine.grouping.people import cannot_links, load_faces
from engine.grouping.same_person import (
    QuestionConfig,
    RankedFaces,
    RankedPairs,
    core_faces,
    nearest_faces,
    rank_faces,
    rank_pairs,
    with_model_weights,
)
from engine.grouping.thresholds import stored_cluster_config
from engine.store.database import LibraryStore
from engine.store.schema import BY_USER, IS, IS_NOT, CannotLink, Constraint, Face, JournalEntry, ModelRecord, Person

from . import edits

YES, NO, SKIP = "yes", "no", "skip"
ANSWERS = (YES, NO, SKIP)
PAIR, FACE = "pair", "face"


@dataclass(frozen=True)
class SamePersonQuestion:
    """Are these two groups one person? Side a is the named one when there is one, else the larger.

    ``kind == "face"``: is this one face (``face_id``, side b) one of its group (side a, ``person_a ==
    person_b``)? ``faces_a`` is then the strip of the group's most typical faces, ``probability`` the
    calibrated p(the face is the group's person), ``distance`` its mean distance to the rest of the group."""

    id: str
    person_a: int
    person_b: int
    name_a: str | None
    name_b: str | None
    size_a: int
    size_b: int
    faces_a: tuple[int, ...]  # up to QuestionConfig.strip faces of each side, nearest to the other first
    faces_b: tuple[int, ...]
    distance: float  # average-linkage squared L2 between the groups
    probability: float  # p(same person) from the calibrated curve
    faces_affected: int
    score: float
    kind: str = PAIR
    face_id: int | None = None

    @property
    def label_a(self) -> str:
        return self.name_a or f"Unnamed #{self.person_a}"

    @property
    def label_b(self) -> str:
        if self.kind == FACE:
            return "This face"
        return self.name_b or f"Unnamed #{self.person_b}"

    def as_dict(self) -> dict:
        out = {
            "id": self.id, "kind": self.kind, "distance": round(self.distance, 4),
            "probability": round(self.probability, 3), "faces_affected": self.faces_affected,
            "score": round(self.score, 3),
            "a": {"person": self.person_a, "name": self.name_a, "faces": self.size_a, "face_ids": list(self.faces_a)},
            "b": {"person": self.person_b, "name": self.name_b, "faces": self.size_b, "face_ids": list(self.faces_b)},
        }
        if self.kind == FACE:
            out["face"] = self.face_id
        return out


def question_id(person_a: int, person_b: int) -> str:
    return f"{person_a}-{person_b}"


def face_question_id(face_id: int, person_id: int) -> str:
    return f"f{face_id}-{person_id}"


def parse_question_id(qid: str) -> tuple[int, int]:
    """``"12-34"`` -> the two people; ``"f567-34"`` -> (face 567, person 34) (see ``is_face_question``)."""
    text = str(qid).strip().lower()
    parts = text.removeprefix("f").split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise EditError(f"{qid!r} is not a question id (they look like 12-34 or f567-34; see "
                        "'facenet-photos suggest')")
    return int(parts[0]), int(parts[1])


def is_face_question(qid: str) -> bool:
    return str(qid).strip().lower().startswith("f")


def _answered_pairs(s, person_of: dict[int, int]) -> set[tuple[int, int]]:
    """Person pairs the user already said no to: a cannot-link between their faces, or a face of one
    with "not this person" for the other."""
    out: set[tuple[int, int]] = set()
    for a, b in cannot_links(s):
        pa = {person_of[f] for f in a if f in person_of}
        pb = {person_of[f] for f in b if f in person_of}
        out |= {(min(x, y), max(x, y)) for x in pa for y in pb if x != y}
    for fid, pid in s.execute(select(Constraint.face_id, Constraint.person_id).where(Constraint.kind == IS_NOT)):
        q = person_of.get(fid)
        if q is not None and q != pid:
            out.add((min(q, pid), max(q, pid)))
    return out


@dataclass
class Queue:
    """The ranked pairs of one state of the library, with what it takes to show them; questions are built
    lazily (a big library has hundreds of thousands of candidate pairs, a page shows a few)."""

    signature: tuple
    ids: np.ndarray  # face ids (rows of emb)
    gidx: np.ndarray  # each face's group (row of groups)
    emb: np.ndarray
    groups: np.ndarray  # person id of each group
    names: list
    sizes: np.ndarray
    means: np.ndarray
    named: np.ndarray
    pairs: RankedPairs
    cfg: QuestionConfig
    faces: RankedFaces | None = None

    def questions(self, limit: int | None, skip: set[str] | frozenset = frozenset()) -> list[SamePersonQuestion]:
        """Both kinds, merged by score (ties: the pair question first)."""
        out: list[SamePersonQuestion] = []
        pairs = self._pair_questions(skip)
        faces = self._face_questions(skip)
        nxt_p, nxt_f = next(pairs, None), next(faces, None)
        while (nxt_p is not None or nxt_f is not None) and (limit is None or len(out) < limit):
            if nxt_f is None or (nxt_p is not None and nxt_p.score >= nxt_f.score):
                out.append(nxt_p)
                nxt_p = next(pairs, None)
            else:
                out.append(nxt_f)
                nxt_f = next(faces, None)
        return out

    def _face_questions(self, skip):
        rf = self.faces
        if rf is None:
            return
        for i in range(len(rf)):
            row, g = int(rf.face[i]), int(rf.group[i])
            qid = face_question_id(int(self.ids[row]), int(self.groups[g]))
            if qid in skip:
                continue
            rows = np.flatnonzero(self.gidx == g)
            strip = rows[core_faces(self.emb[rows], self.cfg.strip, int(np.flatnonzero(rows == row)[0]))]
            yield SamePersonQuestion(
                qid, int(self.groups[g]), int(self.groups[g]), self.names[g], None, int(self.sizes[g]) - 1, 1,
                tuple(int(x) for x in self.ids[strip]), (int(self.ids[row]),), float(rf.distance[i]),
                float(1.0 - rf.probability[i]), 1, float(rf.score[i]), FACE, int(self.ids[row]))

    def _pair_questions(self, skip):
        pr = self.pairs
        for i in range(len(pr)):
            a, b = int(pr.a[i]), int(pr.b[i])
            # The named side first, else the larger group (a yes keeps its id).
            if self.named[b] or (not self.named[a] and self.sizes[b] > self.sizes[a]):
                a, b = b, a
            qid = question_id(int(self.groups[a]), int(self.groups[b]))
            if qid in skip:
                continue
            yield SamePersonQuestion(
                qid, int(self.groups[a]), int(self.groups[b]), self.names[a], self.names[b],
                int(self.sizes[a]), int(self.sizes[b]), self._strip(a, b), self._strip(b, a),
                float(pr.distance[i]), float(pr.probability[i]), int(pr.faces_affected[i]), float(pr.score[i]))

    def _strip(self, g: int, other: int) -> tuple[int, ...]:
        rows = np.flatnonzero(self.gidx == g)
        return tuple(int(x) for x in self.ids[rows[nearest_faces(self.emb[rows], self.means[other], self.cfg.strip)]])


def model_question_weights(session, model_id: str) -> tuple[dict | None, str | None]:
    """(the question weights ``model_id``'s queue is ranked with, the model they were fitted for): its own
    stored ones, else those of each model whose space it lives in, nearest first; (None, SFace's id): the
    shipped ones, which were fitted for SFace; (None, None): the shipped ones, fitted for no model on the
    chain (the queue still runs, relative to the model's own threshold)."""
    from engine.grouping.thresholds import compatible_chain
    from engine.models.registry import SFACE

    for mid, record in compatible_chain(session, model_id):
        if record is not None and record.question_weights:
            return dict(record.question_weights), mid
        if mid == SFACE.model_id:
            return None, mid
    return None, None


def queue_config(session, cfg: QuestionConfig) -> QuestionConfig:
    """``cfg`` with the active model's fitted question weights (``QuestionConfig.model_weights``)."""
    from engine.grouping.thresholds import active_embedder_id

    if not cfg.model_weights:  # no lookup
        return cfg
    return with_model_weights(cfg, model_question_weights(session, active_embedder_id(session))[0])


def queue_signature(store: LibraryStore) -> tuple:
    """A cheap fingerprint of everything the queue depends on (the groups, names, hidden people, answers,
    statements, the threshold, the models' child classifiers): when it is unchanged the ranked queue can be
    reused."""
    with store.session() as s:
        faces = s.execute(select(func.count(Face.id), func.total(Face.person_id * Face.id), func.max(Face.id),
                                 func.total(func.length(func.coalesce(Face.assignment, ""))))).one()
        people = s.execute(select(func.count(Person.id), func.total(Person.hidden), func.count(Person.name),
                                  func.max(Person.id))).one()
        journal = s.execute(select(func.max(JournalEntry.id), func.total(JournalEntry.undone))).one()
        links = s.execute(select(func.count(CannotLink.id), func.max(CannotLink.id))).one()
        said = s.execute(select(func.count(Constraint.id), func.max(Constraint.id))).one()
        threshold = stored_cluster_config(s).threshold
        # A re-embed changes embeddings, not groups: count the faces already in the active model's space.
        model = s.scalar(select(ModelRecord.id).where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder"))
        embedded = s.scalar(select(func.count(Face.id)).where(Face.model_id == model))
        # Both kinds of question read the model's child classifier, which `calibrate` may store or replace.
        # (A few small rows: one per model the library has recorded.)
        # And its question weights (the same: `calibrate` stores them).
        fitted = tuple(sorted((mid, repr(c), repr(q)) for mid, c, q in s.execute(
            select(ModelRecord.id, ModelRecord.child_classifier, ModelRecord.question_weights).where(
                ModelRecord.child_classifier.is_not(None) | ModelRecord.question_weights.is_not(None)))))
    return (model, embedded, tuple(faces), tuple(people), tuple(journal), tuple(links), tuple(said), threshold,
            fitted)


def build_queue(store: LibraryStore, cfg: QuestionConfig = QuestionConfig()) -> Queue:
    """Rank every candidate pair of the library's current groups (``engine.grouping.same_person``), with the
    active model's own question weights where ``calibrate`` stored them (``queue_config``)."""
    signature = queue_signature(store)
    asked = cfg
    with store.session() as s:
        cfg = queue_config(s, cfg)
        threshold = stored_cluster_config(s).threshold
        people = {pid: (name, hidden) for pid, name, hidden in s.execute(select(Person.id, Person.name, Person.hidden))}
        t = load_faces(s, Face.person_id.is_not(None))
        direction = active_child_direction(s, t.emb.shape[1]) if len(t.emb) else None
        shown = np.array([not people.get(int(p), (None, True))[1] for p in t.person_ids], bool)
        ids, pids, photos, emb = t.ids[shown], t.person_ids[shown], t.photo_ids[shown], t.emb[shown]
        # Faces the user placed or confirmed are never asked about again.
        placed = np.array([a == BY_USER for a in t.assignment], bool)[shown]
        said_is = {int(f) for f in s.scalars(select(Constraint.face_id).where(Constraint.kind == IS))}
        if said_is:
            placed |= np.isin(ids, np.fromiter(said_is, np.int64, len(said_is)))
        person_of = dict(zip(ids.tolist(), pids.tolist(), strict=True))
        answered = _answered_pairs(s, person_of)
    groups, gidx = np.unique(pids, return_inverse=True)
    gidx = gidx.reshape(-1)
    g = len(groups)
    sizes = np.bincount(gidx, minlength=g)
    sums = np.zeros((g, emb.shape[1]), np.float64)
    np.add.at(sums, gidx, emb.astype(np.float64))
    means = sums / np.maximum(sizes, 1)[:, None]
    names = [people[int(p)][0] for p in groups]
    named = np.array([bool(n) for n in names], bool)
    pos = {int(p): i for i, p in enumerate(groups)}
    excluded = {pos[a] * g + pos[b] if pos[a] < pos[b] else pos[b] * g + pos[a]
                for a, b in answered if a in pos and b in pos}
    # Two groups with a face in one photo are two people.
    by_photo: dict[int, set[int]] = defaultdict(set)
    for ph, gi in zip(photos.tolist(), gidx.tolist(), strict=True):
        by_photo[ph].add(gi)
    for gs in by_photo.values():
        if len(gs) > 1:
            gl = sorted(gs)
            excluded |= {x * g + y for i, x in enumerate(gl) for y in gl[i + 1:]}
    # The model's child classifier informs both kinds of question, even where its grouping penalty is 0
    # (calibrated off).
    child = direction.likelihood(emb) if direction is not None else None
    group_child = None if child is None else np.bincount(gidx, weights=child, minlength=g) / np.maximum(sizes, 1)
    pairs = rank_pairs(means, sizes, named, threshold, cfg, excluded=np.fromiter(excluded, np.int64, len(excluded)),
                       child=group_child)
    faces = None
    if cfg.ask_faces:
        faces = rank_faces(emb, gidx, g, threshold, cfg, eligible=~placed, child=child)
    # The queue is kept for the config it was asked with (the library compares that), ranked with ``cfg``.
    return Queue(signature, ids, gidx, emb, groups, names, sizes, means, named, pairs, asked, faces)


def same_person_questions(store: LibraryStore, limit: int | None = 20, *, skip: set[str] | frozenset = frozenset(),
                          cfg: QuestionConfig = QuestionConfig()) -> list[SamePersonQuestion]:
    """The ranked queue (best question first), without the ids in ``skip``."""
    return build_queue(store, cfg).questions(limit, skip)


def strip_of(store: LibraryStore, face_id: int, person_id: int, n: int = QuestionConfig.strip) -> tuple[int, ...]:
    """The strip a face question shows (the group's faces nearest its mean, without the face), from the
    library's current state: what a "no" given by id keeps the face apart from."""
    with store.session() as s:
        face = s.get(Face, face_id)
        if face is None or face.person_id != person_id:
            raise EditError("this question is out of date (the face changed group); list the questions again")
        t = load_faces(s, Face.person_id == person_id)
    where = np.flatnonzero(t.ids == face_id)
    if len(t.ids) < 2 or not len(where):
        raise EditError("this question is out of date (the group changed); list the questions again")
    return tuple(int(x) for x in t.ids[core_faces(t.emb, n, int(where[0]))])


def answer_face(store: LibraryStore, face_id: int, person_id: int, reply: str,
                shown: tuple[int, ...] | None = None) -> int | None:
    """Yes: the face is its group's person (confirmed; returns the person). No: it leaves the group for a
    group of its own, kept apart from the ``shown`` faces (the strip the user saw; else the strip as the
    library stands) in every later grouping. Both journaled."""
    if reply not in (YES, NO):
        raise EditError(f"answer {reply!r}: expected one of {', '.join(ANSWERS)}")
    with store.session() as s:
        face = s.get(Face, face_id)
        if face is None or face.person_id != person_id:
            raise EditError("this question is out of date (the face changed group); list the questions again")
    if reply == YES:
        edits.confirm(store, [face_id])
        return person_id
    edits.not_one_of(store, face_id, person_id, list(shown) if shown else list(strip_of(store, face_id, person_id)))
    return None


def answer(store: LibraryStore, person_a: int, person_b: int, reply: str) -> int | None:
    """Yes: merge (the named side, else side a, keeps its id and name); no: keep them apart for good. Both
    journaled. Returns the person that holds the faces after a yes."""
    if reply == YES:
        with store.session() as s:
            a, b = s.get(Person, person_a), s.get(Person, person_b)
            if a is None or b is None:
                raise EditError("this question is out of date (a group changed); list the questions again")
            target, source = (b, a) if (b.name and not a.name) else (a, b)
        return edits.merge(store, target.id, [source.id])
    if reply == NO:
        edits.not_the_same(store, person_a, person_b)
        return None
    raise EditError(f"answer {reply!r}: expected one of {', '.join(ANSWERS)}")
