"""Every message direct_ner raises, in one place: what went wrong and the fix."""
import re

PREFIX = "[direct_ner] "
_CODE = re.compile(r"[EW]\d+")


class DirectNERError(ValueError):
    """A misuse of direct_ner: bad config, unusable checkpoint or device."""




class ErrorsWithCodes(type):
    """Reading a code such as `Errors.E004` gives its message headed "[direct_ner E004] ",
    so users can search for it; as spaCy's own `spacy.errors.ErrorsWithCodes` does for "[E004]"."""

    def __getattribute__(self, name: str):
        message = super().__getattribute__(name)
        if not _CODE.fullmatch(name):
            return message
        return f"[direct_ner {name}] {message.removeprefix(PREFIX)}"


class Errors(metaclass=ErrorsWithCodes):
    E001 = (
        "[direct_ner] No model given. The component needs a fine-tuned Hugging "
        "Face checkpoint, by hub name or local directory, e.g.\n    {example}"
    )
    E002 = (
        "[direct_ner] The model directory '{path}' does not exist. Check the "
        "path, or pass a hub name such as 'dslim/bert-base-NER' in "
        "config={{\"model\": ...}}."
    )
    E003 = (
        "[direct_ner] Could not load '{name}' (revision {revision}): it is not a "
        "local directory and could not be fetched from the Hugging Face hub "
        "({reason}). If you are offline (HF_HUB_OFFLINE=1), download it first or "
        "pass the local directory: config={{\"model\": \"/path/to/model\"}}."
    )
    E004 = (
        "[direct_ner] '{name}' is not a {kind}: its architectures are "
        "{architectures}. {component} needs a checkpoint fine-tuned for {task} "
        "(an *{suffix} model, e.g. '{example}').{hint}"
    )
    E005 = (
        "[direct_ner] '{name}' has an untrained classification head: {detail}. "
        "Its predictions would be random. Use a checkpoint fine-tuned for NER "
        "(e.g. 'dslim/bert-base-NER'), or fine-tune this one first. If you know "
        "the head is trained, load it anyway: config={{\"check_head\": false}}."
    )
    E006 = (
        "[direct_ner] The tokenizer of '{name}' ({cls}) is not a fast tokenizer "
        "and cannot tell which pieces belong to which word (word_ids()), which "
        "direct_ner needs to place entities on spaCy tokens. Save the checkpoint with a tokenizer.json "
        "(AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir))."
    )
    E007 = (
        "[direct_ner] The labels of '{name}' fit no tagging scheme: {detail}. "
        "direct_ner supports BIO (IOB2), BIOES/BILOU and plain IO labels with "
        "an 'O' label, e.g. O, B-PER, I-PER. Fix id2label in the model's "
        "config.json, or give the labels in id order: config={{\"id2label\": [...]}}."
    )
    E008 = (
        "[direct_ner] Invalid setting {key}={value!r}. Use one of {options}, e.g. "
        "config={{\"{key}\": {example!r}}}."
    )
    E009 = (
        "[direct_ner] Device '{device}' was requested but {reason}. Use "
        "config={{\"device\": \"cpu\"}}, or leave device unset to follow "
        "spacy.require_gpu() / spacy.prefer_gpu()."
    )
    E010 = (
        "[direct_ner] Could not read the weights of '{name}': {reason}. "
        "direct_ner loads safetensors, or a pickle checkpoint only in "
        "torch's weights_only mode, so files that would run code are refused. "
        "Convert the checkpoint with model.save_pretrained(dir, "
        "safe_serialization=True) from a source you trust."
    )
    E011 = (
        "[direct_ner] window_overlap ({overlap}) must be >= 0 and smaller than "
        "window_size ({size}), e.g. config={{\"window_size\": 64, "
        "\"window_overlap\": 32}}."
    )
    E012 = (
        "[direct_ner] The saved pipeline directory '{path}' has no model "
        "weights in safetensors format (model.safetensors). It was not written "
        "by direct_ner's to_disk, or was tampered with; re-create it with "
        "nlp.to_disk()."
    )
    E013 = (
        "[direct_ner] '{path}' is not a saved Hugging Face model: {detail}. Point "
        "config={{\"model\": ...}} at the directory that save_pretrained() wrote "
        "(it holds config.json, model.safetensors and the tokenizer files){hint}."
    )
    E014 = (
        "[direct_ner] Could not load the tokenizer of '{name}': {reason}. "
        "direct_ner needs the model's own fast tokenizer saved next to it "
        "(tokenizer.json, or the files it is built from such as vocab.txt): "
        "AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir), "
        "or, for a checkpoint that ships none or whose card names another, take it "
        "from there: config={{\"tokenizer\": \"bert-base-cased\"}} (hub name or "
        "local directory)."
    )
    E015 = (
        "[direct_ner] The labels of '{name}' do not match its classification "
        "head: {detail}. id2label in config.json must name exactly the labels "
        "the head was fine-tuned with, with ids 0..N-1."
    )
    E016 = (
        "[direct_ner] Could not read the model directory '{name}': {reason}. It "
        "should hold a model saved with save_pretrained(): config.json, "
        "model.safetensors and the tokenizer files."
    )
    E017 = (
        "[direct_ner] Could not read the weights of '{name}': {reason}. The "
        "weights file is missing, truncated or corrupt; save the model again "
        "with model.save_pretrained(dir, safe_serialization=True)."
    )
    E018 = (
        "[direct_ner] '{name}' ships its own Python code (auto_map in its "
        "config) and cannot load without running it. direct_ner never runs "
        "code from a checkpoint unless you allow it: "
        "config={{\"trust_remote_code\": true}}, only for a source you trust."
    )
    E019 = (
        "[direct_ner] '{name}' names its labels only {labels}: the placeholder "
        "names transformers gives a head that was never fine-tuned, or whose "
        "label names were not saved. Give the {n} tags it was trained with, in "
        "id order (the model card lists them), e.g. config={{\"id2label\": "
        "[\"O\", \"B-PER\", \"I-PER\", \"B-ORG\", \"I-ORG\", ...]}}, or set "
        "id2label in its config.json."
    )
    E020 = (
        "[direct_ner] '{name}' has a model type that transformers {version} does "
        "not know ({reason}). Your transformers is out of date for this "
        "checkpoint: upgrade it (pip install -U transformers), or check "
        "model_type in its config.json."
    )
    E027 = (
        "[direct_ner] The labels of '{name}' cannot be read in the tag scheme asked "
        "for: {detail}. Leave tag_scheme at \"auto\" or set the scheme the "
        "checkpoint was trained with, e.g. config={{\"tag_scheme\": \"{scheme}\"}}."
    )
    E028 = (
        "[direct_ner] id2label has {given} labels, but the classification head of "
        "'{name}' has {outputs} outputs. Give exactly one tag per output, in id "
        "order: config={{\"id2label\": [\"O\", \"B-PER\", ...]}}."
    )
    E029 = (
        "[direct_ner] direct_tagger was asked to write token.pos_, which spaCy keeps "
        "to the 17 UPOS tags, but '{name}' has other labels: {labels}. Write them to "
        "token.tag_ instead: config={{\"attribute\": \"tag\"}}, or map them to UPOS "
        "with label_map, e.g. config={{\"label_map\": {{\"NN\": \"NOUN\"}}}} (UPOS: {upos})."
    )
    E025 = (
        "[direct_ner] overwrite_ents=true and ents_filter={ents_filter} both say how "
        "the model's entities merge with a Doc's. Set only one: overwrite_ents=true "
        "is spaCy's entity_ruler behaviour, the same as "
        "config={{\"ents_filter\": {{\"@misc\": \"spacy.prioritize_new_ents_filter.v1\"}}}}."
    )
    E026 = (
        "[direct_ner] The serialized direct_ner data holds a file named {name!r}, "
        "which direct_ner's to_bytes never writes (only 'cfg', 'manifest.json' and "
        "relative paths under 'model/', with no '..'). It was not written by direct_ner, or was tampered "
        "with; re-create it with nlp.to_bytes()."
    )
    E035 = (
        "[direct_ner] precision \"int8\" runs on CPU only, but the model would run "
        "on '{device}'. On a GPU use config={{\"precision\": \"fp16\"}} or "
        "\"bf16\"; for int8 run on CPU: config={{\"device\": \"cpu\", "
        "\"precision\": \"int8\"}}."
    )
    E036 = (
        "[direct_ner] precision \"int8\" needs ONNX Runtime and onnx, but "
        "'{missing}' is not installed. Install the extra: pip install "
        "\"spacy-direct-use[int8]\", or use config={{\"precision\": \"fp32\"}}."
    )
    E037 = (
        "[direct_ner] precision \"int8\" could not export '{name}' to ONNX for "
        "quantization ({reason}). Use config={{\"precision\": \"fp32\"}} (or "
        "\"bf16\") for this model."
    )
    E040 = (
        "[direct_ner] A batch has no text column '{key}'; its columns are "
        "{columns}. Name the column that holds the text: "
        "DirectNERPredictor(text_key=...) or --text-key."
    )
    E041 = (
        "[direct_ner] Row {row} of a batch of {n_rows} ({others}) has no text to "
        "annotate: its '{key}' is {value} (a {type}), not a string. Fix that row "
        "in the input, or give such rows an empty entity list and count them: "
        "DirectNERPredictor(on_bad_text=\"empty\") or --on-bad-text empty."
    )
    E042 = (
        "[direct_ner] Invalid on_bad_text={value!r}. Use one of {options}, e.g. "
        "DirectNERPredictor(pipeline, on_bad_text=\"raise\")."
    )
    E043 = (
        "[direct_ner] Cannot tell whether '{path}' is JSONL or Parquet {reason}. "
        "Name the files *.jsonl / *.parquet, or pass --input-format jsonl|parquet."
    )
    E044 = (
        "[direct_ner] {what} asks for {needed:g} {resource}, but this Ray "
        "cluster has {available:g}. Ask for fewer (--actors, --threads-per-actor, "
        "--gpus-per-actor), or connect to a bigger cluster with RAY_ADDRESS."
    )
    E045 = (
        "[direct_ner] The output directory '{path}' already exists and is not "
        "empty: new files next to old ones would count rows twice. Choose a new "
        "directory, or pass --overwrite to replace its contents."
    )
    E050 = (
        "[direct_ner] The saved pipeline file '{file}' does not match what "
        "nlp.to_disk() saved ({detail}): it was damaged or changed after saving, "
        "and direct_ner does not run on it. Re-save the pipeline from the "
        "checkpoint with nlp.to_disk() (or nlp.to_bytes()), or re-install the "
        "pipeline package."
    )
    E051 = (
        "[direct_ner] The saved pipeline file '{file}' is missing: nlp.to_disk() "
        "saved it (it is listed in the pipeline's manifest.json). Copy the whole "
        "pipeline directory again, re-save the pipeline from the checkpoint with "
        "nlp.to_disk(), or re-install the pipeline package."
    )
    E052 = (
        "[direct_ner] The saved pipeline's manifest '{manifest}' is damaged "
        "({detail}), so its files cannot be checked. Re-save the pipeline from the "
        "checkpoint with nlp.to_disk(), or re-install the pipeline package."
    )
    E053 = (
        "[direct_ner] The saved pipeline directory '{directory}' holds files that "
        "nlp.to_disk() did not save (they are not in '{manifest}'): {files}. They "
        "could change what the model predicts. Remove them, re-save the pipeline "
        "from the checkpoint with nlp.to_disk(), or re-install the pipeline package."
    )
    E054 = (
        "[direct_ner] Could not read the saved model config '{file}' ({reason}): it "
        "is missing or damaged. Re-save the pipeline from the checkpoint with "
        "nlp.to_disk(), or re-install the pipeline package."
    )
    E055 = (
        "[direct_ner] ONNX Runtime could not read the saved int8 graph ({file}, "
        "next to the saved pipeline's model.safetensors): {reason}. It is "
        "damaged. Re-save the pipeline with nlp.to_disk() (or re-install the "
        "pipeline package), or delete {file} to have the model quantized again "
        "when it loads."
    )
    E056 = (
        "[direct_ner] The saved pipeline's manifest '{manifest}' has format_version "
        "{version}, but this spacy-direct-use reads only version {supported}: the "
        "pipeline was saved by a newer spacy-direct-use. Upgrade it: "
        "pip install -U spacy-direct-use."
    )
