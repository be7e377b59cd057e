"""Calibrated entity confidences: a monotone map from an entity's probability
under the model (confidence.py) to the rate at which such entities are
exactly right, fitted on a dev corpus; and the measures that say how well a
confidence is calibrated (expected calibration error, Brier score,
precision and recall against a threshold).

The map is isotonic regression (scikit-learn's, from the `evaluate` extra),
one over all entity types; optionally (`per_type_min`) one per type that has
that many predictions on the dev corpus. On CoNLL-2003 dev, 5-fold
cross-validation over documents gives ECE 0.0039 for one map and 0.0110 per
type (docs/RESULTS.md, "Calibrated confidences"): a type's own map follows
its dev sample too closely. Applying it is `np.interp` over
the fitted points, with no scikit-learn needed: a calibrated pipeline runs
with the package's own dependencies.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import Errors

FILE_NAME = "calibration.json"
FEATURE = "marginal"
GLOBAL = "*"


@dataclass
class Calibration:
    """Fitted maps from an entity probability to P(correct).

    maps (Dict[str, Tuple[List[float], List[float]]]): per label (after
        label_map), the increasing points (x, y) of the map, linearly
        interpolated and clipped at the ends; "*" for the labels without
        their own.
    feature (str): what the map reads ("marginal": confidence.py's
        entity probability).
    info (Dict[str, Any]): how it was fitted (corpus, counts per type).
    """

    maps: dict[str, tuple[list[float], list[float]]]
    feature: str = FEATURE
    info: dict[str, Any] = field(default_factory=dict)

    def apply(self, scores: np.ndarray, labels: Sequence[str], type_id: np.ndarray) -> np.ndarray:
        """Calibrated confidences of entities whose raw scores are `scores`
        and whose labels are `labels[type_id]`."""
        out = np.asarray(scores, dtype=np.float64).copy()
        for t, label in enumerate(labels):
            xy = self.maps.get(label, self.maps.get(GLOBAL))
            chosen = type_id == t
            if xy is not None and chosen.any():
                out[chosen] = np.interp(out[chosen], xy[0], xy[1])
        return np.clip(out, 0.0, 1.0)

    def apply_labels(self, scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """`apply` for entities given by their label strings."""
        types = sorted(set(labels))
        index = {label: i for i, label in enumerate(types)}
        return self.apply(scores, types, np.array([index[label] for label in labels], dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "maps": {k: {"x": list(x), "y": list(y)} for k, (x, y) in self.maps.items()},
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: Any, path: Optional[Path] = None) -> "Calibration":
        """The map that to_dict wrote; a coded error (E045) for anything else."""
        where = path if path is not None else "calibration data"
        try:
            feature = data["feature"]
            maps = {}
            for k, xy in data["maps"].items():
                x = [float(v) for v in xy["x"]]
                y = [float(v) for v in xy["y"]]
                if not x or len(x) != len(y) or any(b < a for a, b in zip(x, x[1:])):
                    raise ValueError(f"the map of {k!r} is not increasing points (x, y)")
                maps[str(k)] = (x, y)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(Errors.E045.format(path=where, problem=f"{type(e).__name__}: {e}")) from e
        if feature != FEATURE:
            raise ValueError(Errors.E045.format(path=where, problem=f"unknown feature {feature!r}"))
        return cls(maps=maps, feature=feature, info=dict(data.get("info") or {}))

    def to_disk(self, folder: Path) -> None:
        import srsly

        srsly.write_json(Path(folder) / FILE_NAME, self.to_dict())

    @classmethod
    def from_disk(cls, folder: Path) -> "Optional[Calibration]":
        """The map saved in a component's folder, or None where there is none."""
        import srsly

        path = Path(folder) / FILE_NAME
        if not path.exists():
            return None
        try:
            data = srsly.read_json(path)
        except (OSError, ValueError) as e:
            raise ValueError(Errors.E045.format(path=path, problem=f"it cannot be read ({e})")) from e
        return cls.from_dict(data, path)


