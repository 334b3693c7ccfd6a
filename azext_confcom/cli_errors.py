"""Turn our ConfcomError hierarchy into azure-cli's error classes.

azure-cli prints an ``AzCLIError`` as ``ERROR: <message>`` followed by its recommendations and
exits 1, with the traceback only under ``--debug``. Errors that must end the process with another
status (the reference's explicit exit codes, e.g. a hasher's own return code) are printed the
same way and then end the process with ``SystemExit(code)``.
"""

from __future__ import annotations

import os
import sys

from azure.cli.core import azclierror

from azext_confcom import errors

# Most specific first. ResourceNotFoundError is avoided on purpose: azure-cli maps it to exit 3,
# the reference exits 1 for a missing image or file.
_CLASS_FOR: tuple[tuple[type[errors.ConfcomError], type[azclierror.AzCLIError]], ...] = (
    (errors.UserInputError, azclierror.InvalidArgumentValueError),
    (errors.ArchiveError, azclierror.FileOperationError),
    (errors.ImageError, azclierror.UnclassifiedUserFault),
    (errors.LayerConversionError, azclierror.UnclassifiedUserFault),
    (errors.HashingError, azclierror.CLIInternalError),
)


def to_azcli_error(ex: errors.ConfcomError) -> azclierror.AzCLIError:
    """The azure-cli error that reports *ex*: its message, and its hint as the recommendation."""
    cls = next((az for ours, az in _CLASS_FOR if isinstance(ex, ours)), azclierror.UnclassifiedUserFault)
    az_error = cls(ex.message)
    if ex.hint:
        az_error.set_recommendation(ex.hint)
    return az_error


def raise_for_cli(ex: Exception):
    """Exception handler of every confcom command: re-raise *ex* the way azure-cli reports it."""
    if isinstance(ex, BrokenPipeError):
        _stop_writing_to_a_closed_pipe()
    if not isinstance(ex, errors.ConfcomError):
        raise ex
    az_error = to_azcli_error(ex)
    if ex.exit_code == 1:
        raise az_error from ex
    # called from azure-cli's ``except`` block, so --debug still logs the original traceback
    az_error.print_error()
    az_error.send_telemetry()
    sys.exit(ex.exit_code)


def _stop_writing_to_a_closed_pipe() -> None:
    """The reader of our output went away (``... | head``): stop quietly, as Unix tools do.

    stdout is pointed at /dev/null first so that flushing it at exit cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)
