"""curate inspect RUN --out DIR [--serve --port N]: write a browsable report of a run (see curate.inspect).

    curate inspect runs/demo --out runs/demo-report                    # open runs/demo-report/index.html
    curate inspect runs/demo --out runs/demo-report --serve --port 8000   # or serve it: http://127.0.0.1:8000/

The report shows the funnel (videos -> clips -> kept after each step, rejected per step and reason), a gallery
per step and reason and of the kept clips (animated previews, scores, captions, source and span; sort by any
score; pages loaded on demand), and per filter step the score histograms with what-if thresholds: the counts
kept for other thresholds and the `curate run ... --only filter --set 'filter.rules=[...]'` command that applies
them. It works from file:// with no network. Previews are made with Dask and cached in DIR/previews.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (made by curate run --out RUN)")
    parser.add_argument("--out", required=True, metavar="DIR", help="report folder (DIR/index.html; previews cached)")
    parser.add_argument("--config", metavar="CONFIG.yaml", help="config named in the re-filter command (default: a "
                        "configs/*.yaml whose pipeline has the run's steps)")
    parser.add_argument("--no-previews", action="store_true", help="no clip previews (no video is decoded)")
    parser.add_argument("--serve", action="store_true", help="serve DIR over HTTP after writing it (Ctrl-C stops)")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000; 0 picks a free one)")
    parser.add_argument("--bind", default="127.0.0.1", help="address for --serve (default 127.0.0.1)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler for the previews")
    parser.add_argument("--workers", type=int, help="local cluster worker processes (default: one per core)")


def main(args: argparse.Namespace) -> int:
    from curate.inspect.report import build_report, previews_needed
    from curate.runner import start_client

    out = Path(args.out)
    previews = not args.no_previews
    if previews and previews_needed(args.run, out):
        with start_client(args.scheduler, args.workers, quiet=True) as client:
            index = build_report(args.run, out, client, config=args.config, previews=True)
    else:
        index = build_report(args.run, out, None, config=args.config, previews=previews)
    print(f"report: {index.resolve()} (open it in a browser; it needs no server and no network)")
    if args.serve:
        serve(out, args.bind, args.port)
    return 0


def serve(folder: Path, bind: str, port: int) -> None:
    """Serve ``folder`` over HTTP until interrupted, printing its URL."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer((bind, port), handler) as server:
        host, actual = server.server_address[:2]
        print(f"serving {folder} at http://{host}:{actual}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
