"""Read the repository's Dockerfile, so the tests run exactly the steps the image runs.

Only what the tests need: instructions split into stages (line continuations joined,
comments dropped), the build stage's `COPY` sources and `pip install` line, and the runtime
stage's `ENV`, `USER`, `HEALTHCHECK` and `CMD`. Anything unexpected raises `DockerfileError`
so a change to the Dockerfile that the tests cannot follow fails loudly instead of drifting.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


class DockerfileError(AssertionError):
    pass


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD/ENTRYPOINT/RUN, required here: no shell in between."""
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError as exc:
            raise DockerfileError(
                f"{self.keyword} must use the JSON exec form: {self.args}"
            ) from exc
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise DockerfileError(f"{self.keyword} is not a list of strings: {self.args}")
        return value


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        if not found:
            raise DockerfileError(f"stage {self.name!r} has no {keyword}")
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs in order (later ones win); `$VAR` references left as written."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                key, sep, value = token.partition("=")
                if not sep:
                    raise DockerfileError(f"use ENV key=value, not the legacy form: {token}")
                values[key] = value
        return values


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def global_args(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults (what FROM may use)."""
    found: dict[str, str] = {}
    for line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            break
        if keyword.upper() == "ARG":
            name, _, default = args.strip().partition("=")
            found[name] = default
    return found


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    defaults = global_args(path)
    for line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, flags=re.IGNORECASE)
            if not match:
                raise DockerfileError(f"cannot read FROM {args}")
            # A base given as a build argument resolves to its default, as `docker build` does.
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m[1] or m[2]], match[1])
            stages.append(Stage(base=base, name=match[2] or str(len(stages))))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"{keyword} before the first FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    if not stages:
        raise DockerfileError("no FROM in the Dockerfile")
    return stages


@dataclass(frozen=True)
class ImageSteps:
    """What the tests replay outside a container."""

    copies: list[tuple[list[str], str]]  # (sources, destination) of the build stage
    pip_install: list[
        str
    ]  # the pip arguments after `pip install`, e.g. ["--no-cache-dir", ".[server]"]
    runtime_env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str]
    user: str

    @property
    def requirement(self) -> str:
        """The one local requirement the image installs, e.g. `.[server,postgres]`."""
        local = [arg for arg in self.pip_install if arg.startswith(".")]
        if len(local) != 1:
            raise DockerfileError(f"expected one local requirement in {self.pip_install}")
        return local[0]

    @property
    def extras(self) -> set[str]:
        match = re.fullmatch(r"\.\[([a-z0-9,-]+)\]", self.requirement)
        if not match:
            raise DockerfileError(f"cannot read the extras of {self.requirement}")
        return set(match[1].split(","))


def image_steps(path: Path = DOCKERFILE) -> ImageSteps:
    stages = parse(path)
    build, runtime = stages[0], stages[-1]
    copies = []
    for instruction in build.all("COPY"):
        parts = shlex.split(instruction.args)
        if any(p.startswith("--") for p in parts):
            raise DockerfileError(f"build-stage COPY with flags is not replayed: {instruction}")
        copies.append((parts[:-1], parts[-1]))
    # Each RUN is split into its `&&`-joined commands. The one `pip install` with extras is the
    # install the tests replay (with the whole tree in the context it installs the server too);
    # besides it only a `--no-deps` reinstall of the project itself is allowed.
    commands = [
        command
        for instruction in build.all("RUN")
        for command in _split_commands(shlex.split(instruction.args))
        if "pip" in Path(command[0]).name and command[1:2] == ["install"]
    ]
    with_extras = [c for c in commands if any(arg.startswith(".[") for arg in c)]
    others = [c for c in commands if c not in with_extras]
    if len(with_extras) != 1:
        raise DockerfileError(f"expected one pip install of .[extras], found {with_extras}")
    for command in others:
        if "--no-deps" not in command or command[-1] != ".":
            raise DockerfileError(f"unexpected pip install in the build stage: {command}")
    pip_args = with_extras[0][2:]
    healthcheck = runtime.last("HEALTHCHECK").args
    cmd_at = healthcheck.find("CMD ")
    if cmd_at < 0:
        raise DockerfileError(f"HEALTHCHECK without CMD: {healthcheck}")
    return ImageSteps(
        copies=copies,
        pip_install=pip_args,
        runtime_env=runtime.env(),
        cmd=runtime.last("CMD").exec_form(),
        healthcheck=Instruction("CMD", healthcheck[cmd_at + 4 :].strip()).exec_form(),
        user=runtime.last("USER").args,
    )


def _split_commands(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == "&&":
            commands.append([])
        else:
            commands[-1].append(arg)
    return [command for command in commands if command]


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
