"""deploy/ against the code: command lines, settings, topology.

Reads repository files only (no Docker, systemd or cluster): every `tenure ...` command
line in the Dockerfile, compose, the systemd units, the Kubernetes manifests and the
README must be accepted by the real `tenure` parser; every TENURE_* variable named in
deploy/ must be one the code reads (the settings of runtime/settings.py, and the few read
elsewhere), and every one of those must be documented and set; the topology (2 web,
2 workers, 2 schedulers, migrations first) must hold.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from runtime.settings import Settings
from worker.broker import TIME_LIMIT_MS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
SYSTEMD = DEPLOY / "systemd"
K8S = DEPLOY / "k8s"
README = DEPLOY / "README.md"
ENV_EXAMPLE = SYSTEMD / "tenure.env.example"
SETTINGS_SOURCE = ROOT / "runtime" / "settings.py"
PACKAGES = ("rules", "runtime", "tables", "web", "worker", "command")

TENURE_VAR = re.compile(r"\bTENURE_[A-Z0-9]+(?:_[A-Z0-9]+)*")
PROCESSES = {"migrate", "web", "worker", "scheduler"}
# A message may run this long; stopping a worker must allow at least that.
TIME_LIMIT_S = TIME_LIMIT_MS / 1000


# --- the real command-line parser ---------------------------------------------------


@pytest.fixture(scope="module")
def cli() -> argparse.ArgumentParser:
    """The parser `tenure` runs with: command.main.main() parses its arguments with build_parser()."""
    from command.main import build_parser

    return build_parser()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the tenure parser has no subcommands")


def problems_with(cli: argparse.ArgumentParser, where: str, argv: list[str]) -> list[str]:
    """Why `tenure *argv` would not run (empty: it parses)."""
    shown = f"{where}: `tenure {' '.join(argv)}`"
    unresolved = [arg for arg in argv if "$" in arg or "%" in arg]
    if unresolved:
        return [f"{shown}: unresolved placeholder {unresolved}"]
    subs = subcommands(cli)
    found = []
    if argv and not argv[0].startswith("-"):
        sub = subs.get(argv[0])
        if sub is None:
            return [f"{shown}: no subcommand {argv[0]!r} (there are {sorted(subs)})"]
        flags = [arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("-")]
        found += [
            f"{shown}: `tenure {argv[0]}` has no flag {flag}"
            for flag in flags
            if flag not in sub._option_string_actions
        ]
    errors = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(errors):
        try:
            cli.parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                said = errors.getvalue().strip().splitlines() or [f"exit {exc.code}"]
                found.append(f"{shown}: {said[-1]}")
    return found


# --- finding `tenure` command lines ---------------------------------------------------

SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", "then", "do", "else", "!"}
REDIRECTS = {">", ">>", "<", "<<", ">&", "&>", "<&", ">|"}


def is_tenure(word: str) -> bool:
    return word == "tenure" or word.endswith("/bin/tenure")


REDIRECTION = re.compile(r"(?<!\S)\d*(?:>>|<<|>&|&>|>|<)(?:&\d+|\s*[^\s;&|]+)")


def shell_invocations(text: str) -> list[list[str]]:
    """Arguments of every `tenure` run by a shell-like command line (only words in
    command position count: `useradd ... tenure` runs useradd)."""
    text = REDIRECTION.sub(" ", text.replace("\\\n", " "))  # continuations, redirections
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    found, at_command, index = [], True, 0
    while index < len(words):
        word = words[index]
        index += 1
        if word in SEPARATORS:
            at_command = True
        elif at_command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
            continue  # VAR=value before the command
        elif at_command and is_tenure(word):
            argv = []
            while index < len(words) and words[index] not in SEPARATORS | REDIRECTS:
                argv.append(words[index])
                index += 1
            found.append(argv)
            at_command = False
        else:
            at_command = False
    return found


def exec_form(command: list[str]) -> list[list[str]]:
    """An exec-form command line (JSON array, YAML list)."""
    if command and is_tenure(command[0]):
        return [list(command[1:])]
    if len(command) >= 3 and command[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and command[1] == "-c":
        return shell_invocations(command[2])
    return []


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, rest = line.partition(" ")
            instructions.append((name.upper(), rest.strip()))
    return instructions


def image_entrypoint() -> list[str]:
    entrypoints = [json.loads(rest) for name, rest in dockerfile_instructions() if name == "ENTRYPOINT"]
    assert entrypoints, "deploy/Dockerfile has no ENTRYPOINT"
    return entrypoints[-1]


def dockerfile_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, rest in dockerfile_instructions():
        if name == "RUN":
            found += [("Dockerfile RUN", argv) for argv in shell_invocations(rest)]
    cmd = [json.loads(rest) for name, rest in dockerfile_instructions() if name == "CMD"]
    if cmd:
        found += [("Dockerfile ENTRYPOINT+CMD", argv) for argv in exec_form(image_entrypoint() + cmd[-1])]
    return found


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def as_list(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def tenure_images(doc: dict) -> set[str]:
    return {
        svc["image"]
        for svc in doc["services"].values()
        if isinstance(svc.get("build"), dict) and svc["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def compose_tenure_services() -> dict[str, list[str]]:
    """Service name -> argv of `tenure`, for the services running tenure's image."""
    doc = compose()
    images = tenure_images(doc)
    services = {}
    for name, svc in doc["services"].items():
        if svc.get("image") in images:
            entrypoint = as_list(svc.get("entrypoint", image_entrypoint()))
            runs = exec_form(entrypoint + as_list(svc.get("command", [])))
            assert len(runs) == 1, f"compose service {name} does not run one tenure command"
            services[name] = runs[0]
    return services


