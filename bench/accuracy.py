"""How far a method's features are from kapre's, measured in float64.

Every comparable method hands over (batch, frames, features) arrays. Decibel configurations are
compared in dB directly; magnitude configurations by the largest difference relative to the
largest magnitude, and also in dB after kapre's own dB scaling (where a relative error turns
into a few hundredths of a dB only next to the -80 dB floor).

The arithmetic takes an array module `xp` (NumPy by default; CuPy compares GPU outputs where
they are, bench/gpu.py), and can go through the batch a few examples at a time (`chunk`) to
bound the float64 temporaries.
"""

from __future__ import annotations

import math

import numpy as np

# Bins this far above kapre's clipping floor (per-example max - dynamic range) count as "above
# the floor": float32 logs of tiny magnitudes differ by more there, and the anchors quote both.
FLOOR_MARGIN_DB = 20.0


def kapre_db(magnitude, amin=1e-5, ref_value=1.0, dynamic_range=80.0, xp=np):
    """kapre.backend.magnitude_to_decibel in float64: 10 log10(max(x, amin)) - 10 log10(max(amin,
    ref)), clipped at each example's maximum minus `dynamic_range`."""
    x = xp.asarray(magnitude, dtype=xp.float64)
    db = 10.0 * xp.log10(xp.maximum(x, amin)) - 10.0 * np.log10(max(amin, ref_value))
    peak = db.max(axis=tuple(range(1, db.ndim)), keepdims=True)
    return xp.maximum(db, peak - dynamic_range)


def compare(features, reference, config, xp=np, chunk=None) -> dict:
    """Differences of `features` from kapre's `reference` (both (batch, frames, features)), in
    float64; `chunk` examples at a time (None: the whole batch at once). Every figure is per
    example or a maximum, so the result does not depend on `chunk`."""
    if tuple(features.shape) != tuple(reference.shape):
        return {
            'comparable': False,
            'why': f"shape {tuple(features.shape)} differs from kapre's {tuple(reference.shape)}",
        }
    batch = features.shape[0]
    step = max(1, chunk or batch)
    parts = [
        _differences(features[i : i + step], reference[i : i + step], config, xp)
        for i in range(0, max(batch, 1), step)
    ]
    result = {'comparable': True}
    non_finite = sum(part['non_finite'] for part in parts)
    if non_finite:
        result['non_finite'] = non_finite
    if not config.decibel:
        result['max_rel'] = _worst(p['max_abs'] for p in parts) / (
            _worst(p['scale'] for p in parts) or 1.0
        )
    result['max_abs_db'] = _worst(part['max_abs_db'] for part in parts)
    above = [p['max_abs_db_above_floor'] for p in parts if p['max_abs_db_above_floor'] is not None]
    result['max_abs_db_above_floor'] = _worst(above) if above else None
    return result


def _differences(features, reference, config, xp) -> dict:
    """The raw figures of `compare` on some examples."""
    a = xp.asarray(features, dtype=xp.float64)
    b = xp.asarray(reference, dtype=xp.float64)
    part = {'non_finite': int(a.size - int(xp.count_nonzero(xp.isfinite(a))))}
    if config.decibel:
        a_db, b_db = a, b
    else:
        part['scale'] = float(xp.max(xp.abs(b)))
        part['max_abs'] = float(xp.max(xp.abs(a - b)))
        a_db = kapre_db(a, config.db_amin, config.db_ref_value, config.db_dynamic_range, xp)
        b_db = kapre_db(b, config.db_amin, config.db_ref_value, config.db_dynamic_range, xp)
    difference = xp.abs(a_db - b_db)
    part['max_abs_db'] = float(xp.max(difference))
    floor = b_db.max(axis=tuple(range(1, b_db.ndim)), keepdims=True) - config.db_dynamic_range
    above = b_db >= floor + FLOOR_MARGIN_DB
    part['max_abs_db_above_floor'] = float(xp.max(difference[above])) if bool(above.any()) else None
    return part


def _worst(values) -> float:
    """The largest value; NaN when any is NaN (as NumPy's max over the whole batch)."""
    values = list(values)
    return math.nan if any(math.isnan(v) for v in values) else max(values)
