"""The checks a checkpoint passes before a component runs it: the head its component needs
(TASKS), labels that fit that head, a head that was trained, weights that load without
running code; each failure a DirectUseError that names the fix."""
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

from .errors import DirectUseError, Errors, examples_for, first_line


@dataclass(frozen=True)
class Task:
    """What a component needs of a checkpoint: its head, and how to say so."""

    kind: str  # "token classifier"
    auto_class: Any
    suffix: str  # the architectures' name ending
    components: str  # the factories that take such a checkpoint (the examples messages give: errors.EXAMPLES)


TASKS: Dict[str, Task] = {
    "token": Task(
        "token classifier", AutoModelForTokenClassification, "ForTokenClassification",
        "direct_ner (entities) or direct_tagger (tags)",
    ),
    "sequence": Task(
        "sequence classifier", AutoModelForSequenceClassification, "ForSequenceClassification",
        "direct_textcat",
    ),
    "embedding": Task(
        "sentence encoder", AutoModel, "",
        "direct_vectors, or direct_textcat with labels",
    ),
}  # fmt: skip
"""A sentence encoder is any checkpoint's encoder (AutoModel drops a head): no head
or label check applies to it."""


def needs_remote_code(err: BaseException) -> bool:
    text = str(err)
    return "trust_remote_code" in text or "contains custom code" in text


def weights_error(name: str, err: BaseException, num_labels: int, task: Task, component: str) -> DirectUseError:
    """The DirectUseError for an exception from AutoModelForTokenClassification.from_pretrained."""
    chain = _exception_chain(err)
    text = "\n".join(str(e) for e in chain)
    if needs_remote_code(err):
        return DirectUseError(Errors.E018.format(name=name))
    if any("Unpickl" in type(e).__name__ or "pickle" in type(e).__module__ for e in chain) or "weights_only" in text:
        unsafe = [line.strip() for line in text.splitlines() if "Unsupported global" in line]
        reason = "torch refused to unpickle it in weights_only mode"
        if unsafe:
            reason += f" ({unsafe[-1].split(' was not')[0]} would run code)"
        return DirectUseError(Errors.E010.format(name=name, reason=reason))
    if "size mismatch" in text or "ignore_mismatched_sizes" in text:  # transformers 4.x / 5.x wording
        detail = f"id2label has {num_labels} labels, but the head's weights have another number of outputs"
        return DirectUseError(Errors.E015.format(name=name, detail=detail))
    if "Unrecognized configuration class" in text:
        architectures = f"of a model type that has no {task.kind.split()[0]}-classification class in transformers"
        return _wrong_head(name, task, component, architectures)
    return DirectUseError(Errors.E017.format(name=name, reason=f"{type(err).__name__}: {first_line(err)}"))


def _exception_chain(err: BaseException) -> list:
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def check_architecture(name: str, config, task: Task, component: str) -> None:
    """Refuse a checkpoint with another head; name the factory that takes it."""
    architectures = getattr(config, "architectures", None) or []
    if architectures and not any(arch.endswith(task.suffix) for arch in architectures):
        other = next((t for t in TASKS.values() if any(a.endswith(t.suffix) for a in architectures)), None)
        hint = ""
        if other is not None:
            hint = (
                f" It is a {other.kind}: give it to {other.components}, e.g. "
                f"nlp.add_pipe(\"{other.components.split()[0].rstrip(',')}\", config={{\"model\": \"{name}\"}})."
            )
        raise _wrong_head(name, task, component, architectures, hint)


def _wrong_head(name: str, task: Task, component: str, architectures: Any, hint: str = "") -> DirectUseError:
    return DirectUseError(
        Errors.E004.format(
            name=name, kind=task.kind, architectures=architectures, component=component,
            task=task.kind.replace("classifier", "classification"), suffix=task.suffix, example_model=examples_for(component).model, hint=hint,
        )
    )


def check_label_ids(name: str, config) -> None:
    ids = sorted(int(i) for i in (getattr(config, "id2label", None) or {}))
    if ids != list(range(len(ids))):
        raise DirectUseError(
            Errors.E015.format(name=name, detail=f"id2label has ids {ids}, not 0..{len(ids) - 1}")
        )


def check_head_trained(name: str, model, info: dict) -> None:
    """Refuse a head transformers made up at load time, or one saved before any training
    step (still transformers' initial values: zero bias, weights ~ N(0, initializer_range)).

    A missing bias is harmless (it loads as zeros). A zero bias alone is no proof: a head
    trained with a frozen or absent bias has one. The weights decide: a fresh head's
    sample std lies within 5 standard errors (1/sqrt(2n) relative) of initializer_range
    and its mean within 5 standard errors of 0; training moves them (the CoNLL stand-in:
    std 0.0275 for 0.02, where 5 standard errors are 6%).
    """
    prefix = getattr(model, "base_model_prefix", "") + "."
    missing = [key for key in info.get("missing_keys", []) if not key.startswith(prefix) and not key.endswith(".bias")]
    if missing:
        detail = (
            f"transformers initialised {', '.join(sorted(missing))} at random "
            "(the checkpoint has no trained weights for them)"
        )
        raise DirectUseError(Errors.E005.format(name=name, detail=detail))
    head_name, head = _output_layer(model, prefix)
    init_std = getattr(model.config, "initializer_range", None)
    if head is None or init_std is None or (head.bias is not None and bool(head.bias.detach().any())):
        return
    weight = head.weight.detach().double()
    n, std, mean = weight.numel(), float(weight.std()), float(weight.mean())
    tolerance = 5 / math.sqrt(2 * n)
    drawn_at_random = bool(weight.all())  # a hand-set head has exact zeros; N(0, s) samples have none
    if drawn_at_random and abs(std / init_std - 1) <= tolerance and abs(mean) <= 5 * init_std / math.sqrt(n):
        detail = (
            f"{head_name}.bias is all zeros and {head_name}.weight has std {std:.4f} and mean {mean:.4f} "
            f"(initializer_range {init_std}): the values transformers gives a new head, saved before any training step"
        )
        raise DirectUseError(Errors.E005.format(name=name, detail=detail))


def _output_layer(model, base_prefix: str) -> Tuple[str, Optional[torch.nn.Linear]]:
    """The last Linear layer outside the encoder that maps to the labels."""
    found: Tuple[str, Optional[torch.nn.Linear]] = ("", None)
    for module_name, module in model.named_modules():
        is_head = isinstance(module, torch.nn.Linear) and module.out_features == model.config.num_labels
        if is_head and not (module_name + ".").startswith(base_prefix):
            found = (module_name, module)
    return found
