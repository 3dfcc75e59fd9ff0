"""The deployment examples in examples/ are valid and say what they mean.

Every YAML file parses; the Kubernetes, Compose and Render files keep the
settings the README promises; and every resil-init invocation in examples/
(Dockerfile ENTRYPOINT + CMD, Kubernetes command/args and exec probes, Compose
entrypoint/command, Render dockerCommand/startCommand, shell lines in the
README), together with the RESIL_* environment it runs with, is checked twice:
against the option tables of SPEC.md, and by the real binary's --check-config.
"""

import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BIN = Path(os.environ.get("RESIL_INIT_BIN", REPO / "build" / "resil-init"))
SPEC_CANDIDATES = [Path(p) for p in filter(None, [os.environ.get("RESIL_SPEC")])] + [
    REPO / "SPEC.md", REPO / "docs" / "SPEC.md", REPO.parent / "shared" / "SPEC.md"]
NODE_IMAGE = "node-demo"  # what the examples call the image of Dockerfile.node
DEFAULT_GRACE_S = 8.0     # SPEC.md: --grace defaults to 8s
RUN_TIMEOUT = 10

YAML_FILES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml"))


# ---- values ----

def duration_s(text):
    """A resil-init duration (250ms, 10s, 2m, 1h, bare seconds) in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(text).strip())
    assert m, f"not a resil-init duration: {text!r}"
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def compose_duration_s(text):
    """A Compose duration such as 15s or 1m30s, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"bad duration {text!r}"
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * unit[u] for n, u in parts)


VALUE_FORMATS = {
    "DURATION": r"\d+(ms|s|m|h)?",
    "SIZE": r"\d+[KMG]?|\d+(\.\d+)?%",
    "SIG": r"(SIG)?[A-Z][A-Z0-9]*|\d+",
    "N": r"\d+",
    "CODE": r"\d+",
    "P": r"no|on-failure|always",
    "A": r"restart|exit",
    "L": r"error|warn|info|debug",
    "F": r"text|json",
    "URL": r"https?://\S+",
    "KEY=VALUE": r"[A-Za-z_][A-Za-z0-9_]*=.*",
    "FROM:TO": r"\w+:\w+",
    "MIN[:MAX]": r"\d+(ms|s|m|h)?(:\d+(ms|s|m|h)?)?",
}
BOOL_VALUES = {"1", "0", "true", "false", "yes", "no", "on", "off"}


# ---- SPEC.md ----

@dataclass
class Option:
    long: str
    metavar: str = ""  # empty: a switch

    @property
    def env(self):
        return "RESIL_" + self.long.upper().replace("-", "_")


def load_spec_options():
    """Long and short options from SPEC.md's tables, plus the command-line block."""
    spec = next((p for p in SPEC_CANDIDATES if p.is_file()), None)
    if spec is None:
        return None
    by_name = {}
    for line in spec.read_text().splitlines():
        if not line.startswith("| `-"):
            continue
        for alt in line.split("|")[1].split("/"):
            names = re.findall(r"`(-{1,2}[A-Za-z][\w-]*)(?: ([^`]+))?`", alt)
            longs = [n for n, _ in names if n.startswith("--")]
            metavar = next((m for _, m in names if m), "")
            opt = Option(longs[0][2:] if longs else names[0][0][1:], metavar)
            for name, _ in names:
                by_name[name] = opt
    for name, metavar in (("config", "FILE"), ("check-config", ""), ("help", ""),
                          ("version", "")):
        by_name.setdefault("--" + name, Option(name, metavar))
    return by_name


def load_help_options():
    """Options and metavars from the binary's --help: enough to split an
    invocation into options and command where SPEC.md is not beside the repo."""
    try:
        out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True,
                             timeout=10).stdout
    except OSError:
        return {}
    by_name = {}
    for m in re.finditer(r"^\s+(?:-(\w), )?--([a-z][\w-]*)(?: ([A-Z][^\s]*))?", out, re.M):
        opt = Option(m.group(2), m.group(3) or "")
        by_name["--" + m.group(2)] = opt
        if m.group(1):
            by_name["-" + m.group(1)] = opt
    return by_name


