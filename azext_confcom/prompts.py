"""The yes/no questions the reference asks on the terminal: overwrite a stored policy, allow any
value for an environment variable whose value is not given.

One implementation for every question: the answer is read with ``ask`` (``input`` by default;
tests pass their own) and only "y" (any case) means yes. No answer at all (standard input
closed, as in CI) is an error that says how to proceed without a terminal: taking it as "no"
would let a CI run keep a stale policy, or drop a variable, and still succeed. Every question
is asked before anything is written, so the error leaves every file as it was.
"""

from __future__ import annotations

from typing import Callable

from azext_confcom.errors import UserInputError

#: what a CI user does instead of answering a wildcard question
WILDCARD_UNATTENDED = "Pass --approve-wildcards (-y) to allow any value."

#: reads the answer to a question (the prompt is its argument), like ``input``
Ask = Callable[[str], str]


def answered_yes(question: str, ask: Ask = input, *, unattended: str = "") -> bool:
    """Whether the user answered *question* with y; *unattended* tells a CI user what to do instead."""
    try:
        answer = ask(question)
    except EOFError:
        raise UserInputError(f'No answer to "{question.strip()}": standard input is closed, so '
                             "nothing was written.", hint=unattended or None) from None
    return answer.strip().lower() == "y"
