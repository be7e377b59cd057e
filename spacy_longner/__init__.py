"""spacy-longner: Hugging Face token-classification models (Longformer, ALBERT,
BERT, any AutoModelForTokenClassification) as the spaCy component `long_ner`."""

from .corpus import create_corpus_reader  # noqa: F401  (registers the reader)
from .model import build_token_classifier  # noqa: F401  (registers the architecture)
from .pipe import LongNER, make_long_ner  # noqa: F401  (registers the factory)
from .tokenizer import make_tokenizer  # noqa: F401  (registers the tokenizer)

__version__ = "0.2.0"
__all__ = ["LongNER", "make_long_ner", "build_token_classifier", "__version__"]
