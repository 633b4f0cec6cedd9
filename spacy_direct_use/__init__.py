"""spacy-direct-use: pretrained Hugging Face checkpoints as spaCy components, no training step:
direct_ner (doc.ents, also zero-shot on GLiNER checkpoints with entity types of your choosing), direct_textcat (doc.cats, also zero-shot with labels of your choosing),
direct_tagger (token tags), direct_vectors (sentence embeddings as doc.vector) and direct_rel (relations
between doc.ents on GLiREL checkpoints, relation types of your choosing, in doc._.rel)."""
from .errors import DirectNERError, DirectUseError
from .factories import make_direct_ner, make_direct_rel, make_direct_tagger, make_direct_textcat, make_direct_vectors
from .ner import DirectNER
from .relations import DirectRel
from .tagger import DirectTagger
from .textcat import DirectTextCat
from .vectors import DirectVectors, restore_vectors

__version__ = "0.1.0"
__all__ = [
    "DirectNER",
    "DirectNERError",
    "DirectRel",
    "DirectUseError",
    "DirectTagger",
    "DirectTextCat",
    "DirectVectors",
    "make_direct_ner",
    "make_direct_rel",
    "make_direct_tagger",
    "make_direct_textcat",
    "make_direct_vectors",
    "restore_vectors",
    "__version__",
]
