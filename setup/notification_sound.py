"""Writes web/static/sounds/notify.wav, the cabinet's notification chime: two short sine tones
with a soft attack and decay, 16 kHz mono 16-bit, a few kilobytes, no licence to track.

    .venv/bin/python -m setup.notification_sound
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
TONES = ((880.0, 0.09), (1318.5, 0.16))  # A5 then E6: rising, short, not alarming
VOLUME = 0.35
TARGET = Path(__file__).resolve().parents[1] / "web" / "static" / "sounds" / "notify.wav"


def samples() -> list[int]:
    out: list[int] = []
    for frequency, seconds in TONES:
        count = int(RATE * seconds)
        for i in range(count):
            envelope = min(1.0, i / (RATE * 0.005)) * math.exp(-4.0 * i / count)
            out.append(int(32767 * VOLUME * envelope * math.sin(2 * math.pi * frequency * i / RATE)))
    return out


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(TARGET), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples()))


if __name__ == "__main__":
    main()
