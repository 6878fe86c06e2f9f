"""Moved to :mod:`curate.shots.dissolve`; this name stays while parallel branches still import it."""

import sys

from curate.shots import dissolve as _moved

sys.modules[__name__] = _moved
