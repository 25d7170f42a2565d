"""What the grader writes: a score per exercise, a report per submission, and the gradebook.

Every result file is written from the grader's memory, through a fresh temporary file beside it
and an atomic rename: a link or a file a submission planted in the output folder is replaced, not
followed, and the batch writes every report again once all children are gone.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas_lab.grading.lesson import Lesson

MAX_REASON = 600  # characters of a reason or a note in a feedback file


@dataclass
class Score:
    exercise: str
    points: int
    max_points: int
    passed: bool
    reason: str


@dataclass
class Report:
    submission: str
    path: str
    lesson: str
    scores: list[Score]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(s.points for s in self.scores)

    @property
    def max_points(self) -> int:
        return sum(s.max_points for s in self.scores)

    def to_dict(self) -> dict:
        return {
            "submission": self.submission,
            "file": self.path,
            "lesson": self.lesson,
            "total": self.total,
            "max": self.max_points,
            "exercises": [asdict(s) for s in self.scores],
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Lesson {self.lesson}: {self.submission}",
            "",
            f"**{self.total} of {self.max_points} points**",
            "",
            "| exercise | points | passed | reason |",
            "| --- | --- | --- | --- |",
        ]
        for s in self.scores:
            reason = s.reason.replace("|", "\\|").replace("\n", " ")
            mark = "yes" if s.passed else "no"
            lines.append(f"| {s.exercise} | {s.points} / {s.max_points} | {mark} | {reason} |")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def write_feedback(out: Path, report: Report) -> None:
    """One submission's feedback files, from this process's memory."""
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / f"{report.submission}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    _replace(out / f"{report.submission}.md", report.to_markdown())


def write_gradebook(out: Path, lesson: Lesson, reports: Sequence[Report]) -> None:
    """``grades.csv``: a row per submission, a column per exercise, then total and max."""
    rows = [["submission"] + [t.id for t in lesson.tasks] + ["total", "max"]]
    for r in reports:
        points = {s.exercise: s.points for s in r.scores}
        rows.append([r.submission, *(points[t.id] for t in lesson.tasks), r.total, r.max_points])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / "grades.csv", text.getvalue())


def _fresh(path: Path) -> Path:
    """A temporary name beside ``path``, cleared: a link a submission planted is not followed."""
    temp = path.with_name(f".{path.name}.tmp")
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    return temp


def _replace(path: Path, text: str) -> None:
    temp = _fresh(path)
    temp.write_text(text)
    os.replace(temp, path)
