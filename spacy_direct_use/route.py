"""A route: one way a component reads one kind of checkpoint, the unit of behaviour.

A component (base.DirectPipe) offers the routes in its ROUTES, and reads its checkpoint by
the first that `reads` it: direct_ner a token classifier through the Doc's tokens, through
its running text, or a GLiNER checkpoint; direct_textcat a fine-tuned sequence classifier,
an NLI checkpoint or a sentence encoder; and so on. The protocol is small:

- `reads(pipe)`: whether it reads the pipe's checkpoint (its files, or a setting);
- `load()`: what runs the checkpoint (by default the shared core loads the head `TASK`
  names, on the engine and precision set: DirectPipe.load_head);
- `predict(docs, settings)`: windows for the batch of Docs, run, combined back per Doc
  (the shared core's `read_windows` and friends do the windowing);
- what it writes is the component's `set_annotations`, from what `predict` gave.

What a route decides at load that config.cfg does not hold, it saves (`saved_state`) and
takes back from a saved pipeline (`restore_state`); a route that loads its own model saves
it (`save`, `read_saved`). The shared core holds what every route shares and nothing that
belongs to one.
"""
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Tuple

from spacy.tokens import Doc

if TYPE_CHECKING:
    from .base import DirectPipe
    from .inference import Runner
    from .loading import LoadedModel
    from .settings import Settings


class Route:
    """The default route: the shared core loads the checkpoint with the head `TASK` names."""

    NAME: ClassVar[str] = "fine-tuned"
    TASK: ClassVar[str] = "token"
    """The head the shared core loads (loading.TASKS), or "own" where the route loads its model."""

    def __init__(self, pipe: "DirectPipe") -> None:
        self.pipe = pipe

    @classmethod
    def reads(cls, pipe: "DirectPipe") -> bool:
        """Whether this route reads `pipe`'s checkpoint with its settings."""
        return True

    # -- loading -------------------------------------------------------------------

    def load(self) -> Any:
        """What runs the checkpoint: by default the shared core's runner for TASK."""
        return self.pipe.load_head(self.TASK)

    def check_labels(self, labels: List[str], name: str) -> None:
        """Raise a DirectUseError for model labels this route cannot read (before weights load)."""

    def multi_label(self, loaded: "LoadedModel") -> bool:
        """Whether a classifier's labels are independent (sigmoid) rather than exclusive (softmax)."""
        return False

    def on_load(self, loaded: "LoadedModel", runner: "Runner") -> None:
        """Called once the shared core has loaded the model."""

    @property
    def reads_words(self) -> bool:
        """Whether the model reads the Doc's tokens as pre-split words, not its running text."""
        return self.TASK == "token"

    # -- reading -------------------------------------------------------------------

    def predict(self, docs: List[Doc], settings: "Settings") -> List[Any]:
        raise NotImplementedError

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels the component writes on this route, after label_map."""
        return tuple(label for label in self.pipe.mapped_labels() if label)

    # -- persistence ---------------------------------------------------------------

    def saved_state(self) -> Dict[str, Any]:
        """What loading decided that config.cfg does not hold (saved in `cfg`)."""
        return {}

    def restore_state(self, state: Dict[str, Any]) -> None:
        """Take back what `saved_state` returned."""

    def save(self, path: Path) -> None:
        """Save the checkpoint under the pipeline's model/ directory."""
        self.pipe.save_head(path)

    def read_saved(self, path: Path) -> None:
        """Check a saved pipeline's model/ directory holds this route's checkpoint (E012
        otherwise), and read what the route saved beside it."""
        self.pipe.check_saved_head(path)
