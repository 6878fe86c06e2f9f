"""Technical facts from the header: real fixtures, and HDR (PQ, HLG) and 10-bit files made with ffmpeg."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.stages.ingest import Ingest
from curate.video.facts import stream_facts
from tests.scores.made import ffmpeg
from tests.stages.contract import check_output


def test_facts_of_real_fixtures(video):
    cockatoo = stream_facts(video("imageio_cockatoo.mp4"))
    assert (cockatoo.profile, cockatoo.pix_fmt, cockatoo.bit_depth, cockatoo.hdr) == ("High 4:4:4 Predictive",
                                                                                     "yuv444p", 8, "sdr")
    assert 300_000 < cockatoo.bit_rate < 500_000
    chaplin = stream_facts(video("moviepy_chaplin.mp4"))
    assert chaplin.audio_channels == 2 and chaplin.profile == "High"
    assert stream_facts(video("opencv_vtest.avi")).audio_channels == 0
    assert stream_facts(video("psd_fades.mp4")).profile == "Simple Profile"  # MPEG-4 Part 2


@pytest.mark.parametrize("transfer, hdr", [("smpte2084", "pq"), ("arib-std-b67", "hlg"), ("bt709", "sdr")])
def test_hdr_transfer_and_bit_depth(tmp_path, transfer, hdr):
    path = tmp_path / f"{hdr}.mp4"
    primaries = "bt709" if hdr == "sdr" else "bt2020"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=128x72:d=1", "-c:v", "libx265", "-x265-params", "log-level=error",
           "-pix_fmt", "yuv420p10le", "-color_primaries", primaries, "-color_trc", transfer,
           "-colorspace", "bt2020nc" if hdr != "sdr" else "bt709", str(path))
    facts = stream_facts(path)
    assert (facts.transfer, facts.hdr, facts.primaries, facts.bit_depth) == (transfer, hdr, primaries, 10)
    assert facts.pix_fmt == "yuv420p10le" and facts.profile == "Main 10" and facts.bit_rate > 0


def test_ingest_rows_carry_the_facts(video):
    stage = Ingest(inputs=[str(video("moviepy_chaplin.mp4")), str(video("psd_issue-195-aspect-ratio.mp4"))])
    table = pa.concat_tables(stage.plan())
    out = stage.process(table)
    check_output(stage, table, out)
    rows = {r["video_path"].rsplit("/", 1)[-1]: r for r in out.kept.to_pylist()}
    assert rows["moviepy_chaplin.mp4"]["audio_channels"] == 2 and rows["moviepy_chaplin.mp4"]["hdr"] == "sdr"
    assert abs(rows["moviepy_chaplin.mp4"]["display_aspect"] - 16 / 9) < 0.01
    assert abs(rows["psd_issue-195-aspect-ratio.mp4"]["display_aspect"] - 1024 / 576) < 0.01  # 16:11 pixels
    assert all(r["bit_rate"] > 0 and r["bit_depth"] == 8 and r["pix_fmt"] == "yuv420p" for r in rows.values())
