"""Every message the package raises, in one place: what went wrong and the fix, headed by
the component that raised it ("[direct_tagger E002] ...") and with examples that fit it
(a POS checkpoint for direct_tagger, a sentiment one for direct_textcat, an NER one for
direct_ner, a sentence encoder for direct_vectors).

Who speaks is a context variable: a component's entry points (base.DirectPipe) and its
factory run `with speaking_for("direct_tagger"):`, so every message raised below them, in
loading, labels, manifest or int8 code that knows nothing of components, is headed by the
component's factory name. Code that runs outside any component speaks for the package.
"""
import contextlib
import contextvars
import functools
import inspect
import re
from typing import Callable, Dict, Iterable, Iterator, NamedTuple

PACKAGE = "spacy_direct_use"
_CODE = re.compile(r"[EW]\d+")


class DirectUseError(ValueError):
    """A misuse of a spacy-direct-use component: bad config, unusable checkpoint, device or input."""


DirectNERError = DirectUseError
"""The name from when direct_ner was the only component; `except DirectNERError` still works."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """An exception's first line for a message (its type where it says nothing), cut at `limit`."""
    text = str(err).strip()
    line = text.splitlines()[0].rstrip(".") if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class Examples(NamedTuple):
    """What a message suggests to a component: a hub checkpoint it takes, and labels in id order."""

    model: str
    labels: str


EXAMPLES: Dict[str, Examples] = {
    "direct_ner": Examples("dslim/bert-base-NER", '["O", "B-PER", "I-PER", "B-ORG", "I-ORG", ...]'),
    "direct_tagger": Examples("vblagoje/bert-english-uncased-finetuned-pos", '["ADJ", "ADP", "ADV", "AUX", ...]'),
    "direct_textcat": Examples("distilbert-base-uncased-finetuned-sst-2-english", '["NEGATIVE", "POSITIVE"]'),
    "direct_vectors": Examples("sentence-transformers/all-MiniLM-L6-v2", "[...]"),  # an encoder has no labels
    "direct_rel": Examples("jackboyla/glirel-large-v0", '["Work_For", "Live_In", "Located_In"]'),
}
"""Per factory name; a speaker not listed (the package itself) gets direct_ner's."""

_SPEAKER: "contextvars.ContextVar[str]" = contextvars.ContextVar("spacy_direct_use_speaker", default=PACKAGE)


@contextlib.contextmanager
def speaking_for(component: str) -> Iterator[None]:
    """Head the messages raised inside the block "[<component> Exxx] " (a factory name)."""
    token = _SPEAKER.set(component)
    try:
        yield
    finally:
        _SPEAKER.reset(token)


def speaker() -> str:
    """The component whose work is running: a factory name, or "spacy_direct_use" outside any."""
    return _SPEAKER.get()


def examples_for(component: str) -> Examples:
    return EXAMPLES.get(component, EXAMPLES["direct_ner"])


def speaking_methods(cls: type, names: Iterable[str]) -> None:
    """Run each method in `names` that `cls` has (its own or inherited) `with speaking_for(...)`
    its instance's `factory_name()`: a component's entry points (base.DirectPipe does this for
    every component class). Not for generators: the context must not span a yield."""
    for name in names:
        method = getattr(cls, name, None)  # its own, or a mixin's
        if inspect.isfunction(method) and not getattr(method, "speaks", False):
            setattr(cls, name, _speaking(method))


def _speaking(method: Callable) -> Callable:
    @functools.wraps(method)
    def speaking(self, *args, **kwargs):
        with speaking_for(type(self).factory_name()):
            return method(self, *args, **kwargs)

    speaking.speaks = True  # type: ignore[attr-defined]
    return speaking


class Message(str):
    """A message template whose `format()` also fills {component}, {example_model} and
    {example_labels} for the component that speaks, unless the caller gives them."""

    speaker_fields: Dict[str, str] = {}

    def format(self, *args, **kwargs) -> str:  # type: ignore[override]
        return str.format(self, *args, **{**self.speaker_fields, **kwargs})


