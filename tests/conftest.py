import os

# numba compiles on first call; property tests must not time out on it
from hypothesis import settings

settings.register_profile("default", deadline=None, derandomize=True)
settings.load_profile("default")
os.environ.setdefault("MPLBACKEND", "Agg")
