"""spacy-direct-use: fine-tuned Hugging Face checkpoints as spaCy components, no training step:
direct_ner (doc.ents), direct_textcat (doc.cats) and direct_tagger (token tags)."""
from .errors import DirectNERError, DirectUseError
from .factories import make_direct_ner, make_direct_tagger, make_direct_textcat
from .ner import DirectNER
from .tagger import DirectTagger
from .textcat import DirectTextCat

__version__ = "0.1.0"
__all__ = [
    "DirectNER",
    "DirectNERError",
    "DirectUseError",
    "DirectTagger",
    "DirectTextCat",
    "make_direct_ner",
    "make_direct_tagger",
    "make_direct_textcat",
    "__version__",
]
