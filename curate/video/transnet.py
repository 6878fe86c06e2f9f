"""Moved to :mod:`curate.shots.transnet`; this name stays while parallel branches still import it."""

import sys

from curate.shots import transnet as _moved

sys.modules[__name__] = _moved
