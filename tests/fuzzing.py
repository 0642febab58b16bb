"""What the fuzz tests share (test_fuzz*.py): their hypothesis settings and attribute
strategies. Imports hypothesis: import this after pytest.importorskip('hypothesis')."""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz_settings(default_examples: int):
    """default_examples examples per test (KAPRE_FAST_FUZZ_EXAMPLES overrides it, e.g. 100000
    for a long local run). CI replays the same examples every run; KAPRE_FAST_FUZZ_RANDOM=1
    draws new ones (long runs)."""
    return settings(
        max_examples=int(os.environ.get('KAPRE_FAST_FUZZ_EXAMPLES', str(default_examples))),
        deadline=None,
        derandomize='KAPRE_FAST_FUZZ_RANDOM' not in os.environ,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Sizes: mostly small and valid-ish, sometimes absurd.
int_attr = st.one_of(
    st.integers(-3, 600), st.sampled_from([0, 1, 2, 2**16, 2**16 + 1, 2**31 - 1, -(2**31), 2**40])
)


def floats_and(specials):
    """Floats in [-10, 200] and the `specials` (zeros, NaN, infinities, ...)."""
    return st.one_of(st.floats(-10, 200), st.sampled_from(specials))


EVERY_SPECIAL = [0.0, -0.0, float('nan'), float('inf'), -float('inf'), 1e-38]