SPEC_OPTIONS = load_spec_options()
SPLIT_OPTIONS = SPEC_OPTIONS or load_help_options()
needs_spec = pytest.mark.skipif(SPEC_OPTIONS is None,
                                reason="SPEC.md not found (set RESIL_SPEC to its path)")


def check_value(opt, value, where):
    fmt = VALUE_FORMATS.get(opt.metavar)
    if opt.metavar and not value:
        return [f"{where}: --{opt.long} needs a value ({opt.metavar})"]
    if fmt and not re.fullmatch(fmt, value):
        return [f"{where}: --{opt.long} {value!r} is not a {opt.metavar}"]
    return []


# ---- invocations ----

@dataclass
class Invocation:
    source: str
    argv: list            # argv[0] is resil-init
    env: dict = field(default_factory=dict)

    def __str__(self):
        return f"{self.source}: {shlex.join(self.argv)}"

    @property
    def subcommand(self):
        return (self.argv[1] if len(self.argv) > 1
                and self.argv[1] in ("status", "probe", "restart", "metrics") else None)

    @property
    def subcommand_args(self):
        """The words after the subcommand, without probe's --ready / --live."""
        args = self.argv[2:]
        if self.subcommand == "probe":
            args = [a for a in args if a not in ("--ready", "--live")]
        return args

    def split(self):
        """(options, command): the command is what follows `--` or the first non-option."""
        args = self.argv[1:]
        opts = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                return opts, args[i + 1:]
            if not a.startswith("-") or a == "-":
                return opts, args[i:]
            opts.append(a)
            opt = SPLIT_OPTIONS.get(a.split("=", 1)[0])
            if opt and opt.metavar and "=" not in a and i + 1 < len(args):
                opts.append(args[i + 1])
                i += 1
            i += 1
        return opts, []

    def parse(self):
        """{long option: [values]} from the flags; errors for anything SPEC.md lacks."""
        errors, found = [], {}
        opts, _ = self.split()
        i = 0
        while i < len(opts):
            a = opts[i]
            i += 1
            if a.startswith("--"):
                name, eq, inline = a.partition("=")
                opt = SPLIT_OPTIONS.get(name)
                if opt is None:
                    errors.append(f"{self.source}: unknown option {name}")
                    continue
                value = inline if eq else ""
                if opt.metavar and not eq:
                    value = opts[i] if i < len(opts) else ""
                    i += 1
                errors += check_value(opt, value, self.source)
                found.setdefault(opt.long, []).append(value)
                continue
            for j, ch in enumerate(a[1:]):  # -v, -vv, -e 143
                opt = SPLIT_OPTIONS.get("-" + ch)
                if opt is None:
                    errors.append(f"{self.source}: unknown option -{ch}")
                    break
                if opt.metavar:
                    value = a[j + 2:] or (opts[i] if i < len(opts) else "")
                    i += 0 if a[j + 2:] else 1
                    errors += check_value(opt, value, self.source)
                    found.setdefault(opt.long, []).append(value)
                    break
                found.setdefault(opt.long, []).append("")
        return found, errors

    def setting(self, long):
        """The effective value of a single-valued option: flag > environment."""
        found, _ = self.parse()
        if long in found:
            return found[long][-1]
        return self.env.get("RESIL_" + long.upper().replace("-", "_"))


def is_resil_init(word):
    return isinstance(word, str) and os.path.basename(word) == "resil-init"


def logical_lines(text):
    """Lines with backslash continuations joined, as Docker and shells read them."""
    out, cur = [], ""
    for line in text.splitlines():
        if cur and line.lstrip().startswith("#"):
            continue  # Docker drops comment lines inside a continued instruction
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    if cur:
        out.append(cur)
    return out


