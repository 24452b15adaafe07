"""ByteTrack (Zhang et al., ECCV 2022; the authors' code is MIT-licensed), in numpy with
scipy's assignment solver, written here because the packaged trackers do not fit the
device install: Roboflow's `trackers` pulls supervision, a second OpenCV, matplotlib,
PyAV and requests (+565 MiB over numpy and OpenCV), and norfair downgrades numpy to
1.26 (which the runtime's OpenCV 5 refuses) and pulls matplotlib (+249 MiB); this one
needs scipy alone (+136 MiB, edgecnn[track]), scores higher on the synthetic clips and
costs the least per frame at 50 objects (its Kalman filters run as one batch of
arrays). Figures: benchmarks/RESULTS.md, "Tracking".

Per frame: every track's constant-velocity Kalman filter (centre x, y, aspect, height
and their velocities) predicts its box; confident detections are matched to tracks
by IoU first, then the weak ones (score below `high`) to the tracks still unmatched,
which keeps a track through an occlusion that lowers its score; unmatched confident
detections start tentative tracks, confirmed when matched on the next frame (at once
on the first frame); a track unmatched for `buffer` frames ends. Tracking is
class-agnostic (a track keeps the class of its latest detection), so a label that
flickers between frames does not break an identity.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.trackers import Tracker, TrackerType

STD_POSITION = 1.0 / 20  # the Kalman noise model of the original (from DeepSORT)
STD_VELOCITY = 1.0 / 160
TRANSITION = np.eye(8) + np.eye(8, k=4)  # x += vx per frame, and so on
# Noise standard deviations = height * weight + constant, per state (x, y, aspect, height, and velocities)
_P, _V = STD_POSITION, STD_VELOCITY
PROCESS = (np.array([_P, _P, 0, _P, _V, _V, 0, _V]), np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0]))
MEASUREMENT = (np.array([_P, _P, 0, _P]), np.array([0, 0, 1e-1, 0]))
INITIAL = (np.array([2 * _P, 2 * _P, 0, 2 * _P, 10 * _V, 10 * _V, 0, 10 * _V]), PROCESS[1])
_D8, _D4 = np.arange(8), np.arange(4)


def _xyah(boxes: np.ndarray) -> np.ndarray:
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                     width / np.maximum(height, 1e-6), height], axis=1)


def _corners(means: np.ndarray) -> np.ndarray:
    x, y, aspect, height = means[:, 0], means[:, 1], means[:, 2], means[:, 3]
    width = aspect * height
    return np.stack([x - width / 2, y - height / 2, x + width / 2, y + height / 2], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), corners."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    left, top = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    right, bottom = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    overlap = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return overlap / np.maximum(area_a[:, None] + area_b[None, :] - overlap, 1e-9)


def _match(tracks: np.ndarray, detections: np.ndarray, threshold: float
           ) -> Tuple[List[Tuple[int, int]], List[int], List[int]]:
    """Minimum-cost assignment of boxes by 1 - IoU, keeping pairs under `threshold`:
    matches, unmatched rows (tracks), unmatched columns (detections)."""
    if not len(tracks) or not len(detections):
        return [], list(range(len(tracks))), list(range(len(detections)))
    from scipy.optimize import linear_sum_assignment

    cost = 1 - iou_matrix(tracks, detections)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] <= threshold
    matches = list(zip(rows[keep].tolist(), cols[keep].tolist()))
    matched_rows, matched_cols = set(rows[keep].tolist()), set(cols[keep].tolist())
    return (matches, [r for r in range(cost.shape[0]) if r not in matched_rows],
            [c for c in range(cost.shape[1]) if c not in matched_cols])


class ByteTrack(Tracker):
    """high: the score that starts a track and enters the first association (weaker
    detections only extend tracks); new: the score a new track needs; buffer: frames a
    lost track is kept (scaled by the source's frame rate / 30, as the original)."""

    def __init__(self, fps: float = 30.0, high: float = 0.5, new: float = 0.6, buffer: int = 30,
                 match: float = 0.8, match_weak: float = 0.5, match_tentative: float = 0.7) -> None:
        self.high, self.new = high, new
        self.buffer = max(1, int(round(buffer * (fps if fps and fps > 0 else 30.0) / 30.0)))
        self.match, self.match_weak, self.match_tentative = match, match_weak, match_tentative
        self.frame = 0
        self.next_id = 1
        # Tracks as parallel arrays: Kalman means (T, 8) and covariances (T, 8, 8), ids,
        # first and last matched frames, confirmed or not.
        self.means = np.zeros((0, 8))
        self.covariances = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)
        self.first = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)

    # ---------------------------------------------------------------- Kalman filter
    def _predict(self) -> None:
        if not len(self.ids):
            return
        lost = self.last < self.frame - 1
        self.means[lost, 7] = 0.0  # a lost track's height stops changing (as the original)
        variance = _variance(self.means[:, 3], PROCESS)
        self.means[:, :4] += self.means[:, 4:]
        self.covariances = TRANSITION @ self.covariances @ TRANSITION.T
        self.covariances[:, _D8, _D8] += variance

    def _correct(self, tracks: np.ndarray, measured: np.ndarray) -> None:
        mean, covariance = self.means[tracks], self.covariances[tracks]
        projected = covariance[:, :4, :4].copy()  # H P H^T + R
        projected[:, _D4, _D4] += _variance(mean[:, 3], MEASUREMENT)
        gain = covariance[:, :, :4] @ np.linalg.inv(projected)  # P H^T S^-1
        self.means[tracks] = mean + np.einsum("tij,tj->ti", gain, measured - mean[:, :4])
        self.covariances[tracks] = covariance - gain @ covariance[:, :4, :]  # P - K S K^T = P - K H P

    def _start(self, measured: np.ndarray, confirmed: bool) -> np.ndarray:
        count = len(measured)
        ids = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        covariances = np.zeros((count, 8, 8))
        covariances[:, _D8, _D8] = _variance(measured[:, 3], INITIAL)
        self.means = np.concatenate([self.means, np.concatenate([measured, np.zeros((count, 4))], axis=1)])
        self.covariances = np.concatenate([self.covariances, covariances])
        self.ids = np.concatenate([self.ids, ids])
        self.first = np.concatenate([self.first, np.full(count, self.frame)])
        self.last = np.concatenate([self.last, np.full(count, self.frame)])
        self.confirmed = np.concatenate([self.confirmed, np.full(count, confirmed)])
        return np.arange(len(self.ids) - count, len(self.ids))

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("means", "covariances", "ids", "first", "last", "confirmed"):
            setattr(self, name, getattr(self, name)[keep])

    # ---------------------------------------------------------------- one frame
    def update(self, boxes, scores, classes):
        self.frame += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        track_of = np.full(len(scores), -1)  # row in the track arrays per detection
        self._predict()
        predicted = _corners(self.means)
        measured = _xyah(boxes)
        strong = np.flatnonzero(scores >= self.high)
        weak = np.flatnonzero(scores < self.high)
        confirmed = np.flatnonzero(self.confirmed)
        tentative = np.flatnonzero(~self.confirmed)

        # 1. confident detections against confirmed tracks, lost ones included
        matches, left_tracks, left_strong = _match(predicted[confirmed], boxes[strong], self.match)
        for t, d in matches:
            track_of[strong[d]] = confirmed[t]
        # 2. weak detections against the confirmed tracks still unmatched that were seen last frame
        recent = [confirmed[t] for t in left_tracks if self.last[confirmed[t]] == self.frame - 1]
        recent = np.asarray(recent, np.int64)
        matches, _, _ = _match(predicted[recent], boxes[weak], self.match_weak)
        for t, d in matches:
            track_of[weak[d]] = recent[t]
        # 3. the rest of the confident detections against last frame's tentative tracks
        rest = strong[left_strong]
        matches, _, left_rest = _match(predicted[tentative], boxes[rest], self.match_tentative)
        for t, d in matches:
            track_of[rest[d]] = tentative[t]
            self.confirmed[tentative[t]] = True

        matched = np.flatnonzero(track_of >= 0)
        if len(matched):
            self._correct(track_of[matched], measured[matched])
            self.last[track_of[matched]] = self.frame
        # 4. new tracks from confident detections nobody claimed
        starting = rest[left_rest]
        starting = starting[scores[starting] >= self.new]
        if len(starting):
            track_of[starting] = self._start(measured[starting], confirmed=self.frame == 1)

        # 5. end: tentative tracks not confirmed this frame, confirmed ones lost too long;
        #    and of two confirmed tracks on the same object (IoU > 0.85), the younger
        keep = np.where(self.confirmed, self.frame - self.last <= self.buffer, self.last == self.frame)
        keep &= ~self._duplicates()
        ended = self.ids[~keep & self.confirmed].tolist()
        identity = np.full(len(self.ids), -1)
        identity[keep] = np.arange(int(keep.sum()))
        rows = np.where(track_of >= 0, identity[np.maximum(track_of, 0)], -1)
        self._keep(keep)
        ids = np.where(rows >= 0, self.ids[np.maximum(rows, 0)], -1)
        ages = np.where(rows >= 0, self.frame - self.first[np.maximum(rows, 0)] + 1, 0)
        states = ["untracked" if r < 0 else "tracked" if self.confirmed[r] else "tentative" for r in rows]
        return ids, ages, states, ended

    def _duplicates(self) -> np.ndarray:
        """Tracks to drop because a longer-lived confirmed track covers the same object:
        a lost track that overlaps a tracked one (IoU > 0.85), the younger of the two."""
        drop = np.zeros(len(self.ids), bool)
        current = np.flatnonzero(self.confirmed & (self.last == self.frame))
        lost = np.flatnonzero(self.confirmed & (self.last < self.frame))
        if not len(current) or not len(lost):
            return drop
        boxes = _corners(self.means)
        pairs = np.argwhere(iou_matrix(boxes[current], boxes[lost]) > 0.85)
        for p, q in pairs:
            a, b = current[p], lost[q]
            older_current = self.frame - self.first[a] > self.last[b] - self.first[b]
            drop[b if older_current else a] = True
        return drop


def _variance(height: np.ndarray, model) -> np.ndarray:
    """(T,) box heights -> (T, K) noise variances of a (weights, constants) model."""
    weights, constants = model
    return (height[:, None] * weights + constants) ** 2


def _create(fps: float) -> ByteTrack:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        raise UserError("tracking (bytetrack) needs scipy: pip install 'edgecnn[track]'") from None
    return ByteTrack(fps)


TRACKER = TrackerType(name="bytetrack", create=_create,
                      summary="ByteTrack: Kalman + IoU, weak detections keep tracks alive")
