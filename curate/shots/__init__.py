"""Shot detection: the detectors (one protocol, one registry), the cascade that runs them over one decode, and the
planning of clips between the cuts and transitions they find."""