def compose_commands() -> list[tuple[str, list[str]]]:
    found = [(f"compose {name}", argv) for name, argv in compose_tenure_services().items()]
    for name, svc in compose()["services"].items():
        test = svc.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test[:1] == ["CMD"]:
            found += [(f"compose {name} healthcheck", argv) for argv in exec_form(test[1:])]
        elif isinstance(test, list) and test[:1] == ["CMD-SHELL"]:
            found += [(f"compose {name} healthcheck", argv) for argv in shell_invocations(test[1])]
    return found


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a systemd unit, in order (keys may repeat)."""
    entries, section = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit(name: str) -> dict[str, str]:
    return {key: value for _, key, value in unit_entries(SYSTEMD / name)}


def units() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def systemd_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in units():
        for _, key, value in unit_entries(path):
            if key.startswith("Exec"):
                # The instance of tenure-web@.service is its port.
                value = value.lstrip("-@:+!|").replace("%i", "8000").replace("%I", "8000")
                found += [(f"{path.name} {key}", argv) for argv in shell_invocations(value)]
    return found


def manifests() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec")


def containers(doc: dict) -> list[dict]:
    pod = pod_spec(doc) or {}
    return pod.get("initContainers", []) + pod.get("containers", [])


def container_argv(container: dict) -> list[list[str]]:
    command = container.get("command")
    if command is None:
        command = image_entrypoint()
    runs = exec_form(list(command) + list(container.get("args", [])))
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        runs += exec_form(container.get(probe, {}).get("exec", {}).get("command", []))
    for hook in ("preStop", "postStart"):
        runs += exec_form(container.get("lifecycle", {}).get(hook, {}).get("exec", {}).get("command", []))
    return runs


def k8s_commands() -> list[tuple[str, list[str]]]:
    return [
        (f"{path.name} {container['name']}", argv)
        for path, doc in manifests()
        for container in containers(doc)
        for argv in container_argv(container)
    ]


def readme_commands() -> list[tuple[str, list[str]]]:
    text = README.read_text()
    found = []
    fence = r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```"
    for block in re.findall(fence, text, flags=re.S | re.M):
        for line in re.sub(r"\\\n", " ", block).splitlines():  # one command per line
            found += [("README code block", argv) for argv in shell_invocations(line.split(" #")[0])]
    prose = re.sub(fence, "", text, flags=re.S | re.M)
    for span in re.findall(r"`(tenure [^`]+)`", prose):  # not "the `tenure` user"
        found += [("README", argv) for argv in shell_invocations(span)]
    return found


SOURCES = {
    "Dockerfile": dockerfile_commands,
    "compose": compose_commands,
    "systemd": systemd_commands,
    "k8s": k8s_commands,
    "README": readme_commands,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_tenure_command_line_is_accepted_by_the_cli(cli, source):
    commands = SOURCES[source]()
    assert commands, f"found no tenure command line in {source}"
    problems = [problem for where, argv in commands for problem in problems_with(cli, where, argv)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", ["compose", "systemd", "k8s"])
def test_every_process_is_deployed(source):
    used = {argv[0] for _, argv in SOURCES[source]() if argv}
    assert PROCESSES <= used, f"{source} runs no {sorted(PROCESSES - used)}"


def test_the_helpers_find_commands_only_in_command_position():
    assert shell_invocations("useradd --system tenure && tenure migrate 2>/dev/null; x") == [["migrate"]]
    assert shell_invocations("A=1 /opt/tenure/venv/bin/tenure web --port 8000 > log 2>&1") == [
        ["web", "--port", "8000"]
    ]
    assert shell_invocations("tenure \\\n worker") == [["worker"]]
    assert exec_form(["sh", "-c", "tenure scheduler"]) == [["scheduler"]]


def test_the_parser_check_catches_mistakes(cli):
    assert problems_with(cli, "t", ["worker", "--processes", "2", "--threads", "8"]) == []
    assert problems_with(cli, "t", ["workers"])
    assert problems_with(cli, "t", ["web", "--bind", "0.0.0.0"])
    assert problems_with(cli, "t", ["web", "--port", "http"])
    assert problems_with(cli, "t", ["web", "--port", "${PORT}"])


# --- settings -------------------------------------------------------------------------


def settings() -> set[str]:
    """Every TENURE_* variable runtime/settings.py reads."""
    return set(TENURE_VAR.findall(SETTINGS_SOURCE.read_text()))


def variables() -> set[str]:
    """Every TENURE_* variable the code reads: the settings, and the names that appear as
    a whole string literal ("TENURE_LOG_LEVEL") anywhere in the packages."""
    literal = re.compile(r"""["'](TENURE_[A-Z0-9_]+)["']""")
    found = {
        name
        for path in sorted(PACKAGES)
        for source in (ROOT / path).rglob("*.py")
        for name in literal.findall(source.read_text())
    }
    return settings() | found


def test_settings_source_reads_a_variable_for_every_field():
    names = settings()
    assert {f"TENURE_{field.upper()}" for field in Settings.__struct_fields__} == names


def test_deploy_names_only_variables_the_code_reads():
    unknown = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            extra = set(TENURE_VAR.findall(path.read_text())) - variables()
            if extra:
                unknown[str(path.relative_to(ROOT))] = sorted(extra)
    assert not unknown, f"the code reads no such variable: {unknown}"


def readme_settings_rows() -> dict[str, str]:
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `(TENURE_\w+)` \|.*$", README.read_text(), flags=re.M)
    }


