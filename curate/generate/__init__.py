"""Close the loop: generate videos from curated captions with a diffusers text-to-video model, then score them.

    curate generate runs/full --out gen/ms --model ali-vilab/text-to-video-ms-1.7b --sample 32
    curate evaluate gen/ms                       # CLIP score vs prompt and vs the real clip, consistency, motion

``prompts`` selects captions, ``pipeline`` loads and runs the model and writes mp4s, ``run`` spreads batches over
Dask GPU workers (resumable), ``metrics`` holds the scores' formulas, ``evaluate`` applies them, ``sweep`` runs
a grid of settings; ``cli_generate`` and ``cli_evaluate`` are the two commands.
"""
