#!/usr/bin/env bash
# `spacy package` end to end, as a user would: save a direct_ner pipeline, build its wheel,
# list the wheel's size and requirements, install it next to this package in a fresh
# virtual environment and spacy.load it offline, with the original checkpoint gone.
#   scripts/check_spacy_package.sh MODEL_DIR [TEXT]
# Slow (a fresh venv installs spaCy, transformers and torch); needs `pip install build`.
set -euo pipefail
MODEL=${1:?usage: scripts/check_spacy_package.sh MODEL_DIR [TEXT]}
TEXT=${2:-"Angela Merkel flew to Paris to meet the United Nations."}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cp -r "$MODEL" "$WORK/checkpoint"
python - "$WORK/checkpoint" "$WORK/pipeline" "$TEXT" <<'PY'
import sys, spacy
nlp = spacy.blank("en")
nlp.add_pipe("direct_ner", config={"model": sys.argv[1]})
nlp.meta["name"] = "direct_ner_demo"
print("entities before packaging:", [(e.text, e.label_) for e in nlp(sys.argv[3]).ents])
nlp.to_disk(sys.argv[2])
PY
rm -rf "$WORK/checkpoint"  # the wheel must carry everything
mkdir "$WORK/packages"
python -m spacy package "$WORK/pipeline" "$WORK/packages" --build wheel > "$WORK/package.log" 2>&1 || { tail -30 "$WORK/package.log"; exit 1; }
WHEEL=$(ls "$WORK"/packages/*/dist/*.whl)
echo "wheel: $(basename "$WHEEL"), $(du -h "$WHEEL" | cut -f1)"
python - "$WHEEL" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    meta = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    closed = [i.filename for i in wheel.infolist() if (i.external_attr >> 16) & 0o444 != 0o444]
print("requirements:", [l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("Requires-Dist:")])
print("files not readable by others:", closed)
PY
python -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q torch==2.13.0  # the CPU wheel first, as in the README
"$WORK/venv/bin/pip" install -q "$ROOT" "$WHEEL"
cd "$WORK"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$WORK/venv/bin/python" - "$TEXT" <<'PY'
import sys, spacy
nlp = spacy.load("en_direct_ner_demo")
print("fresh venv, offline, spacy.load('en_direct_ner_demo'):", [(e.text, e.label_) for e in nlp(sys.argv[1]).ents])
PY
