"""The seven FER2013 emotions and the one place that turns user spellings into class indices.

Every loader, CLI flag and config field goes through :func:`emotion_index`, so a typo such as
``--target disgusted`` either resolves to the canonical class or fails with one clear message.
"""

from __future__ import annotations

#: Canonical class names in FER2013 label order (0 Angry ... 6 Neutral).
EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

# Spellings seen in FER2013 variants (Kaggle image folders, FER+ column names, AffectNet-style names).
_ALIASES: dict[str, int] = {
    "angry": 0, "anger": 0,
    "disgust": 1, "disgusted": 1,
    "fear": 2, "fearful": 2, "afraid": 2,
    "happy": 3, "happiness": 3,
    "sad": 4, "sadness": 4,
    "surprise": 5, "surprised": 5,
    "neutral": 6,
}  # fmt: skip


class UnknownEmotionError(ValueError):
    """Raised for a class name that is none of the seven emotions (nor a known alias)."""


def emotion_index(name: str | int) -> int:
    """Return the FER2013 label of ``name`` (case-insensitive name, alias, or ``"0".."6"``)."""
    if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit()):
        value = int(name)
        if 0 <= value < len(EMOTIONS):
            return value
        raise UnknownEmotionError(f"unknown emotion label {value!r}: labels are 0..{len(EMOTIONS) - 1}")
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    valid = ", ".join(e.lower() for e in EMOTIONS)
    raise UnknownEmotionError(f"unknown emotion {name!r}: expected one of {valid}")


def emotion_name(label: int) -> str:
    """Canonical name of a label; the inverse of :func:`emotion_index`."""
    return EMOTIONS[emotion_index(label)]
