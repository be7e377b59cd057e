"""spaCy's default tokenizer, optionally keeping hyphenated words whole.

CoNLL-2003 (and most NER corpora built from it) keeps "Bergamo-based",
"Anne-Gaelle" and "Itar-Tass" as one token; spaCy's default English rules
split them into three ("Bergamo", "-", "based"). A model fine-tuned on the
corpus' tokens then tags "Bergamo" alone when it reads a user's string, and the
entity "Bergamo-based" is lost. With `split_hyphenated_words = false` the
pipeline's tokenizer leaves out the one infix rule that splits a hyphen between
letters, so raw text is tokenized as the model was trained. Everything else
(prefixes, suffixes, exceptions, URLs) is spaCy's default for the language.

    [nlp.tokenizer]
    @tokenizers = "spacy-longner.Tokenizer.v1"
    split_hyphenated_words = false

The rules are saved with the pipeline (`Tokenizer.to_disk`), so a loaded or
packaged pipeline tokenizes the same way.
"""

from typing import Callable

from spacy import util
from spacy.lang.char_classes import HYPHENS
from spacy.language import Language, create_tokenizer
from spacy.tokenizer import Tokenizer

from .errors import Errors

# spaCy's punctuation rules write the hyphen class as this group, inside the
# infix that splits a hyphen between letters (spacy/lang/punctuation.py).
HYPHEN_GROUP = f"(?:{HYPHENS})"
PROBE = "Anglo-Dutch"


def infixes_without_hyphens(infixes) -> list:
    return [p for p in infixes if HYPHEN_GROUP not in p]


@util.registry.tokenizers("spacy-longner.Tokenizer.v1")
def make_tokenizer(split_hyphenated_words: bool = True) -> Callable[[Language], Tokenizer]:
    default = create_tokenizer()

    def tokenizer_factory(nlp: Language) -> Tokenizer:
        tokenizer = default(nlp)
        if split_hyphenated_words:
            return tokenizer
        kept = infixes_without_hyphens(nlp.Defaults.infixes or [])
        tokenizer.infix_finditer = util.compile_infix_regex(kept).finditer if kept else None
        if len(tokenizer(PROBE)) != 1:
            raise ValueError(Errors.E024.format(lang=nlp.lang, probe=PROBE))
        return tokenizer

    return tokenizer_factory
