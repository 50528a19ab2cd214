"""The architecture as a test: the import contract and the types (ARCHITECTURE.md).

Both run the real tools over the real tree, so `make test` fails on an upward
import or a type error exactly as `make lint` would; the contracts and the mypy
settings live in pyproject.toml, not here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():  # pragma: no cover - the dev extra installs both
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: run `make setup`")
        return found
    return str(path)


def test_layers_import_only_downwards() -> None:
    done = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_product_module_type_checks() -> None:
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


# The receiver validates a survey (document and WAV headers) with the core
# alone: neither it nor that check may drag the audio stack into its process.
_NO_AUDIO = """
import base64, io, sys, wave
import dialer.receiver.app
from dialer.core.campaign import CampaignIn
from dialer.services.ingest import validate_bot
buf = io.BytesIO()
with wave.open(buf, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(1600))
survey = {"document": {"questions": [{"id": "q1", "prompt": "q1.wav", "keys": ["1", "2"]}]},
          "prompts": {"q1.wav": base64.b64encode(buf.getvalue()).decode()}}
spec = CampaignIn(account="a", bot="survey:csat", survey=survey, contacts=[{"to": "+911"}])
document, wavs = validate_bot(spec)
assert document is not None and list(wavs) == ["q1.wav"], (document, wavs)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "soxr", "streamer"))
print(",".join(loaded))
"""


def test_the_receiver_validates_a_survey_without_the_audio_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _NO_AUDIO], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == "", f"loaded on the receiver's path: {done.stdout.strip()}"
