"""The yes/no questions the reference asks on the terminal: overwrite a stored policy, allow any
value for an environment variable whose value is not given.

One implementation for every question: the answer is read with ``ask`` (``input`` by default;
tests pass their own), only "y" (any case) means yes, and no answer at all (standard input
closed, as in CI) means no, with a warning that says so and how to answer without a terminal.
"""

from __future__ import annotations

from typing import Callable

from knack.log import get_logger

logger = get_logger(__name__)

#: what a CI user does instead of answering a wildcard question
WILDCARD_UNATTENDED = "Pass --approve-wildcards (-y) to allow any value."

#: reads the answer to a question (the prompt is its argument), like ``input``
Ask = Callable[[str], str]


def answered_yes(question: str, ask: Ask = input, *, unattended: str = "") -> bool:
    """Whether the user answered *question* with y; *unattended* tells a CI user what to do instead."""
    try:
        answer = ask(question)
    except EOFError:
        logger.warning("No answer to \"%s\" (standard input is closed): taken as n. %s",
                       question.strip(), unattended)
        return False
    return answer.strip().lower() == "y"
