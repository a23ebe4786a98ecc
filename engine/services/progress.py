"""What every long operation reports: its stage (one enum for all of them) and its rate.

Stages are ``str`` enums, so a stage compares equal to its plain name ("done") and serialises to it
in JSON: scripts that read ``--json`` output keep working."""

from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    SCAN = "scan"  # finding the photos under the chosen folders
    ANALYSE = "analyse"  # decode, detect, align, embed, store
    RECOGNISE = "recognise"  # new faces against named people
    CLUSTER = "cluster"  # grouping the rest into people
    RE_EMBED = "re-embed"  # faces made by another model, through the active one
    EXAMPLES = "examples"  # collecting the user's named faces (learning)
    SPLIT = "split"
    TRAIN = "train"
    EXPORT = "export"
    EVALUATE = "evaluate"
    REGISTER = "register"
    DONE = "done"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # a learned model that is not better is not activated
    ERROR = "error"

    def __str__(self) -> str:  # f-strings and rich show the name a person reads
        return self.value

    @property
    def finished(self) -> bool:
        return self in (Stage.DONE, Stage.CANCELLED, Stage.REFUSED, Stage.ERROR)


# What a person reads for each stage (CLI bars, the GUI's status line).
STAGE_TITLES: dict[Stage, str] = {
    Stage.SCAN: "Looking for photos",
    Stage.ANALYSE: "Finding faces",
    Stage.RECOGNISE: "Recognising people",
    Stage.CLUSTER: "Grouping people",
    Stage.RE_EMBED: "Re-embedding faces",
    Stage.EXAMPLES: "Collecting your named faces",
    Stage.SPLIT: "Setting faces aside for checking",
    Stage.TRAIN: "Learning",
    Stage.EXPORT: "Saving the new model",
    Stage.EVALUATE: "Checking the new model",
    Stage.REGISTER: "Switching to the new model",
    Stage.DONE: "Done",
    Stage.CANCELLED: "Cancelled",
    Stage.REFUSED: "Not used",
    Stage.ERROR: "Failed",
}


def stage_title(stage: str) -> str:
    try:
        return STAGE_TITLES[Stage(stage)]
    except ValueError:
        return str(stage).capitalize()


class ProgressRate:
    """``rate`` and ``eta`` of a progress record with ``done``, ``total`` and ``elapsed`` seconds."""

    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        r = self.rate
        return (self.total - self.done) / r if r > 0 and self.total else None
