"""The fast subset of the hostile-input corpus through the offline pipeline, in one folder, in one run: exit 0, no
traceback on stderr, and every input accounted for with the outcome it should get (a kept video, or a rejected
row with a specific reason). ``benchmarks/hostile_inputs.py`` runs the whole corpus and reports the same checks;
both make the inputs with ``benchmarks/hostile_corpus.py``, which says what each one is and expects.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ffmpeg_media import need_ffmpeg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from hostile_corpus import SUBSETS, build  # noqa: E402
from hostile_inputs import Rows, account, run_curate  # noqa: E402

#: the subset's run takes 30-60 s on 2 cores; far more means a hang (a FIFO opened for reading, a decode loop)
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, videos_dir):
    """The CI subset made, run once with 2 workers, and every input's outcome read back: (corpus, result, outcomes)."""
    need_ffmpeg()
    work = tmp_path_factory.mktemp("hostile")
    corpus = build(work / "corpus", "ci", videos_dir=videos_dir)
    assert len(corpus.items) >= 20  # a filesystem may refuse a few names, never most of the corpus
    result = run_curate(corpus, work / "run", TIMEOUT_S, workers=2)
    return corpus, result, account(corpus, Rows.read(work / "run"))


def _stderr_tail(result) -> str:
    return result.stderr[-3000:]


def test_the_ci_subset_has_20_inputs_of_every_kind():
    subset, everything = SUBSETS["ci"], SUBSETS["all"]
    assert len(subset) >= 20 and len(everything) >= 60
    assert {i.kind for i in subset} == {i.kind for i in everything}
    assert len({i.id for i in everything}) == len(everything)
    assert len({i.path for i in everything}) == len(everything)
    expectations = {i.expect.split(":")[0] for i in subset}
    assert {"kept", "rejected", "either"} <= expectations


@pytest.mark.slow
def test_the_run_exits_0_in_time(hostile_run):
    _, result, _ = hostile_run
    assert not result.timed_out, f"curate run did not end within {TIMEOUT_S} s:\n{_stderr_tail(result)}"
    assert result.signal is None, f"curate run was killed by {result.signal}:\n{_stderr_tail(result)}"
    assert result.returncode == 0, f"curate run exited {result.returncode}:\n{_stderr_tail(result)}"


@pytest.mark.slow
def test_no_traceback_on_stderr(hostile_run):
    _, result, _ = hostile_run
    assert result.tracebacks() == [], _stderr_tail(result)


@pytest.mark.slow
def test_every_input_is_accounted_for(hostile_run):
    """No silent loss: each input has a row (clips, or a reject) and each clip split made reaches the end or a
    reject."""
    _, _, outcomes = hostile_run
    lost = [f"{o.id} ({o.path!r}): {'; '.join(p for p in o.problems if p.startswith('silent loss'))}"
            for o in outcomes if any(p.startswith("silent loss") for p in o.problems)]
    assert not lost, "inputs lost in silence:\n" + "\n".join(lost)


@pytest.mark.slow
def test_every_input_gets_its_outcome_with_a_specific_reason(hostile_run):
    """Kept videos are kept (and their clips readable), bad inputs are rejected with the reason they deserve, and no
    reason is a catch-all (``<stage>_error``, ``<stage>_worker_crashed``)."""
    _, _, outcomes = hostile_run
    wrong = [f"{o.id} ({o.path!r}), expected {o.expect}: {'; '.join(o.problems)}"
             f"{f' [{o.details[0]}]' if o.details else ''}" for o in outcomes if o.problems]
    assert not wrong, f"{len(wrong)} of {len(outcomes)} inputs:\n" + "\n".join(wrong)
