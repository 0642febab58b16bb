"""How far a method's features are from kapre's, measured in float64.

Every comparable method hands over (batch, frames, features) arrays. Decibel configurations are
compared in dB directly; magnitude configurations by the largest difference relative to the
largest magnitude, and also in dB after kapre's own dB scaling (where a relative error turns
into a few hundredths of a dB only next to the -80 dB floor).
"""

from __future__ import annotations

import numpy as np

# Bins this far above kapre's clipping floor (per-example max - dynamic range) count as "above
# the floor": float32 logs of tiny magnitudes differ by more there, and the anchors quote both.
FLOOR_MARGIN_DB = 20.0


def kapre_db(magnitude, amin=1e-5, ref_value=1.0, dynamic_range=80.0) -> np.ndarray:
    """kapre.backend.magnitude_to_decibel in float64: 10 log10(max(x, amin)) - 10 log10(max(amin,
    ref)), clipped at each example's maximum minus `dynamic_range`."""
    x = np.asarray(magnitude, dtype=np.float64)
    db = 10.0 * np.log10(np.maximum(x, amin)) - 10.0 * np.log10(max(amin, ref_value))
    peak = db.max(axis=tuple(range(1, db.ndim)), keepdims=True)
    return np.maximum(db, peak - dynamic_range)


def compare(features, reference, config) -> dict:
    """Differences of `features` from kapre's `reference` (both (batch, frames, features))."""
    a = np.asarray(features, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return {'comparable': False, 'why': f'shape {a.shape} differs from kapre\'s {b.shape}'}
    result = {'comparable': True}
    if not np.all(np.isfinite(a)):
        result['non_finite'] = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    if config.decibel:
        a_db, b_db = a, b
    else:
        scale = float(np.max(np.abs(b))) or 1.0
        result['max_rel'] = float(np.max(np.abs(a - b))) / scale
        a_db = kapre_db(a, config.db_amin, config.db_ref_value, config.db_dynamic_range)
        b_db = kapre_db(b, config.db_amin, config.db_ref_value, config.db_dynamic_range)
    difference = np.abs(a_db - b_db)
    result['max_abs_db'] = float(np.max(difference))
    floor = b_db.max(axis=tuple(range(1, b_db.ndim)), keepdims=True) - config.db_dynamic_range
    above = b_db >= floor + FLOOR_MARGIN_DB
    result['max_abs_db_above_floor'] = float(np.max(difference[above])) if above.any() else None
    return result