class ErrorsWithCodes(type):
    """Reading a code such as `Errors.E004` gives its message headed "[direct_tagger E004] "
    (the speaker, see `speaking_for`), so users can search for it; as spaCy's own
    `spacy.errors.ErrorsWithCodes` does for "[E004]"."""

    def __getattribute__(self, name: str):
        message = super().__getattribute__(name)
        if not _CODE.fullmatch(name):
            return message
        component = speaker()
        examples = examples_for(component)
        headed = Message(f"[{component} {name}] {message}")
        headed.speaker_fields = {"component": component, "example_model": examples.model, "example_labels": examples.labels}
        return headed


class Errors(metaclass=ErrorsWithCodes):
    E001 = (
        "No model given. The component needs a fine-tuned Hugging "
        "Face checkpoint, by hub name or local directory, e.g.\n    {example}"
    )
    E002 = (
        "The model directory '{path}' does not exist. Check the "
        "path, or pass a hub name such as '{example_model}' in "
        "config={{\"model\": ...}}."
    )
    E003 = (
        "Could not load '{name}' (revision {revision}): it is not a "
        "local directory and could not be fetched from the Hugging Face hub "
        "({reason}). If you are offline (HF_HUB_OFFLINE=1), download it first or "
        "pass the local directory: config={{\"model\": \"/path/to/model\"}}."
    )
    E004 = (
        "'{name}' is not a {kind}: its architectures are "
        "{architectures}. {component} needs a checkpoint fine-tuned for {task} "
        "(an *{suffix} model, e.g. '{example_model}').{hint}"
    )
    E005 = (
        "'{name}' has an untrained classification head: {detail}. "
        "Its predictions would be random. Use a fine-tuned checkpoint "
        "(e.g. '{example_model}'), or fine-tune this one first. With no training "
        "at all, the same checkpoint gives sentence vectors: nlp.add_pipe("
        "\"direct_vectors\", config={{\"model\": \"{name}\"}}); and categories "
        "of your choosing come from direct_textcat with labels on an NLI or "
        "sentence-embedding checkpoint: nlp.add_pipe(\"direct_textcat\", "
        "config={{\"model\": \"sentence-transformers/all-MiniLM-L6-v2\", "
        "\"labels\": [\"sports\", \"politics\"]}}). If you know the head is "
        "trained, load it anyway: config={{\"check_head\": false}}."
    )
    E006 = (
        "The tokenizer of '{name}' ({cls}) is not a fast tokenizer "
        "and cannot tell which pieces belong to which word (word_ids()), which "
        "{component} needs to line the model's pieces up with spaCy tokens. Save the checkpoint with a tokenizer.json "
        "(AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir))."
    )
    E007 = (
        "The labels of '{name}' fit no tagging scheme: {detail}. "
        "{component} supports BIO (IOB2), BIOES/BILOU and plain IO labels with "
        "an 'O' label, e.g. O, B-PER, I-PER. Fix id2label in the model's "
        "config.json, or give the labels in id order: config={{\"id2label\": [...]}}."
    )
    E008 = (
        "Invalid setting {key}={value!r}. Use one of {options}, e.g. "
        "config={{\"{key}\": {example!r}}}."
    )
    E009 = (
        "Device '{device}' was requested but {reason}. Use "
        "config={{\"device\": \"cpu\"}}, or leave device unset to follow "
        "spacy.require_gpu() / spacy.prefer_gpu()."
    )
    E010 = (
        "Could not read the weights of '{name}': {reason}. "
        "{component} loads safetensors, or a pickle checkpoint only in "
        "torch's weights_only mode, so files that would run code are refused. "
        "Convert the checkpoint with model.save_pretrained(dir, "
        "safe_serialization=True) from a source you trust."
    )
    E011 = (
        "window_overlap ({overlap}) must be >= 0 and smaller than "
        "window_size ({size}), e.g. config={{\"window_size\": 64, "
        "\"window_overlap\": 32}}."
    )
    E012 = (
        "The saved pipeline directory '{path}' has no model "
        "weights in safetensors format (model.safetensors). It was not written "
        "by {component}'s to_disk, or was tampered with; re-create it with "
        "nlp.to_disk()."
    )
    E013 = (
        "'{path}' is not a saved Hugging Face model: {detail}. Point "
        "config={{\"model\": ...}} at the directory that save_pretrained() wrote "
        "(it holds config.json, model.safetensors and the tokenizer files){hint}."
    )
    E014 = (
        "Could not load the tokenizer of '{name}': {reason}. "
        "{component} needs the model's own fast tokenizer saved next to it "
        "(tokenizer.json, or the files it is built from such as vocab.txt): "
        "AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir), "
        "or, for a checkpoint that ships none or whose card names another, take it "
        "from there: config={{\"tokenizer\": \"bert-base-cased\"}} (hub name or "
        "local directory)."
    )
    E015 = (
        "The labels of '{name}' do not match its classification "
        "head: {detail}. id2label in config.json must name exactly the labels "
        "the head was fine-tuned with, with ids 0..N-1."
    )
    E016 = (
        "Could not read the model directory '{name}': {reason}. It "
        "should hold a model saved with save_pretrained(): config.json, "
        "model.safetensors and the tokenizer files."
    )
    E017 = (
        "Could not read the weights of '{name}': {reason}. The "
        "weights file is missing, truncated or corrupt; save the model again "
        "with model.save_pretrained(dir, safe_serialization=True)."
    )
    E018 = (
        "'{name}' ships its own Python code (auto_map in its "
        "config) and cannot load without running it. {component} never runs "
        "code from a checkpoint unless you allow it: "
        "config={{\"trust_remote_code\": true}}, only for a source you trust."
    )
    E019 = (
        "'{name}' names its labels only {labels}: the placeholder "
        "names transformers gives a head that was never fine-tuned, or whose "
        "label names were not saved. Give the {n} tags it was trained with, in "
        "id order (the model card lists them), e.g. config={{\"id2label\": "
        "{example_labels}}}, or set "
        "id2label in its config.json."
    )
    E020 = (
        "'{name}' has a model type that transformers {version} does "
        "not know ({reason}). Your transformers is out of date for this "
        "checkpoint: upgrade it (pip install -U transformers), or check "
        "model_type in its config.json."
    )
    E027 = (
        "The labels of '{name}' cannot be read in the tag scheme asked "
        "for: {detail}. Leave tag_scheme at \"auto\" or set the scheme the "
        "checkpoint was trained with, e.g. config={{\"tag_scheme\": \"{scheme}\"}}."
    )
    E028 = (
        "id2label has {given} labels, but the classification head of "
        "'{name}' has {outputs} outputs. Give exactly one label per output, in id "
        "order: config={{\"id2label\": {example_labels}}}."
    )
    E029 = (
        "{component} was asked to write token.pos_, which spaCy keeps "
        "to the 17 UPOS tags, but '{name}' has other labels: {labels}. Write them to "
        "token.tag_ instead: config={{\"attribute\": \"tag\"}}, or map them to UPOS "
        "with label_map, e.g. config={{\"label_map\": {{\"NN\": \"NOUN\"}}}} (UPOS: {upos})."
    )
    E025 = (
        "overwrite_ents=true and ents_filter={ents_filter} both say how "
        "the model's entities merge with a Doc's. Set only one: overwrite_ents=true "
        "is spaCy's entity_ruler behaviour, the same as "
        "config={{\"ents_filter\": {{\"@misc\": \"spacy.prioritize_new_ents_filter.v1\"}}}}."
    )
    E026 = (
        "The serialized {component} data holds a file named {name!r}, "
        "which {component}'s to_bytes never writes (only 'cfg', 'manifest.json' and "
        "relative paths under 'model/', with no '..'). It was not written by {component}, or was tampered "
        "with; re-create it with nlp.to_bytes()."
    )
    E035 = (
        "precision \"int8\" runs on CPU only, but the model would run "
        "on '{device}'. On a GPU use config={{\"precision\": \"fp16\"}} or "
        "\"bf16\"; for int8 run on CPU: config={{\"device\": \"cpu\", "
        "\"precision\": \"int8\"}}."
    )
    E036 = (
        "precision \"int8\" needs ONNX Runtime and onnx, but "
        "'{missing}' is not installed. Install the extra: pip install "
        "\"spacy-direct-use[int8]\" (in a clone of the repository: pip install -e \".[int8]\"), "
        "or use config={{\"precision\": \"fp32\"}}."
    )
    E037 = (
        "precision \"int8\" could not export '{name}' to ONNX for "
        "quantization ({reason}). Use config={{\"precision\": \"fp32\"}} (or "
        "\"bf16\") for this model."
    )
    E040 = (
        "A batch has no text column '{key}'; its columns are "
        "{columns}. Name the column that holds the text: "
        "DirectPredictor(text_key=...) or --text-key."
    )
    E041 = (
        "Row {row} of a batch of {n_rows} ({others}) has no text to "
        "annotate: its '{key}' is {value} (a {type}), not a string. Fix that row "
        "in the input, or give such rows empty annotations and count them: "
        "DirectPredictor(on_bad_text=\"empty\") or --on-bad-text empty."
    )
    E042 = (
        "Invalid on_bad_text={value!r}. Use one of {options}, e.g. "
        "DirectPredictor(pipeline, on_bad_text=\"raise\")."
    )
    E043 = (
        "Cannot tell whether '{path}' is JSONL or Parquet {reason}. "
        "Name the files *.jsonl / *.parquet, or pass --input-format jsonl|parquet."
    )
    E044 = (
        "{what} asks for {needed:g} {resource}, but this Ray "
        "cluster has {available:g}. Ask for fewer (--actors, --threads-per-actor, "
        "--gpus-per-actor), or connect to a bigger cluster with RAY_ADDRESS."
    )
    E045 = (
        "The output directory '{path}' already exists and is not "
        "empty: new files next to old ones would count rows twice. Choose a new "
        "directory, or pass --overwrite to replace its contents."
    )
    E046 = (
        "{what} needs Ray Data and pyarrow, but '{missing}' is not installed. "
        "Install the `ray` extra: pip install \"spacy-direct-use[ray]\" (in a clone of the repository: pip install -e \".[ray]\")."
    )
    E050 = (
        "The saved pipeline file '{file}' does not match what "
        "nlp.to_disk() saved ({detail}): it was damaged or changed after saving, "
        "and {component} does not run on it. Re-save the pipeline from the "
        "checkpoint with nlp.to_disk() (or nlp.to_bytes()), or re-install the "
        "pipeline package."
    )
    E051 = (
        "The saved pipeline file '{file}' is missing: nlp.to_disk() "
        "saved it (it is listed in the pipeline's manifest.json). Copy the whole "
        "pipeline directory again, re-save the pipeline from the checkpoint with "
        "nlp.to_disk(), or re-install the pipeline package."
    )
    E052 = (
        "The saved pipeline's manifest '{manifest}' is damaged "
        "({detail}), so its files cannot be checked. Re-save the pipeline from the "
        "checkpoint with nlp.to_disk(), or re-install the pipeline package."
    )
    E053 = (
        "The saved pipeline directory '{directory}' holds files that "
        "nlp.to_disk() did not save (they are not in '{manifest}'): {files}. They "
        "could change what the model predicts. Remove them, re-save the pipeline "
        "from the checkpoint with nlp.to_disk(), or re-install the pipeline package."
    )
    E054 = (
        "Could not read the saved model config '{file}' ({reason}): it "
        "is missing or damaged. Re-save the pipeline from the checkpoint with "
        "nlp.to_disk(), or re-install the pipeline package."
    )
    E055 = (
        "ONNX Runtime could not read the saved int8 graph ({file}, "
        "next to the saved pipeline's model.safetensors): {reason}. It is "
        "damaged. Re-save the pipeline with nlp.to_disk() (or re-install the "
        "pipeline package), or delete {file} to have the model quantized again "
        "when it loads."
    )
    E056 = (
        "The saved pipeline's manifest '{manifest}' has format_version "
        "{version}, but this spacy-direct-use reads only version {supported}: the "
        "pipeline was saved by a newer spacy-direct-use. Upgrade it: "
        "pip install -U spacy-direct-use."
    )
    E060 = (
        "{detail} Give the categories to choose from, e.g. "
        "config={{\"labels\": [\"sports\", \"politics\", \"business\"]}}, or per call: "
        "nlp.pipe(texts, component_cfg={{\"{component}\": {{\"labels\": [...]}}}})."
    )
    E061 = (
        "Invalid labels {labels!r}: {detail}. Give each category once, as a "
        "non-empty string (a list, or a mapping of label to a description): "
        "config={{\"labels\": {{\"Sports\": \"sports news\", \"World\": \"world news\"}}}}."
    )
    E062 = (
        "hypothesis_template {template!r} must hold one '{{}}' where the "
        "label goes, e.g. config={{\"hypothesis_template\": \"This example is {{}}.\"}}."
    )
    E063 = (
        "'{name}' was fine-tuned on its own labels {own} and has no "
        "entailment label (one starting with 'entail') that zero-shot classification "
        "reads, so it cannot score the labels {labels}. Leave labels unset to get its "
        "own categories; for labels of your choosing use an NLI checkpoint (e.g. "
        "'facebook/bart-large-mnli') or a sentence-embedding one (e.g. "
        "'sentence-transformers/all-MiniLM-L6-v2'). If this is an NLI checkpoint whose "
        "labels were saved as placeholders, name them in id order: "
        "config={{\"id2label\": [\"contradiction\", \"neutral\", \"entailment\"]}}."
    )
    E064 = (
        "'{name}' has a modules.json without a Transformer module "
        "(it lists {modules}): it is not a sentence-transformers checkpoint over a "
        "Hugging Face encoder. Point config={{\"model\": ...}} at one, such as "
        "'sentence-transformers/all-MiniLM-L6-v2'."
    )
    E065 = (
        "{component} got per-call settings it does not take: {keys}. "
        "Per call (component_cfg) it takes: {allowed}; set the others when adding it: "
        "nlp.add_pipe(\"{component}\", config={{...}})."
    )
    E066 = (
        "precision \"int8\" is not available for {what} yet. Use "
        "config={{\"precision\": \"fp32\"}}, or \"bf16\" / \"fp16\"."
    )
    E067 = (
        "Which ONNX graph of '{name}' to run is unclear: {detail} (its graphs: "
        "{graphs}). Name one: config={{\"onnx_file\": \"onnx/model.onnx\"}} (a path "
        "inside the checkpoint; quantized variants such as onnx/model_quantized.onnx "
        "run as shipped)."
    )
    E068 = (
        "'{name}' is shipped as an ONNX graph ({graph}), which needs ONNX Runtime: "
        "pip install \"spacy-direct-use[onnx]\" (in a clone of the repository: pip install -e \".[onnx]\")."
    )
    E069 = (
        "'{name}' runs its ONNX graph as shipped, so precision {precision!r} cannot "
        "apply to it. Use config={{\"precision\": \"fp32\"}}, and pick a quantized "
        "or fp16 variant of the graph with onnx_file, e.g. "
        "config={{\"onnx_file\": \"onnx/model_quantized.onnx\"}}."
    )
    E070 = (
        "'{name}' is a GLiNER checkpoint (it has gliner_config.json), which the "
        "gliner package reads: pip install \"spacy-direct-use[gliner]\" (in a clone of the repository: pip install -e \".[gliner]\")."
    )
    E071 = (
        "'{name}' is a GLiNER checkpoint: it finds the entity types you name, and none "
        "were given. Name them, e.g. config={{\"labels\": [\"person\", \"organization\", "
        "\"product\"]}} (or label -> description), or per call: nlp.pipe(texts, "
        "component_cfg={{\"{component}\": {{\"labels\": [...]}}}})."
    )
    E072 = (
        "'{name}' is a token classifier fine-tuned on its own labels {own}; it cannot look "
        "for the entity types {labels}. Leave labels unset to get its own entities (rename "
        "them with label_map), or use a GLiNER checkpoint for types of your choosing, e.g. "
        "config={{\"model\": \"urchade/gliner_multi-v2.1\", \"labels\": [\"person\", \"product\"]}}."
    )
    E073 = (
        "The label prompt for {labels} alone fills the encoder's {limit} sub-words, "
        "leaving none for the text. Name fewer entity types per call, or shorter ones."
    )
    E074 = (
        "'{name}' is a GLiNER checkpoint: it reads the Doc's tokens as its words, so "
        "alignment_mode {mode!r} (entities read on the running text, for token "
        "classifiers) cannot apply. Leave alignment_mode at \"tokens\" for GLiNER; to find "
        "values glued to punctuation, split the tokens first (a tokenizer with more "
        "infixes) or use a token classifier trained on running text."
    )
    E075 = (
        "{key}={value!r} reads each spaCy token's pieces together, which alignment_mode "
        "{mode!r} does not: it reads every piece of the running text. Leave {key} at its "
        "default, or use config={{\"alignment_mode\": \"tokens\"}} to read spaCy's tokens "
        "as the model's words."
    )
    E076 = (
        "'{name}' is shipped as an ONNX graph ({graph}) whose outputs {outputs} hold no "
        "hidden states (last_hidden_state), so it gives no sentence embedding: it is a "
        "classifier's graph. Give direct_vectors (or zero-shot direct_textcat) a sentence "
        "encoder, e.g. config={{\"model\": \"sentence-transformers/all-MiniLM-L6-v2\"}}; a token "
        "classifier's graph goes to direct_ner or direct_tagger."
    )
    E077 = (
        "engine \"openvino\" needs OpenVINO (and NNCF for int8), but '{missing}' is not "
        "installed: pip install \"spacy-direct-use[openvino]\" (in a clone of the repository: "
        "pip install -e \".[openvino]\"), or use config={{\"engine\": \"torch\"}}."
    )
    E078 = (
        "OpenVINO could not convert '{name}': {reason}. Use config={{\"engine\": \"torch\"}} "
        "for this checkpoint."
    )
    E079 = (
        "engine {engine!r} cannot run {what}. {fix}"
    )
    E080 = (
        "'{name}' is read by the glirel package, which is not installed (missing: {missing}): "
        "pip install \"spacy-direct-use[glirel]\" (in a clone of the repository: pip install -e \".[glirel]\")."
    )
    E081 = (
        "direct_rel finds the relation types you name, and none were given. Name them, e.g. "
        "config={{\"labels\": [\"Work_For\", \"Live_In\"]}}, or with the entity types each allows, "
        "config={{\"labels\": {{\"Work_For\": {{\"allowed_head\": [\"PERSON\"], \"allowed_tail\": [\"ORG\"]}}}}}}, "
        "or per call: nlp.pipe(texts, component_cfg={{\"direct_rel\": {{\"labels\": [...]}}}})."
    )
    E082 = (
        "Relation labels {labels} cannot be read: {bad} ({why}). Give each relation type once, "
        "as a non-empty string, e.g. [\"Work_For\", \"Live_In\"]."
    )
    E083 = (
        "The constraints of relation label '{label}' are {value!r}; they must be a dict with "
        "\"allowed_head\" and/or \"allowed_tail\", each a list of entity types (doc.ents labels), e.g. "
        "{{\"allowed_head\": [\"PERSON\"], \"allowed_tail\": [\"ORG\", \"GPE\"]}}, or null for none."
    )
    E084 = (
        "'{name}' is not a GLiREL checkpoint (it has no glirel_config.json), and direct_rel reads "
        "relations with GLiREL only, e.g. config={{\"model\": \"jackboyla/glirel-large-v0\"}}. A token "
        "classifier or GLiNER checkpoint goes to direct_ner, a sequence classifier to direct_textcat."
    )
    E085 = (
        "'{name}' does not fit the architecture its glirel_config.json names: {n_missing} of the "
        "model's tensors are missing from its weights (first: {missing}), and these differ in shape: "
        "{wrong}. glirel would load it anyway (strict=False) and score with random layers; check "
        "that model_name in glirel_config.json is the encoder the checkpoint was trained on."
    )
    E086 = (
        "top_k={value!r}: give the number of relation types to keep per entity pair (a positive "
        "integer, e.g. 1), or -1 for every type above the threshold."
    )
    E087 = (
        "The relation prompt for {labels} alone fills the encoder's {limit} sub-words, leaving "
        "none for the text. Name fewer relation types per call, or shorter ones."
    )
    W001 = (
        "This Doc holds no direct_vectors data in doc.user_data, so restore_vectors has "
        "nothing to put back: Docs keep their vectors through DocBin only with "
        "DocBin(store_user_data=True) (a default DocBin() drops them), and through "
        "Doc.to_bytes unless user_data is excluded."
    )
    # -- categories fitted from a few examples (fitted_head.py): E090-E099 --------------------
    E090 = (
        "Fitting categories from examples needs scikit-learn (its LogisticRegression fits the "
        "head): pip install \"spacy-direct-use[fewshot]\"."
    )
    E091 = (
        "{n} of the {total} examples given to initialize have no cats on their reference Doc "
        "(indices {indices}; the first: {text!r}), while others do: each example needs its "
        "categories, e.g. reference.cats = {{\"Sports\": 1.0, \"World\": 0.0}}. Drop the "
        "unlabelled ones, or give none with cats to initialize without fitting."
    )
    E092 = (
        "The examples' cats name {unknown}, which are not among labels {labels}. Add them to "
        "labels (config={{\"labels\": [...]}}), or fix the examples' cats."
    )
    E093 = (
        "The {n} examples cannot fit a classifier: {labels} is all they show (one class only: "
        "every example has the same category, or a multi-label category is set on every "
        "example). Give examples of at least two categories (and, for multi_label, examples "
        "without each category too)."
    )
    E094 = (
        "No example of {without}: {n} examples for {n_labels} categories. Each category needs "
        "at least one example (a few per category work best), or leave it out of labels."
    )
    E095 = (
        "'{name}' has its own classification head (route {route!r}), so categories cannot be "
        "fitted on it: examples with cats are fitted only on a sentence encoder's embeddings "
        "(e.g. 'sentence-transformers/all-MiniLM-L6-v2'). Use this checkpoint as it is "
        "(nlp.initialize() with no examples), or point config={{\"model\": ...}} at a "
        "sentence encoder."
    )
    E096 = (
        "The categories were fitted as {fitted} from examples; multi_label={asked!r} cannot "
        "change that per call. Fit again with config={{\"multi_label\": {asked!r}}}, or leave "
        "multi_label out of the call."
    )
    E097 = (
        "{where} cannot be read: {detail}. Re-save the pipeline with nlp.to_disk(), or fit it "
        "again with nlp.initialize(get_examples)."
    )
    E098 = (
        "Example {index} marks {count} categories ({cats}; {text!r}), but the labels are "
        "exclusive: each example needs exactly one at 1.0. For several categories per text "
        "use config={{\"multi_label\": true}}."
    )
    E099 = (
        "{component} has no setting {keys}: it would be ignored. Its settings are {allowed}."
    )
