"""Presidio, the real consumer: its AnalyzerEngine on a saved spaCy pipeline holding direct_ner
(Presidio's spaCy NLP engine), against Presidio's own transformers NLP engine on the same
torch checkpoint, side by side on the same glued texts. Only the NLP engine's recognizer
runs (Presidio's regex recognizers would find e-mails on their own), so the numbers are the
model's: the share of values found with exactly their offsets and type, and words/s.

- Rampart (ONNX only, so Presidio's transformers engine cannot read it): e-mails and phone
  numbers of scripts/glued_values.py, direct_ner "tokens" (the default) and "split";
- a torch CoNLL checkpoint (default ../shared/models/minilm-conll03): person and place names
  glued to punctuation, Presidio's transformers engine (its default alignment "expand")
  against direct_ner "split".

  python scripts/presidio_compare.py --conll-model ../shared/models/minilm-conll03
"""
import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from glued_values import Value, glued_texts, has_inner_edge, rampart_dir  # noqa: E402
from harness import words_per_second  # noqa: E402

RAMPART_TO_PRESIDIO = {"EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "GIVEN_NAME": "PERSON", "SURNAME": "PERSON"}
CONLL_TO_PRESIDIO = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
NAMES = ["Emily Chen", "John Smith", "Maria Garcia", "Ahmed Khan", "Olivia Brown"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Chicago"]
NAME_SLOTS = ["Name:{v};", "({v})", "<{v}>", "Contact:{v},", "{v}/", "name {v} ,"]
NAME_SENTENCES = ["The form listed {slot} as the owner.", "We wrote {slot} yesterday.", "Ask {slot} about it."]


def name_texts(seed: int = 0, n: int = 200) -> List[Tuple[str, List[Value]]]:
    """Sentences with one person or place name, glued to punctuation in most slots."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        value, kind = (rng.choice(NAMES), "PERSON") if i % 2 else (rng.choice(CITIES), "LOCATION")
        before, _, after = rng.choice(NAME_SLOTS).partition("{v}")
        head, _, tail = rng.choice(NAME_SENTENCES).partition("{slot}")
        start = len(head) + len(before)
        texts.append((head + before + value + after + tail, [(start, start + len(value), kind)]))
    return texts


def saved_pipeline(model: Path, mode: str, target: Path) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(model), "alignment_mode": mode})
    nlp.to_disk(target)
    return target


def spacy_analyzer(pipeline: Path, mapping: Dict[str, str]):
    """Presidio's AnalyzerEngine on a saved spaCy pipeline (its spaCy NLP engine)."""
    return _analyzer({
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": str(pipeline)}],
        "ner_model_configuration": {"model_to_presidio_entity_mapping": mapping},
    })  # fmt: skip


def transformers_analyzer(spacy_pipeline: Path, model: Path, mapping: Dict[str, str]):
    """Presidio's AnalyzerEngine with its own transformers NLP engine on a torch checkpoint."""
    return _analyzer({
        "nlp_engine_name": "transformers",
        "models": [{"lang_code": "en", "model_name": {"spacy": str(spacy_pipeline), "transformers": str(model)}}],
        "ner_model_configuration": {"model_to_presidio_entity_mapping": mapping},
    })  # fmt: skip


def _analyzer(configuration: dict):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    registry.recognizers = [r for r in registry.recognizers if r.name in ("SpacyRecognizer", "TransformersRecognizer")]
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def found_values(analyzer, texts: List[Tuple[str, List[Value]]]) -> Tuple[List[List[Value]], float]:
    """Presidio's results per text as (start, end, entity type), and words/s."""
    clock = time.perf_counter()
    found = [[(r.start, r.end, r.entity_type) for r in analyzer.analyze(text, language="en")] for text, _ in texts]
    seconds = time.perf_counter() - clock
    return found, words_per_second(sum(len(text.split()) for text, _ in texts), seconds)


def exact_shares(texts, found, mapping: Dict[str, str] = None) -> Dict[str, float]:
    """Percent of the values found with exactly their offsets and (Presidio) type: those with an
    edge inside a spaCy token ("glued") and the others ("spaced")."""
    mapping, blank = mapping or {}, spacy.blank("en")
    hits: Dict[bool, List[bool]] = {True: [], False: []}
    for (text, values), f in zip(texts, found):
        doc = blank(text)
        for s, e, kind in values:
            hits[has_inner_edge(doc, (s, e, kind))].append((s, e, mapping.get(kind, kind)) in set(f))
    return {f"{edge} exact %": round(100 * sum(hits[inner]) / max(1, len(hits[inner])), 1) for edge, inner in (("glued", True), ("spaced", False))}


def compare(conll_model: Path, sentences: int) -> Dict[str, Dict[str, float]]:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pii = glued_texts(0, sentences)
        for mode in ("tokens", "split"):
            analyzer = spacy_analyzer(saved_pipeline(rampart_dir(), mode, tmp / f"rampart-{mode}"), RAMPART_TO_PRESIDIO)
            analyzer.analyze(pii[0][0], language="en")  # loads the model
            found, words_per_s = found_values(analyzer, pii)
            rows[f"Rampart, Presidio spaCy engine, direct_ner {mode}"] = {**exact_shares(pii, found, RAMPART_TO_PRESIDIO), "words/s": round(words_per_s)}
        names = name_texts(0, sentences)
        blank = tmp / "blank"
        spacy.blank("en").to_disk(blank)
        systems = {
            "CoNLL model, Presidio transformers engine": transformers_analyzer(blank, conll_model, CONLL_TO_PRESIDIO),
            "CoNLL model, Presidio spaCy engine, direct_ner split": spacy_analyzer(saved_pipeline(conll_model, "split", tmp / "conll"), CONLL_TO_PRESIDIO),
        }
        for name, analyzer in systems.items():
            analyzer.analyze(names[0][0], language="en")
            found, words_per_s = found_values(analyzer, names)
            rows[name] = {**exact_shares(names, found), "words/s": round(words_per_s)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conll-model", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models" / "minilm-conll03")
    parser.add_argument("--sentences", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(compare(args.conll_model, args.sentences), indent=2))


if __name__ == "__main__":
    main()
