"""Inspect a run in a browser: what each step kept and rejected and why, and what other thresholds would keep.

    curate inspect runs/demo --out runs/demo-report             # then open runs/demo-report/index.html
    curate inspect runs/demo --out runs/demo-report --serve --port 8000

    from curate.inspect.report import build_report
    build_report("runs/demo", "runs/demo-report")

``data`` reads the run folder (funnel, galleries' rows, filter rules and scores), ``previews`` makes the animated
clip previews (in parallel with Dask, cached), ``report`` writes the page and its data files, ``command`` is the
CLI. The page itself is ``assets/`` (plain HTML, JavaScript and CSS; nothing is fetched from the network).
"""
