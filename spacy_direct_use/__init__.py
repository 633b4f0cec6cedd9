"""spacy-direct-use: a fine-tuned Hugging Face token classifier as a spaCy NER component."""
from .errors import DirectNERError
from .pipe import DirectNER, make_direct_ner

__version__ = "0.1.0"
__all__ = ["DirectNER", "DirectNERError", "make_direct_ner", "__version__"]
