"""Moved to :mod:`curate.shots.clips`; this name stays while parallel branches still import it."""

import sys

from curate.shots import clips as _moved

sys.modules[__name__] = _moved
