"""One type per name within a Doc (direct_ner's `doc_consistency`): a news article names the
same company, team or person again and again, and keeps its type.

After the Doc's windows are decoded, its mentions are grouped: mentions with the same
words (case-insensitive), and a shorter mention whose words run inside exactly one
longer name of the Doc ("Merkel" after "Angela Merkel", "Newmont" beside "Newmont
Mining"). Each group's type is the argmax of its mentions' type probabilities (each
mention's mean over its tokens of P(B-X) + P(I-X) + ..., weighted by its
confidence). A mention takes the group's type unless the model is sure of its own:
its own type's probability at least `keep` (so a city and the club named after it
stay apart where the model tells them apart).
"""
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

Mention = Tuple[int, int, int, float]  # start, end (token positions), type id, confidence


def group_mentions(words: Sequence[str], mentions: Sequence[Mention]) -> List[int]:
    """The group id of each mention: its words lower-cased, or the one longer name its
    words run inside."""
    keys = [tuple(w.lower() for w in words[start:end]) for start, end, _, _ in mentions]
    names = sorted(set(keys), key=len, reverse=True)
    group_of: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
    for key in names:
        longer = [name for name in names if len(name) > len(key) and _runs_inside(key, name)]
        heads = {group_of[name] for name in longer}
        group_of[key] = heads.pop() if len(heads) == 1 else key
    ids = {key: i for i, key in enumerate(dict.fromkeys(group_of.values()))}
    return [ids[group_of[key]] for key in keys]


def _runs_inside(short: Tuple[str, ...], long: Tuple[str, ...]) -> bool:
    n = len(short)
    return any(long[i : i + n] == short for i in range(len(long) - n + 1))


def reconcile(words: Sequence[str], mentions: List[Mention], type_probs: np.ndarray, keep: float) -> List[Mention]:
    """The mentions with their group's type where they are not sure of their own.

    type_probs: (n_tokens, n_types) the probability of each entity type per token
    position (the sum of its tags' probabilities), positions as in `mentions`."""
    if len(mentions) < 2:
        return mentions
    groups = group_mentions(words, mentions)
    own = [type_probs[start:end].mean(axis=0) for start, end, _, _ in mentions]
    pooled: Dict[int, np.ndarray] = defaultdict(lambda: np.zeros(type_probs.shape[1]))
    for group, probs, (_, _, _, confidence) in zip(groups, own, mentions):
        pooled[group] += confidence * probs
    out = []
    for group, probs, (start, end, type_id, confidence) in zip(groups, own, mentions):
        group_type = int(pooled[group].argmax())
        if group_type != type_id and probs[type_id] < keep:
            type_id = group_type
        out.append((start, end, type_id, confidence))
    return out
