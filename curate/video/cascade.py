"""Moved to :mod:`curate.shots.cascade`; this name stays while parallel branches still import it."""

import sys

from curate.shots import cascade as _moved

sys.modules[__name__] = _moved
