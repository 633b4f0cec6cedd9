"""Each component's settings, declared once: a frozen dataclass whose fields give the name,
type, default and check of every setting. spaCy validates a factory's config against the
signature built from these fields (factories.py), the component checks them when built, and
a call's settings (`component_cfg`) go through the same checks (`Settings.for_call`), so a
value refused in the config is refused per call, with the same coded error.
"""
import dataclasses
import inspect
from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import DirectUseError, Errors
from .inference import DEFAULT_BATCH_TOKENS, PRECISIONS
from .openvino_engine import ENGINES
from .windows import WINDOW_MODES

Check = Callable[[str, Any], Any]

Labels = Union[Sequence[str], Mapping[str, str]]
LabelsSetting = Optional[Any]
"""`labels`: a list, or label -> description; typed loosely so that its check says what is
wrong (E061), where spaCy's validation would dump the whole config."""


def setting(default: Any = None, check: Optional[Check] = None, *, per_call: bool = False) -> Any:
    """A setting's default and check (`check(name, value)` raises a DirectUseError);
    `per_call`: a call may change it (nlp.pipe / nlp(...) with component_cfg)."""
    mutable = isinstance(default, (dict, list))
    value = {"default_factory": lambda: type(default)(default)} if mutable else {"default": default}
    return dataclasses.field(**value, metadata={"check": check, "per_call": per_call})


# -- checks: each raises a coded error naming the setting --------------------------------


def choice(*options: str) -> Check:
    def check(key: str, value: Any) -> None:
        if value not in options:
            raise DirectUseError(Errors.E008.format(key=key, value=value, options=list(options), example=options[0]))

    return check


def optional(check: Check) -> Check:
    """`check`, where the value is not null."""
    return lambda key, value: None if value is None else check(key, value)