def test_every_variable_is_in_the_readme_table_with_its_default():
    rows = readme_settings_rows()
    assert set(rows) == variables()
    for field in Settings.__struct_fields__:
        default = getattr(Settings(), field)
        if default not in (None, False):
            row = rows[f"TENURE_{field.upper()}"]
            assert f"`{default}`" in row or f"| {default} |" in row, f"default {default!r} not in: {row}"


def env_example_assignments() -> dict[str, tuple[str, bool]]:
    """Variable -> (value, commented out), with the comment above each required."""
    found = {}
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.fullmatch(r"(#?)\s*([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            assert number and lines[number - 1].startswith("#"), f"{match.group(2)} has no comment above it"
            found[match.group(2)] = (match.group(3), bool(match.group(1)))
    return found


def test_every_variable_is_documented_in_the_env_example():
    assignments = env_example_assignments()
    assert variables() <= set(assignments)
    env = {name: value for name, (value, commented) in assignments.items() if not commented}
    configured = Settings.from_env(env)
    assert configured.database_url.startswith("postgresql://")
    assert configured.broker_url is not None


def test_compose_sets_every_variable_for_every_tenure_process():
    doc = compose()
    env = doc["x-tenure-env"]
    assert set(env) == variables()
    Settings.from_env({name: str(value) for name, value in env.items()})
    for name in compose_tenure_services():
        assert doc["services"][name]["environment"] == env, f"{name} does not use x-tenure-env"


def test_k8s_config_holds_every_variable_once():
    data = {
        doc["kind"]: {**doc.get("data", {}), **doc.get("stringData", {})}
        for _, doc in manifests()
        if doc["kind"] in ("ConfigMap", "Secret")
    }
    assert set(data) == {"ConfigMap", "Secret"}
    assert not set(data["ConfigMap"]) & set(data["Secret"])
    assert set(data["ConfigMap"]) | set(data["Secret"]) == variables()
    Settings.from_env({**data["ConfigMap"], **data["Secret"]})


# --- Dockerfile -----------------------------------------------------------------------


def test_dockerfile_builds_one_non_root_image_with_tenure_as_entrypoint():
    instructions = dockerfile_instructions()
    assert [rest for name, rest in instructions if name == "FROM"] == ["python:3.11-slim"]
    assert image_entrypoint() == ["tenure"]
    users = [rest for name, rest in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = [rest for name, rest in instructions if name == "RUN"]
    lock = next(i for i, run in enumerate(runs) if "-r requirements.lock" in run)
    project = next(i for i, run in enumerate(runs) if re.search(r"pip install --no-deps \.", run))
    assert lock < project, "install requirements.lock, then the project without dependencies"


def test_dockerfile_copies_every_package_and_nothing_missing():
    copied = set()
    for name, rest in dockerfile_instructions():
        if name == "COPY":
            sources = rest.split()[:-1]
            copied |= {source.rstrip("/") for source in sources}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"requirements.lock", "pyproject.toml", project["project"]["readme"]} <= copied
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    if "*" in ignore:
        assert {f"!{source}" for source in copied} <= set(ignore), "a copied path is ignored"


# --- compose --------------------------------------------------------------------------


def seconds(duration: str | int) -> float:
    if isinstance(duration, int):
        return duration
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_runs_two_of_each_after_migrations():
    doc = compose()
    services = doc["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    running = compose_tenure_services()
    by_process = {
        process: sorted(name for name, argv in running.items() if argv[0] == process) for process in PROCESSES
    }
    assert by_process == {
        "migrate": ["migrate"],
        "web": ["web-1", "web-2"],
        "worker": ["worker-1", "worker-2"],
        "scheduler": ["scheduler-1", "scheduler-2"],
    }
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in running.keys() - {"migrate"}:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name


def test_compose_healthchecks_and_ports():
    doc = compose()
    services = doc["services"]
    running = compose_tenure_services()
    for name, svc in services.items():
        if name == "migrate":
            continue
        test = svc.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"{name} healthcheck", "exec")
    for name in ("web-1", "web-2"):
        argv = running[name]
        port = argv[argv.index("--port") + 1]
        assert f"127.0.0.1:{port}/ready" in " ".join(services[name]["healthcheck"]["test"])
        assert all(mapping.endswith(f":{port}") for mapping in services[name]["ports"])
    host_ports = [mapping.rsplit(":", 2)[-2] for name in ("web-1", "web-2") for mapping in services[name]["ports"]]
    assert len(set(host_ports)) == 2, host_ports
    for name in ("worker-1", "worker-2"):
        assert seconds(services[name]["stop_grace_period"]) > TIME_LIMIT_S


# --- systemd --------------------------------------------------------------------------


def test_systemd_units():
    assert {path.name for path in units()} == {
        "tenure-web@.service",
        "tenure-worker.service",
        "tenure-scheduler.service",
        "tenure-migrate.service",
    }
    for path in units():
        assert unit(path.name)["EnvironmentFile"] == "/etc/tenure/tenure.env", path.name
    assert "--port %i" in unit("tenure-web@.service")["ExecStart"]
    assert unit("tenure-migrate.service")["Type"] == "oneshot"
    worker = unit("tenure-worker.service")
    assert worker["KillMode"] == "mixed"
    assert worker.get("KillSignal", "SIGTERM") == "SIGTERM"
    stop = worker["TimeoutStopSec"]
    assert seconds(int(stop) if stop.isdigit() else stop) > TIME_LIMIT_S
    systemd = {
        path.name: [argv[0] for where, argv in systemd_commands() if where.startswith(path.name)] for path in units()
    }
    assert systemd == {
        "tenure-web@.service": ["web"],
        "tenure-worker.service": ["worker"],
        "tenure-scheduler.service": ["scheduler"],
        "tenure-migrate.service": ["migrate"],
    }


# --- Kubernetes -----------------------------------------------------------------------


def workloads() -> dict[str, dict]:
    """tenure subcommand -> the Deployment or Job running it."""
    found = {}
    for _, doc in manifests():
        for container in containers(doc):
            for argv in container_argv(container):
                assert argv[0] not in found, f"{argv[0]} runs in two workloads"
                found[argv[0]] = doc
    return found


def test_k8s_manifests_are_namespace_less_and_share_one_image():
    for path, doc in manifests():
        assert "namespace" not in doc["metadata"], path.name
    images = {container["image"] for _, doc in manifests() for container in containers(doc)}
    assert len(images) == 1, images


def test_k8s_workloads():
    found = workloads()
    assert set(found) == PROCESSES
    assert found["migrate"]["kind"] == "Job"
    assert pod_spec(found["migrate"])["restartPolicy"] in ("Never", "OnFailure")
    for process in ("web", "worker", "scheduler"):
        doc = found[process]
        assert doc["kind"] == "Deployment" and doc["spec"]["replicas"] == 2, process
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items(), process
    assert pod_spec(found["worker"])["terminationGracePeriodSeconds"] > TIME_LIMIT_S


def test_k8s_worker_metrics_port_is_the_configured_one():
    (config,) = [doc for _, doc in manifests() if doc["kind"] == "ConfigMap"]
    port = int(config["data"]["TENURE_WORKER_METRICS_PORT"])
    (worker,) = containers(workloads()["worker"])
    assert {"name": "metrics", "containerPort": port} in worker["ports"]
    annotations = workloads()["worker"]["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/port", str(port)) == str(port)


def test_k8s_settings_references_exist():
    names = {(doc["kind"], doc["metadata"]["name"]) for _, doc in manifests()}
    for path, doc in manifests():
        for container in containers(doc):
            refs = container.get("envFrom", [])
            assert refs, f"{path.name}: {container['name']} gets no settings"
            for ref in refs:
                if "configMapRef" in ref:
                    assert ("ConfigMap", ref["configMapRef"]["name"]) in names
                if "secretRef" in ref:
                    assert ("Secret", ref["secretRef"]["name"]) in names


def test_k8s_web_probes_and_service():
    web = workloads()["web"]
    (container,) = [c for c in containers(web) if container_argv(c) and container_argv(c)[0][0] == "web"]
    argv = container_argv(container)[0]
    port = int(argv[argv.index("--port") + 1])
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert port in ports.values()

    def probe_port(probe: dict) -> int:
        value = probe["httpGet"]["port"]
        return ports[value] if isinstance(value, str) else value

    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert probe_port(container["readinessProbe"]) == probe_port(container["livenessProbe"]) == port
    (service,) = [doc for _, doc in manifests() if doc["kind"] == "Service"]
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    for service_port in service["spec"]["ports"]:
        target = service_port["targetPort"]
        assert (ports[target] if isinstance(target, str) else target) == port