def exec_form(rest, where):
    rest = rest.strip()
    if rest.startswith("["):
        return json.loads(rest)
    pytest.fail(f"{where}: use the JSON (exec) form, or signals never reach resil-init: {rest}")


def parse_dockerfile(path):
    image = {"env": {}, "entrypoint": [], "cmd": [], "instructions": []}
    for line in logical_lines(path.read_text()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        image["instructions"].append((word, rest.strip()))
        if word == "FROM":
            image["env"] = {}  # a new stage starts afresh
        elif word == "ENV":
            tokens = shlex.split(rest)
            if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value`
                image["env"][tokens[0]] = " ".join(tokens[1:])
            else:
                image["env"].update(t.split("=", 1) for t in tokens)
        elif word == "ENTRYPOINT":
            image["entrypoint"] = exec_form(rest, path.name)
            image["cmd"] = []  # Docker resets CMD when ENTRYPOINT is set
        elif word == "CMD":
            image["cmd"] = exec_form(rest, path.name)
    return image


def node_image():
    return parse_dockerfile(EXAMPLES / "Dockerfile.node")


def image_for(name):
    """The example image a manifest names, by its repository name."""
    if name and name.split("/")[-1].split(":")[0] == NODE_IMAGE:
        return node_image()
    return None


def words(value):
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


class Collector:
    """Invocations per file, plus every resil-init command it consumed, so a
    generic scan can prove none was missed."""

    def __init__(self):
        self.invocations = []
        self.consumed = set()

    def add(self, source, argv, env=None, used=()):
        for obj in used:
            self.consumed.add(id(obj))
        if argv and is_resil_init(argv[0]):
            self.invocations.append(Invocation(source, list(argv), dict(env or {})))

    def container(self, source, entrypoint, cmd, image, env):
        """Docker's rule: an overridden entrypoint drops the image's CMD too."""
        image = image or {"entrypoint": [], "cmd": [], "env": {}}
        if entrypoint is not None:
            argv = entrypoint + (cmd or [])
        else:
            argv = image["entrypoint"] + (cmd if cmd is not None else image["cmd"])
        self.add(source, argv, {**image["env"], **env})


def k8s_env(container):
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or []
            if "value" in e}


def collect_kubernetes(c, name, docs):
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec") or doc.get("spec", {})
        for ctr in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            where = f"{name}: container {ctr.get('name')}"
            env = k8s_env(ctr)
            c.container(where, words(ctr.get("command")), words(ctr.get("args")),
                        image_for(ctr.get("image")), env)
            for obj in (ctr.get("command"), ctr.get("args")):
                c.consumed.add(id(obj))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                cmd = ((ctr.get(probe) or {}).get("exec") or {}).get("command")
                if cmd:
                    image = image_for(ctr.get("image")) or {"env": {}}
                    c.add(f"{where} {probe}", cmd, {**image["env"], **env}, used=[cmd])
            for hook in ("postStart", "preStop"):
                cmd = (((ctr.get("lifecycle") or {}).get(hook) or {}).get("exec") or {}).get(
                    "command")
                if cmd:
                    c.add(f"{where} {hook}", cmd, env, used=[cmd])


def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env if "=" in e)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def collect_compose(c, name, docs):
    for doc in docs:
        for svc_name, svc in (doc.get("services") or {}).items():
            image = image_for(svc.get("image"))
            if image is None and svc.get("build"):
                build = svc["build"]
                dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) \
                    else "Dockerfile"
                image = parse_dockerfile(EXAMPLES / dockerfile)
            c.container(f"{name}: service {svc_name}", words(svc.get("entrypoint")),
                        words(svc.get("command")), image, compose_env(svc))
            for key in ("entrypoint", "command"):
                c.consumed.add(id(svc.get(key)))


def render_env(service):
    return {e["key"]: str(e["value"]) for e in service.get("envVars") or [] if "value" in e}


def collect_render(c, name, docs):
    for doc in docs:
        for svc in doc.get("services") or []:
            where = f"{name}: service {svc.get('name')}"
            env = render_env(svc)
            if svc.get("runtime") == "docker" or svc.get("env") == "docker":
                image = parse_dockerfile(REPO / svc.get("dockerfilePath", "./Dockerfile"))
                cmd = words(svc.get("dockerCommand"))
                c.consumed.add(id(svc.get("dockerCommand")))
                if cmd and is_resil_init(cmd[0]):
                    c.add(where, cmd, {**image["env"], **env})
                else:  # dockerCommand stands in for the image's CMD
                    c.container(where, None, cmd, image, env)
            if svc.get("startCommand"):
                c.add(where, words(svc["startCommand"]), env, used=[svc["startCommand"]])


def yaml_command_spots(node, out):
    """Every list or string in a YAML tree that starts with resil-init."""
    if isinstance(node, dict):
        for v in node.values():
            yaml_command_spots(v, out)
    elif isinstance(node, list):
        if node and is_resil_init(node[0]):
            out.append(node)
            return
        for v in node:
            yaml_command_spots(v, out)
    elif isinstance(node, str) and " " in node.strip():  # a command line, not a path
        try:
            first = shlex.split(node)[:1]
        except ValueError:
            first = []
        if first and is_resil_init(first[0]):
            out.append(node)


def collect_readme(c, path):
    """Shell lines in fenced blocks that run resil-init directly."""
    in_block = False
    block = []
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            if in_block:
                for cmd in logical_lines("\n".join(block)):
                    readme_command(c, path.name, cmd)
            in_block, block = not in_block, []
        elif in_block:
            block.append(line)


def readme_command(c, name, line):
    line = re.sub(r"^\s*\$\s+", "", line).split(" #")[0]
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return
    env = {}
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0]):
        k, v = tokens.pop(0).split("=", 1)
        env[k] = v
    if tokens and is_resil_init(tokens[0]):
        c.add(f"{name}: {line.strip()}", tokens, env)


def collect_all():
    c = Collector()
    spots = {}
    for name in YAML_FILES:
        docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
        found = []
        for d in docs:
            yaml_command_spots(d, found)
        spots[name] = found
        if any(d.get("kind") for d in docs):
            collect_kubernetes(c, name, docs)
        elif any("services" in d and isinstance(d["services"], dict) for d in docs):
            collect_compose(c, name, docs)
        elif any("services" in d and isinstance(d["services"], list) for d in docs):
            collect_render(c, name, docs)
    for path in sorted(EXAMPLES.glob("Dockerfile*")):
        image = parse_dockerfile(path)
        c.add(path.name, image["entrypoint"] + image["cmd"], image["env"])
    if (EXAMPLES / "README.md").is_file():
        collect_readme(c, EXAMPLES / "README.md")
    return c, spots


# A broken example must fail the tests that read it, not the collection of this module.
try:
    COLLECTED, SPOTS = collect_all()
    COLLECT_ERROR = None
except Exception as exc:  # noqa: BLE001 - reported by test_examples_can_be_read
    COLLECTED, SPOTS = Collector(), {}
    COLLECT_ERROR = f"{type(exc).__name__}: {exc}"
INVOCATIONS = COLLECTED.invocations
SUPERVISORS = [i for i in INVOCATIONS if i.subcommand is None]
SUBCOMMANDS = [i for i in INVOCATIONS if i.subcommand]


def by_source(prefix):
    return [i for i in SUPERVISORS if i.source.startswith(prefix)]


# ---- YAML ----

@pytest.mark.parametrize("name", YAML_FILES)
def test_yaml_parses(name):
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d is not None]
    assert docs, f"{name} is empty"
    assert all(isinstance(d, dict) for d in docs)


def test_examples_can_be_read():
    assert COLLECT_ERROR is None, COLLECT_ERROR


def test_the_expected_examples_exist():
    for name in ("Dockerfile.node", "server.js", "kubernetes.yaml", "render.yaml",
                 "docker-compose.yml", "README.md", "demo-app.c"):
        assert (EXAMPLES / name).is_file(), name


def test_every_resil_init_command_in_yaml_is_collected():
    for name, spots in SPOTS.items():
        missed = [s for s in spots if id(s) not in COLLECTED.consumed]
        assert not missed, f"{name}: resil-init commands the test does not know how to read: {missed}"


def test_each_deployment_file_runs_resil_init():
    for prefix in ("Dockerfile.node", "kubernetes.yaml", "docker-compose.yml", "render.yaml"):
        assert by_source(prefix), f"no resil-init invocation found for {prefix}"


# ---- against SPEC.md ----

@needs_spec
@pytest.mark.parametrize("inv", SUPERVISORS, ids=str)
def test_invocation_uses_only_spec_options(inv):
    found, errors = inv.parse()
    assert not errors, errors
    _, command = inv.split()
    assert command, f"{inv}: no app command"
    assert "--" in inv.argv, f"{inv}: put `--` before the app command"
    for long, values in found.items():
        opt = SPEC_OPTIONS["--" + long]
        if len(values) > 1 and long not in ("emergency-env", "remap-exit", "rewrite", "verbose"):
            pytest.fail(f"{inv}: --{long} given {len(values)} times")
        assert opt


@needs_spec
@pytest.mark.parametrize("inv", SUPERVISORS, ids=str)
def test_resil_environment_names_spec_options(inv):
    known = {o.env: o for o in SPEC_OPTIONS.values()}
    for key, value in inv.env.items():
        if not key.startswith("RESIL_"):
            continue
        assert key in known, f"{inv.source}: {key} is no option of SPEC.md"
        opt = known[key]
        if opt.metavar:
            assert not check_value(opt, value, inv.source), (inv.source, key, value)
        else:
            assert value.lower() in BOOL_VALUES, f"{inv.source}: {key}={value!r} is not a boolean"


@needs_spec
@pytest.mark.parametrize("inv", SUBCOMMANDS, ids=str)
def test_subcommand_uses_only_spec_options(inv):
    args = inv.subcommand_args
    assert len(args) % 2 == 0 and all(a == "--state-dir" for a in args[::2]), (
        f"{inv}: `resil-init {inv.subcommand}` takes only --state-dir DIR")
    assert inv.argv[2:].count("--ready") + inv.argv[2:].count("--live") <= (
        1 if inv.subcommand == "probe" else 0), f"{inv}: --ready / --live belong to probe"


# ---- the real binary ----

needs_bin = pytest.mark.skipif(
    not os.access(BIN, os.X_OK),
    reason=f"resil-init binary {BIN} not built (run `make` or set RESIL_INIT_BIN)")


def clean_env(extra):
    """The invocation's environment, free of the test runner's own RESIL_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    env.update(extra)
    return env


@needs_bin
@pytest.mark.parametrize("inv", SUPERVISORS, ids=str)
def test_check_config_accepts_invocation(inv):
    opts, command = inv.split()
    # The app need not exist here: --check-config never starts it.
    argv = [str(BIN), "--check-config", *opts, "--", "true"] if command else \
        [str(BIN), "--check-config", *opts]
    r = subprocess.run(argv, env=clean_env(inv.env), capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    assert r.returncode == 0, f"{inv}\nexit {r.returncode}: {r.stderr.strip()}"
    settings = json.loads(r.stdout)
    assert isinstance(settings, dict)
    # Where the effective settings name an option, they must be what the
    # example meant (flag > environment).
    found, _ = inv.parse()
    for long in ("restart", "health-url", "memory-restart", "log-format"):
        want = inv.setting(long)
        if want is not None and isinstance(settings.get(long), str):
            assert settings[long] == want, (long, settings[long], want)
    if "emergency-env" in found and isinstance(settings.get("emergency-env"), list):
        assert settings["emergency-env"] == found["emergency-env"]
    if inv.setting("runtime-hints") is not None and "runtime-hints" in settings:
        assert settings["runtime-hints"] is True


@needs_bin
def test_check_config_rejects_a_bad_option():
    r = subprocess.run([str(BIN), "--check-config", "--no-such-option", "--", "true"],
                       env=clean_env({}), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert r.returncode == 2


@needs_bin
@pytest.mark.parametrize("inv", SUBCOMMANDS, ids=str)
def test_subcommand_runs(inv, tmp_path):
    # With an empty state directory there is no app: probe says 1, status says 1,
    # and neither is a usage error (2).
    argv = [str(BIN), inv.subcommand, *[a for a in inv.argv[2:] if a in ("--ready", "--live")]]
    args = inv.subcommand_args
    for i in range(0, len(args), 2):
        argv += [args[i], str(tmp_path)] if args[i] == "--state-dir" else args[i:i + 2]
    r = subprocess.run(argv, env=clean_env(inv.env), capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    assert r.returncode == 1, f"{inv}\nexit {r.returncode}: {r.stderr.strip()}"


# ---- Kubernetes ----

def k8s_docs():
    return [d for d in yaml.safe_load_all((EXAMPLES / "kubernetes.yaml").read_text()) if d]


def k8s_pod_specs():
    for doc in k8s_docs():
        if doc.get("kind") == "Pod":
            yield doc["spec"]
        elif doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield doc["spec"]["template"]["spec"]


def grace_s(inv):
    value = inv.setting("grace")
    return DEFAULT_GRACE_S if value is None else duration_s(value)


@needs_spec
def test_kubernetes_manifest():
    pods = list(k8s_pod_specs())
    assert pods, "kubernetes.yaml holds no pod template"
    for pod in pods:
        (ctr,) = [c for c in pod["containers"] if "resil-init" in json.dumps(c)]
        assert ctr["resources"]["limits"]["memory"] == "512Mi"
        assert ctr["terminationMessagePath"] == "/dev/termination-log"
        assert ctr["terminationMessagePolicy"] == "FallbackToLogsOnError"
        probe = ctr["livenessProbe"]["exec"]["command"]
        assert is_resil_init(probe[0]) and probe[1] == "probe"

        (inv,) = [i for i in by_source("kubernetes.yaml") if ctr["name"] in i.source]
        assert pod["terminationGracePeriodSeconds"] >= grace_s(inv), (
            "the kubelet would SIGKILL resil-init before its --grace runs out")
        for flag in ("restart", "health-url", "memory-restart"):
            assert inv.setting(flag), f"kubernetes.yaml should show --{flag}"
        assert inv.parse()[0].get("emergency-env"), "kubernetes.yaml should show --emergency-env"

        # The probe must read the state directory the supervisor writes.
        state_dir = inv.setting("state-dir")
        probe_dir = probe[probe.index("--state-dir") + 1] if "--state-dir" in probe else None
        assert probe_dir == state_dir
        if state_dir:
            mounts = [m["mountPath"] for m in ctr.get("volumeMounts") or []]
            assert state_dir in mounts, "the state directory should be a writable volume"


@needs_spec
def test_kubernetes_health_url_matches_the_container_port():
    for pod in k8s_pod_specs():
        for ctr in pod["containers"]:
            invs = [i for i in by_source("kubernetes.yaml") if ctr["name"] in i.source]
            for inv in invs:
                port = int(re.search(r":(\d+)/", inv.setting("health-url")).group(1))
                assert port in [p["containerPort"] for p in ctr.get("ports") or []]


# ---- Compose ----

@needs_spec
def test_compose_file():
    doc = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    for svc_name, svc in doc["services"].items():
        (inv,) = [i for i in by_source("docker-compose.yml") if svc_name in i.source]
        assert str(svc["mem_limit"]).lower() == "512m"
        assert compose_duration_s(svc["stop_grace_period"]) >= grace_s(inv), (
            "Compose would SIGKILL resil-init before its --grace runs out")
        assert "healthcheck" not in svc, "resil-init does the health checks"
        assert svc.get("init") is not True, "Docker's init would sit in front of resil-init"
        assert svc.get("restart") in ("on-failure", "always", "unless-stopped")


# ---- Render ----

@needs_spec
def test_render_blueprint():
    doc = yaml.safe_load((EXAMPLES / "render.yaml").read_text())
    (svc,) = doc["services"]
    assert svc["type"] == "web"
    (inv,) = by_source("render.yaml")
    assert inv.setting("memory-restart") == "90%"
    assert (inv.setting("runtime-hints") or "").lower() in BOOL_VALUES - {"0", "false", "no", "off"}
    emergency = inv.parse()[0].get("emergency-env") or []
    assert "EMERGENCY_MODE=true" in emergency and "DISABLE_WEBSOCKETS=true" in emergency
    if "maxShutdownDelaySeconds" in svc:
        assert svc["maxShutdownDelaySeconds"] >= grace_s(inv)
    port = int(re.search(r":(\d+)/", inv.setting("health-url")).group(1))
    assert str(port) == inv.env.get("PORT"), "the app must listen where the health URL points"


# ---- Dockerfile.node ----

@needs_spec
def test_node_dockerfile():
    image = node_image()
    instructions = [w for w, _ in image["instructions"]]
    assert "HEALTHCHECK" not in instructions, "resil-init does the health checks"
    copies = [r for w, r in image["instructions"] if w == "COPY" and "--from=" in r]
    assert any(r.split()[-1] == "/resil-init" for r in copies)
    assert image["entrypoint"][0] == "/resil-init" and image["entrypoint"][-1] == "--"
    assert image["cmd"] == ["node", "server.js"]
    env = image["env"]
    assert env["RESIL_RESTART"] == "on-failure"
    assert env["RESIL_HEALTH_URL"] == f"http://127.0.0.1:{env['PORT']}/health"
    assert env["RESIL_RUNTIME_HINTS"].lower() in BOOL_VALUES
    (inv,) = by_source("Dockerfile.node")
    assert "EMERGENCY_MODE=true" in inv.parse()[0]["emergency-env"]


# ---- server.js ----

NODE = next((p for p in ("/usr/bin/node", "/usr/local/bin/node") if os.access(p, os.X_OK)), None)


class NodeServer:
    def __init__(self, env):
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("RESIL_") and k not in ("EMERGENCY_MODE", "DISABLE_WEBSOCKETS")}
        full.update({"PORT": "0", "HOST": "127.0.0.1", **env})
        self.proc = subprocess.Popen([NODE, str(EXAMPLES / "server.js")], env=full,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.out = b""
        m = self.wait_for(rb"listening on 127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))

    def wait_for(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not (m := re.search(pattern, self.out)):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"no {pattern!r} in {self.out!r}")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"server.js exited: {self.out!r}")
                self.out += chunk
        return m

    def health(self):
        url = f"http://127.0.0.1:{self.port}/health"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc.stdout.close()


@pytest.fixture
def node_server():
    started = []

    def start(env=None):
        s = NodeServer(env or {})
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


@needs_node
def test_server_js_health(node_server):
    s = node_server({"RESIL_RESTART_COUNT": "2", "RESIL_MEMORY_TIER": "warning"})
    status, body = s.health()
    assert status == 200
    assert body["status"] == "ok" and body["emergency"] is False
    assert body["restart_count"] == "2" and body["tier"] == "warning"


@needs_node
def test_server_js_emergency_mode(node_server):
    s = node_server({"EMERGENCY_MODE": "true", "DISABLE_WEBSOCKETS": "true"})
    s.wait_for(rb"emergency mode: websockets disabled, cache off")
    status, body = s.health()
    assert status == 200
    assert body["status"] == "degraded" and body["emergency"] is True
    assert body["websockets"] is False and body["cache"] is False


@needs_node
def test_server_js_stops_gracefully_on_sigterm(node_server):
    s = node_server()
    s.health()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    s.wait_for(rb"SIGTERM received, shutting down gracefully")
