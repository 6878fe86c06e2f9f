"""Plain functions that score a clip from frames it is given (no decoding here): what the picture is like
(``picture``: blank, frozen, black bars, sharpness), how the camera moves (``camera``, from a flow field) and which
text stays in place (``overlay``, from OCR boxes). Stages in ``curate.stages`` call them; tests call them directly."""