def positive_int(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        example = DEFAULT_BATCH_TOKENS["cpu"] if key == "forward_batch_tokens" else 1
        raise DirectUseError(Errors.E008.format(key=key, value=value, options="a positive integer", example=example))


def flag(key: str, value: Any) -> bool:
    """A true/false setting, as set or given per call (E008 otherwise: "false" is not false)."""
    if not isinstance(value, bool):
        raise DirectUseError(Errors.E008.format(key=key, value=value, options="true or false", example="false"))
    return value


def fraction(key: str, value: Any) -> float:
    """A number in [0, 1] (a threshold), as set or given per call (E008 otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise DirectUseError(Errors.E008.format(key=key, value=value, options="a number in [0, 1]", example=0.5))
    return value


def label_texts(labels: Optional[Labels]) -> Optional[Dict[str, str]]:
    """label -> the text read for it (its description, or the label itself); E061 on
    empty, duplicate or non-string labels. None where no labels are given."""
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, (Mapping, Sequence)):
        raise DirectUseError(Errors.E061.format(labels=labels, detail="not a list of labels or a mapping of label to description"))
    pairs = list(labels.items()) if isinstance(labels, Mapping) else [(label, label) for label in labels]
    texts = [name for name, _ in pairs] + ([text for _, text in pairs] if isinstance(labels, Mapping) else [])
    bad = list(dict.fromkeys(repr(x) for x in texts if not isinstance(x, str) or not x.strip()))
    if bad:
        raise DirectUseError(Errors.E061.format(labels=labels, detail=f"{', '.join(bad)} {'is not a non-empty string' if len(bad) == 1 else 'are not non-empty strings'}"))
    repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    if repeated:
        raise DirectUseError(Errors.E061.format(labels=labels, detail=f"{repeated} given more than once"))
    return dict(pairs)


def check_template(template: str) -> str:
    """A hypothesis template with exactly one '{}' (E062 otherwise)."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise DirectUseError(Errors.E062.format(template=template))
    return template


def labels_check(key: str, value: Any) -> None:
    label_texts(value)


def template_check(key: str, value: Any) -> None:
    check_template(value)


def check_engine(engine: str, precision: str, device: Optional[str]) -> None:
    """Refuse what an engine cannot run: OpenVINO and ONNX Runtime run on the CPU;
    ONNX Runtime runs int8 (its fp32 and bf16 are the torch engine's); fp16 is a GPU's."""
    if engine == "torch":
        return
    if device is not None and not str(device).startswith("cpu"):
        raise DirectUseError(Errors.E079.format(engine=engine, what=f"on {device!r}", fix='It runs on the CPU: config={"device": "cpu"}, or engine "torch" on a GPU.'))
    if engine == "onnxruntime" and precision != "int8" or precision == "fp16":
        fix = 'Use precision "int8" on ONNX Runtime, or engine "openvino" (fp32, bf16, int8) or "torch".'
        raise DirectUseError(Errors.E079.format(engine=engine, what=f"precision {precision!r}", fix=fix))


# -- the settings -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings every component has; the checks of each field run when built."""

    revision: Optional[str] = setting(None)
    device: Optional[str] = setting(None)
    forward_batch_size: int = setting(128, positive_int)
    forward_batch_tokens: Optional[int] = setting(None, optional(positive_int))  # null: chosen by device
    max_sentences_per_window: int = setting(1, positive_int)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.metadata.get("check"):
                field.metadata["check"](field.name, getattr(self, field.name))
        self.check_together()

    def check_together(self) -> None:
        """Rules between settings (each field's own check has run)."""

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def per_call(cls) -> Tuple[str, ...]:
        """The settings a call may change."""
        return tuple(field.name for field in dataclasses.fields(cls) if field.metadata.get("per_call"))

    def for_call(self, component: str, call_settings: Dict[str, Any]) -> "Settings":
        """These settings with a call's (`component_cfg`), checked as the config's are; a
        null value per call keeps the configured one. E065 for a setting no call may change."""
        self.check_call_keys(component, call_settings)
        given = {key: value for key, value in call_settings.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self

    @classmethod
    def check_call_keys(cls, component: str, call_settings: Dict[str, Any]) -> None:
        """E065 for a setting no call may change."""
        allowed = cls.per_call()
        unknown = sorted(set(call_settings) - set(allowed))
        if unknown:
            raise DirectUseError(Errors.E065.format(component=component, keys=unknown, allowed=list(allowed) or "none"))

    @classmethod
    def defaults(cls) -> Dict[str, Any]:
        """Every setting's default, for the factory's default_config."""
        return dataclasses.asdict(cls())

    @classmethod
    def parameters(cls) -> List[inspect.Parameter]:
        """The factory parameters spaCy validates the config with, one per setting."""
        return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=f.type) for f in dataclasses.fields(cls)]


@dataclasses.dataclass(frozen=True)
class EncoderSettings(Settings):
    """The settings of a component that runs a transformer encoder on the shared core."""

    tokenizer: Optional[str] = setting(None)
    window_size: int = setting(128, positive_int)
    window_overlap: int = setting(16)
    window_mode: str = setting("sentences", choice(*WINDOW_MODES))
    precision: str = setting("fp32", choice(*PRECISIONS))
    engine: str = setting("torch", choice(*ENGINES))
    trust_remote_code: bool = setting(False, flag)
    onnx_file: Optional[str] = setting(None)

    def check_together(self) -> None:
        check_engine(self.engine, self.precision, self.device)
        if self.precision == "int8" and self.device is not None and not str(self.device).startswith("cpu"):
            raise DirectUseError(Errors.E035.format(device=self.device))  # a GPU from require_gpu: at load
        if not isinstance(self.window_overlap, int) or not 0 <= self.window_overlap < self.window_size:
            raise DirectUseError(Errors.E011.format(overlap=self.window_overlap, size=self.window_size))

    def window_shape(self, max_length: int) -> Tuple[int, int]:
        """(size, overlap) of windows, within the model's limit."""
        size = min(self.window_size, max_length)
        return size, min(self.window_overlap, size // 2)


@dataclasses.dataclass(frozen=True)
class ClassifierSettings(EncoderSettings):
    """An encoder with a classification head: its labels, how they are read and renamed."""

    id2label: Optional[List[str]] = setting(None)
    label_map: Dict[str, Optional[str]] = setting({})
    check_head: bool = setting(True, flag)
