"""`--help` of every group and command: it works, every flag and positional is described, and
every command shows examples."""

from __future__ import annotations

import re

ACI = ("confcom", "acipolicygen")


def _section(text: str, title: str) -> list[str]:
    """The lines of one help section (``Arguments``, ``Positional``, ``Commands:`` ...)."""
    lines, inside = [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            inside = line.rstrip(":") == title.rstrip(":")
        elif inside:
            lines.append(line)
    return lines


def _commands(az, group: tuple[str, ...] = ("confcom",)) -> list[tuple[str, ...]]:
    """Every command under *group*, found by walking the groups' help."""
    result = az(*group, "--help")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    found = []
    for title, walk in (("Subgroups", True), ("Commands", False)):
        for line in _section(result.stdout, title):
            name = re.match(r"\s+(\S+)\s+(?:\[\w+\]\s+)?:", line)
            if name:
                sub = group + (name.group(1),)
                found += _commands(az, sub) if walk else [sub]
    return found


def test_every_command_has_help_for_every_argument_and_examples(az):
    commands = _commands(az)
    assert sorted(commands) == [("confcom", "acifragmentgen"), ACI, ("confcom", "containers", "from_image")]
    for command in commands:
        result = az(*command, "--help")
        assert (result.exit_code, result.stderr) == (0, ""), (command, result.stderr)
        described = _section(result.stdout, "Arguments") + _section(result.stdout, "Positional")
        assert described, command
        for line in described:
            if re.match(r"\s{4}\S", line):           # a flag's first line: "    --flag -f   : text"
                assert ":" in line and line.split(":", 1)[1].strip(), f"{' '.join(command)}: {line.strip()}"
        assert _section(result.stdout, "Examples"), command


def test_help_describes_every_flag(az):
    result = az(*ACI, "--help")
    assert result.exit_code == 0
    flags = ["--template-file -a", "--parameters -p", "--input -i", "--image", "--virtual-node-yaml",
             "--with-containers", "--print-policy", "--outraw", "--outraw-pretty-print",
             "--save-to-file -s", "--print-existing-policy", "--diff -d", "--debug-mode",
             "--disable-stdio", "--enable-stdio", "--infrastructure-svn",
             "--exclude-default-fragments -e", "--include-fragments -f", "--fragments-json -j",
             "--omit-id", "--approve-wildcards -y", "--faster-hashing", "--tar", "--platform",
             "--prerelease-policy-api", "--validate-sidecar -v"]
    for flag in flags:
        line = next((l for l in result.stdout.splitlines() if l.strip().startswith(flag)), None)
        assert line is not None, flag
        assert line.split(":", 1)[1].strip(), f"{flag} has no help text"
    assert "Examples" in result.stdout


def test_containers_from_image_has_help(az):
    result = az("confcom", "containers", "from_image", "--help")
    assert result.exit_code == 0
    assert "--platform" in result.stdout and "Examples" in result.stdout


def test_group_help_lists_commands(az):
    result = az("confcom", "--help")
    assert result.exit_code == 0
    assert "acipolicygen" in result.stdout and "containers" in result.stdout
