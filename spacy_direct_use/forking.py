"""nlp.pipe(n_process=...) forks the process: torch's OpenMP pool and the tokenizers library's
thread pool do not survive a fork. This module notes what the parent used and keeps the
forked workers single-threaded where they would otherwise deadlock or warn."""
import contextlib
import os
from typing import Iterator

import torch

TOKENIZERS_PARALLELISM = "TOKENIZERS_PARALLELISM"
_state = {"forked": False, "used_tokenizers": False, "set_for_child": False}


def _before_fork() -> None:
    """If direct_ner's batch encoding used the tokenizers library's thread pool here,
    tell the child not to use it (what tokenizers itself does after fork, but without
    its warning). Other forks, and a TOKENIZERS_PARALLELISM the user set, are left alone."""
    if _state["used_tokenizers"] and TOKENIZERS_PARALLELISM not in os.environ:
        os.environ[TOKENIZERS_PARALLELISM] = "false"
        _state["set_for_child"] = True


def _after_fork_in_parent() -> None:
    if _state["set_for_child"]:
        del os.environ[TOKENIZERS_PARALLELISM]
        _state["set_for_child"] = False


def _after_fork_in_child() -> None:
    _state["forked"], _state["set_for_child"] = True, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def fork_safe_torch() -> Iterator[None]:
    """Run direct_ner's torch work single-threaded in a forked process (nlp.pipe(n_process=...)
    workers): the parent's OpenMP pool does not survive fork, and entering a parallel
    region on it deadlocks. Only direct_ner's own calls are affected: the thread count
    is restored afterwards, and a process that was not forked is left alone."""
    if not _state["forked"]:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def using_tokenizers() -> None:
    """Note that this process ran the tokenizers library's thread pool (batch encoding
    parallel in Rust), for the fork hook."""
    _state["used_tokenizers"] = True