def fit_isotonic(scores: np.ndarray, correct: np.ndarray) -> tuple[list[float], list[float]]:
    """The increasing map from scores to the observed rate of correct ones."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=np.float64))
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


def fit_calibration(
    scores: np.ndarray, labels: Sequence[str], correct: np.ndarray, *, per_type_min: Optional[int] = None
) -> Calibration:
    """Fit a Calibration: one map over all entities, and, where
    `per_type_min` is given, one per label with at least that many entities
    (a label with fewer uses the global map).

    scores: raw entity probabilities; labels: each entity's label; correct:
    whether each is exactly right (span and type)."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    labels_a = np.asarray(list(labels), dtype=object)
    maps = {GLOBAL: fit_isotonic(scores, correct)}
    counts = {}
    for label in sorted(set(labels_a.tolist())):
        chosen = labels_a == label
        n = int(chosen.sum())
        own = per_type_min is not None and n >= per_type_min
        counts[label] = {"entities": n, "correct": int(correct[chosen].sum()), "own_map": own}
        if own:
            maps[label] = fit_isotonic(scores[chosen], correct[chosen])
    info = {"entities": len(scores), "correct": int(correct.sum()), "per_type_min": per_type_min, "labels": counts}
    return Calibration(maps=maps, info=info)


# ---------------------------------------------------------------- measures


def calibration_bins(scores: np.ndarray, correct: np.ndarray, n_bins: int = 10, mass: bool = False) -> list[dict]:
    """Reliability bins: per bin, its score range, count, mean confidence and
    rate of correct ones. Equal-width bins over [0, 1] (the last one closed),
    or (mass) bins of equal counts over the sorted scores."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if mass:
        order = np.argsort(scores, kind="stable")
        groups = [g for g in np.array_split(order, n_bins) if len(g)]
    else:
        which = np.minimum((scores * n_bins).astype(np.int64), n_bins - 1)
        groups = [np.flatnonzero(which == b) for b in range(n_bins)]
    out = []
    for b, g in enumerate(groups):
        lo, hi = (b / n_bins, (b + 1) / n_bins) if not mass else (float(scores[g].min()), float(scores[g].max()))
        entry: dict[str, Any] = {"low": lo, "high": hi, "count": int(len(g))}
        if len(g):
            entry["confidence"] = float(scores[g].mean())
            entry["accuracy"] = float(correct[g].mean())
        out.append(entry)
    return out


def expected_calibration_error(scores: np.ndarray, correct: np.ndarray, n_bins: int = 10, mass: bool = False) -> float:
    """Sum over bins of (bin count / total) * |mean confidence - rate correct|."""
    n = len(scores)
    if n == 0:
        return 0.0
    bins = calibration_bins(scores, correct, n_bins, mass)
    return float(sum(b["count"] / n * abs(b["confidence"] - b["accuracy"]) for b in bins if b["count"]))


def brier_score(scores: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared difference between confidence and correctness (0 or 1)."""
    if len(scores) == 0:
        return 0.0
    return float(np.mean((np.asarray(scores, dtype=np.float64) - np.asarray(correct, dtype=np.float64)) ** 2))


THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def threshold_table(
    scores: np.ndarray, correct: np.ndarray, n_gold: int, thresholds: Sequence[float] = THRESHOLDS
) -> list[dict]:
    """Precision, recall and F1 (percent) of the entities kept at each
    threshold (score >= t), against `n_gold` gold entities."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    rows = []
    for t in thresholds:
        keep = scores >= t
        kept, right = int(keep.sum()), int((keep & correct).sum())
        p = 100 * right / kept if kept else 0.0
        r = 100 * right / n_gold if n_gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"threshold": t, "kept": kept, "precision": p, "recall": r, "f1": f})
    return rows


def calibration_report(
    scores: np.ndarray, labels: Sequence[str], correct: np.ndarray, n_gold: int, *, min_type_count: int = 100
) -> dict[str, Any]:
    """ECE (10 equal-width and 10 equal-mass bins), Brier score, the same per
    label with at least `min_type_count` predictions, the reliability bins
    and the threshold table."""
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    labels_a = np.asarray(list(labels), dtype=object)

    def measures(s, c):
        return {
            "predicted": int(len(s)),
            "correct": int(c.sum()),
            "mean_confidence": float(s.mean()) if len(s) else 0.0,
            "ece_width": expected_calibration_error(s, c),
            "ece_mass": expected_calibration_error(s, c, mass=True),
            "brier": brier_score(s, c),
        }

    per_type = {}
    for label in sorted(set(labels_a.tolist())):
        chosen = labels_a == label
        if chosen.sum() >= min_type_count:
            per_type[label] = measures(scores[chosen], correct[chosen])
    return {
        **measures(scores, correct),
        "per_type": per_type,
        "bins_width": calibration_bins(scores, correct),
        "bins_mass": calibration_bins(scores, correct, mass=True),
        "thresholds": threshold_table(scores, correct, n_gold),
    }
