"""Read CoNLL-2003 (IOB1 NER tags) and convert it to spaCy Docs.

CLI: python -m spacy_direct_use.conll INPUT OUTPUT.spacy --granularity article|sentence
"""

import argparse
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

DOCSTART = "-DOCSTART-"
GRANULARITIES = ("article", "sentence")

Sentence = Tuple[List[str], List[str]]  # (words, IOB1 tags)
Article = List[Sentence]
EntSpan = Tuple[int, int, str]  # (start token, end token exclusive, label)


def read_conll(path: Union[str, Path]) -> List[Article]:
    """Read a CoNLL-2003 file into articles -> sentences -> (words, IOB1 tags).

    Articles are separated by `-DOCSTART-` lines, sentences by blank lines. The
    first column is the word, the last the NER tag. Text before the first
    `-DOCSTART-` (if any) forms its own article; empty articles are dropped.
    """
    articles: List[Article] = [[]]
    words: List[str] = []
    tags: List[str] = []

    def end_sentence() -> None:
        if words:
            articles[-1].append((words.copy(), tags.copy()))
            words.clear()
            tags.clear()

    with Path(path).open(encoding="utf8") as f:
        for line in f:
            cols = line.split()
            if not cols:
                end_sentence()
            elif cols[0] == DOCSTART:
                end_sentence()
                articles.append([])
            else:
                words.append(cols[0])
                tags.append(cols[-1])
    end_sentence()
    return [article for article in articles if article]


def iob1_to_iob2(tags: Sequence[str]) -> List[str]:
    """Convert one sentence's IOB1 tags to IOB2.

    In IOB1 `I-X` starts an entity unless the previous tag is `I-X` or `B-X`;
    `B-X` is only used to start an entity right after another `X` entity.
    """
    out: List[str] = []
    prev = "O"
    for tag in tags:
        if tag == "O":
            out.append(tag)
        else:
            prefix, label = tag.split("-", 1)
            if prefix not in ("B", "I"):
                raise ValueError(f"Invalid IOB1 tag: {tag!r}")
            continues = prefix == "I" and prev in (f"I-{label}", f"B-{label}")
            out.append(f"{'I' if continues else 'B'}-{label}")
        prev = tag
    return out


def iob2_to_spans(tags: Sequence[str]) -> List[EntSpan]:
    """Turn IOB2 tags into (start, end, label) token spans."""
    spans: List[EntSpan] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append((i, i + 1, tag[2:]))
        elif tag.startswith("I-"):
            if not spans or spans[-1][1] != i or spans[-1][2] != tag[2:]:
                raise ValueError(f"Invalid IOB2 sequence at token {i}: {tag!r}")
            spans[-1] = (spans[-1][0], i + 1, spans[-1][2])
    return spans


def doc_iob2_tags(doc: Doc) -> List[str]:
    """IOB2 tags of a Doc's entities, one per token ("O" outside entities)."""
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O" for t in doc]


def sentences_to_doc(vocab: Vocab, sentences: Sequence[Sentence]) -> Doc:
    """Build one Doc from sentences: words space-separated, sentence starts and
    entities set from the IOB1 tags (entities never cross sentences)."""
    words: List[str] = []
    sent_starts: List[bool] = []
    tags: List[str] = []
    for sent_words, sent_tags in sentences:
        words.extend(sent_words)
        sent_starts.extend([True] + [False] * (len(sent_words) - 1))
        tags.extend(iob1_to_iob2(sent_tags))
    spaces = [True] * len(words)
    spaces[-1] = False
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    doc.set_ents([Span(doc, s, e, label) for s, e, label in iob2_to_spans(tags)])
    return doc


def articles_to_docs(
    vocab: Vocab, articles: Iterable[Article], granularity: str = "sentence"
) -> List[Doc]:
    """One Doc per article (with sentence starts) or one Doc per sentence."""
    if granularity == "article":
        return [sentences_to_doc(vocab, article) for article in articles]
    if granularity == "sentence":
        return [sentences_to_doc(vocab, [s]) for a in articles for s in a]
    raise ValueError(f"granularity must be one of {GRANULARITIES}: {granularity!r}")


def read_docs(
    path: Union[str, Path],
    vocab: Optional[Vocab] = None,
    granularity: str = "sentence",
    max_articles: int = 0,
) -> List[Doc]:
    """Read a CoNLL-2003 file into Docs; `max_articles` > 0 keeps the first N."""
    articles = read_conll(path)
    if max_articles > 0:
        articles = articles[:max_articles]
    return articles_to_docs(vocab or Vocab(), articles, granularity)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Convert a CoNLL-2003 file to a .spacy DocBin."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("input", type=Path, help="CoNLL-2003 file (IOB1 tags)")
    parser.add_argument("output", type=Path, help="Output .spacy file")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="sentence")
    parser.add_argument(
        "--max-articles", type=int, default=0, help="Keep the first N articles (0 = all)"
    )
    args = parser.parse_args(argv)
    docs = read_docs(
        args.input, granularity=args.granularity, max_articles=args.max_articles
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=False).to_disk(args.output)
    n_ents = sum(len(doc.ents) for doc in docs)
    n_words = sum(len(doc) for doc in docs)
    print(f"Wrote {len(docs)} docs ({n_words} tokens, {n_ents} entities) to {args.output}")


if __name__ == "__main__":
    main()
