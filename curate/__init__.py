"""curate: video dataset curation (split, score, caption, filter) in the style of Stable Video Diffusion's LVD."""

__version__ = "0.1.0"
