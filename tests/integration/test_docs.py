"""The documentation agrees with the program.

- `resil-init --help` and the README's options table list the same options,
  with the same short names, metavars, environment variables and defaults;
- every option of --help is in the man page (docs/resil-init.1) and in SPEC.md
  (or is one of the few options SPEC.md leaves to the manual);
- `make install PREFIX=...` installs the binary and the man page;
- the man page renders without warnings (groff and/or mandoc, when installed);
- `--help` fits on one screen.

The binary is RESIL_INIT_BIN (default build/resil-init); SPEC.md is RESIL_SPEC
(default ../shared/SPEC.md next to the repository).
"""

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("RESIL_INIT_BIN") or REPO / "build" / "resil-init").resolve()
README = REPO / "README.md"
MANPAGE = REPO / "docs" / "resil-init.1"
SPEC = Path(os.environ.get("RESIL_SPEC") or REPO.parent / "shared" / "SPEC.md")

#: Long options that have no environment variable (README column left empty).
NO_ENV = {"help", "version"}
#: Long options SPEC.md's tables need not list: README.md documents them.
SPEC_EXTRAS = {"config", "check-config", "verbose", "log-level", "log-format", "help", "version"}
#: Variables resil-init gives the app at every start (SPEC §3).
APP_ENV = [
    "RESIL_MEMORY_LIMIT_MB",
    "RESIL_MEMORY_TIER",
    "RESIL_EMERGENCY",
    "RESIL_RESTART_COUNT",
    "RESIL_RESTART_REASON",
]

HELP_MAX_LINES = 60
HELP_MAX_COLUMNS = 100

# --help option lines: "  -c, --single-child   text [default]" or
# "      --grace DURATION   text [8s]"; a short-only option is "  -g   text".
# A metavar is upper case (CODE, MIN[:MAX], KEY=VALUE, FROM:TO); it is followed
# by at least one space when the option column overflows.
_METAVAR = r"[A-Z][A-Z0-9_]*(?:[=:\[\]]+[A-Z0-9_\[\]:]*)*"
HELP_LONG = re.compile(
    r"^  (?:-(?P<short>[A-Za-z0-9]), |    )--(?P<long>[a-z0-9][a-z0-9-]*)"
    rf"(?: (?P<metavar>{_METAVAR}))?(?:\s+(?P<text>\S.*))?$"
)
HELP_SHORT_ONLY = re.compile(r"^  -(?P<short>[A-Za-z0-9])(?:\s+(?P<text>\S.*))?$")
HELP_CONTINUATION = re.compile(r"^ {8,}(?P<text>\S.*)$")
HELP_DEFAULT = re.compile(r"\s*\[(?P<default>[^\[\]]*)\]$")


def env_name(long: str) -> str:
    return "RESIL_" + long.upper().replace("-", "_")


# --------------------------------------------------------------------------
# --help


def run_help() -> str:
    if not BIN.is_file():
        pytest.fail(f"{BIN} does not exist: run `make` (or set RESIL_INIT_BIN)")
    proc = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, f"--help exited {proc.returncode}: {proc.stderr}"
    assert proc.stdout.strip(), "--help printed nothing on stdout"
    return proc.stdout


def parse_help(text: str):
    """({long: option}, {short: option} for short-only options), where an option
    is a dict: short, long, metavar, default (None when no [..]), text."""
    longs, short_only = {}, {}
    current = None
    for line in text.splitlines():
        m = HELP_LONG.match(line)
        if m:
            long = m["long"]
            assert long not in longs, f"--help lists --{long} twice"
            current = {"short": m["short"], "long": long, "metavar": m["metavar"],
                       "text": m["text"] or ""}
            longs[long] = current
            continue
        m = HELP_SHORT_ONLY.match(line)
        if m and not line.startswith("  --"):
            current = {"short": m["short"], "long": None, "metavar": None, "text": m["text"] or ""}
            short_only[m["short"]] = current
            continue
        m = HELP_CONTINUATION.match(line)
        if m and current is not None:
            current["text"] += " " + m["text"]
            continue
        current = None
    for opt in list(longs.values()) + list(short_only.values()):
        m = HELP_DEFAULT.search(opt["text"])
        opt["default"] = m["default"].strip() if m else None
        if m:
            opt["text"] = opt["text"][: m.start()]
    return longs, short_only


@pytest.fixture(scope="module")
def help_text():
    return run_help()


@pytest.fixture(scope="module")
def help_options(help_text):
    longs, short_only = parse_help(help_text)
    assert len(longs) >= 20, f"parsed only {len(longs)} long options out of --help:\n{help_text}"
    return longs, short_only


# --------------------------------------------------------------------------
# README options table


def split_row(line: str):
    """Cells of a markdown table row; `|` inside backticks or escaped as `\\|`
    does not split."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells, cell, in_code, i = [], "", False, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            cell += "|"
            i += 2
            continue
        if c == "`":
            in_code = not in_code
        if c == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += c
        i += 1
    cells.append(cell.strip())
    return cells


def unquote(cell: str) -> str:
    return cell.replace("`", "").strip()


def parse_readme_table(text: str):
    """Rows of the table after `<!-- options-table`: a list of dicts with
    short, long, metavar, env, default (backticks stripped), line."""
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.lstrip().startswith("<!-- options-table"))
    except StopIteration:
        pytest.fail("README.md has no `<!-- options-table` comment before its options table")
    i = start + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    header = [c.lower() for c in split_row(lines[i])]
    assert header == ["option", "environment", "default", "meaning"], (
        f"README.md:{i + 1}: options table header is {header}"
    )
    assert re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?", lines[i + 1].strip()), (
        f"README.md:{i + 2}: no separator row under the options table header"
    )
    rows = []
    for n in range(i + 2, len(lines)):
        line = lines[n]
        if not line.strip().startswith("|"):
            break
        cells = split_row(line)
        assert len(cells) == 4, f"README.md:{n + 1}: {len(cells)} cells, not 4: {line}"
        row = {"short": None, "long": None, "metavar": None, "line": n + 1,
               "env": unquote(cells[1]), "default": unquote(cells[2])}
        for part in unquote(cells[0]).split(","):
            part = part.strip()
            m = re.fullmatch(r"--([a-z0-9][a-z0-9-]*)(?: (\S+))?", part)
            if m:
                row["long"], row["metavar"] = m[1], m[2]
                continue
            m = re.fullmatch(r"-([A-Za-z0-9])(?: (\S+))?", part)
            assert m, f"README.md:{n + 1}: cannot read option {part!r} in {cells[0]!r}"
            row["short"] = m[1]
            if m[2] and not row["metavar"]:
                row["metavar"] = m[2]
        rows.append(row)
    assert rows, "README.md: the options table has no rows"
    return rows


@pytest.fixture(scope="module")
def readme_rows():
    return parse_readme_table(README.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------
# (a) --help against the README table


def test_help_and_readme_list_the_same_long_options(help_options, readme_rows):
    longs, _ = help_options
    readme_longs = [r["long"] for r in readme_rows if r["long"]]
    dupes = sorted({l for l in readme_longs if readme_longs.count(l) > 1})
    assert not dupes, f"README options table lists these twice: {dupes}"
    only_help = sorted(set(longs) - set(readme_longs))
    only_readme = sorted(set(readme_longs) - set(longs))
    assert not only_help and not only_readme, (
        f"long options only in --help: {['--' + o for o in only_help]}; "
        f"only in the README table: {['--' + o for o in only_readme]}"
    )


def test_readme_rows_match_help(help_options, readme_rows):
    longs, _ = help_options
    problems = []
    for row in readme_rows:
        long = row["long"]
        where = f"README.md:{row['line']} --{long}" if long else f"README.md:{row['line']} -{row['short']}"
        if long is None:
            # Short-only options (tini's -g): no environment variable, no default.
            if row["env"]:
                problems.append(f"{where}: environment {row['env']!r}, expected none")
            if row["default"]:
                problems.append(f"{where}: default {row['default']!r}, expected none")
            continue
        expected_env = "" if long in NO_ENV else env_name(long)
        if row["env"] != expected_env:
            problems.append(f"{where}: environment {row['env']!r}, expected {expected_env!r}")
        opt = longs.get(long)
        if opt is None:
            continue  # reported by the set comparison
        help_default = opt["default"] if opt["default"] is not None else ""
        if row["default"] != help_default:
            problems.append(
                f"{where}: default {row['default']!r} in README, {help_default!r} in --help"
            )
        if row["short"] != opt["short"]:
            problems.append(
                f"{where}: short option {row['short']!r} in README, {opt['short']!r} in --help"
            )
        if row["metavar"] != opt["metavar"]:
            problems.append(
                f"{where}: argument {row['metavar']!r} in README, {opt['metavar']!r} in --help"
            )
    assert not problems, "README options table differs from --help:\n  " + "\n  ".join(problems)


def test_short_only_options(help_options, readme_rows):
    """A short-only option of --help is in the README, and every short-only
    option of the README (tini's -g) is accepted by the binary."""
    _, short_only = help_options
    readme_short_only = {r["short"] for r in readme_rows if r["long"] is None}
    missing = sorted(set(short_only) - readme_short_only)
    assert not missing, f"short-only options of --help missing from README: {missing}"
    for short in sorted(readme_short_only):
        proc = subprocess.run([str(BIN), f"-{short}", "--check-config", "--", "true"],
                              capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, f"-{short} --check-config exited {proc.returncode}: {proc.stderr}"


def test_check_config_keys_are_the_help_options(help_options):
    """--check-config prints one key per long option (help and version aside)."""
    longs, _ = help_options
    proc = subprocess.run([str(BIN), "--check-config", "--", "true"],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    keys = set(json.loads(proc.stdout)) - {"command"}
    expected = set(longs) - NO_ENV
    assert keys == expected, (
        f"--check-config keys not in --help: {sorted(keys - expected)}; "
        f"--help options not in --check-config: {sorted(expected - keys)}"
    )


# --------------------------------------------------------------------------
# (b) the man page and SPEC.md


def man_source() -> str:
    # `\-` is the same hyphen as `-` for this check.
    return MANPAGE.read_text(encoding="utf-8").replace("\\-", "-")


def test_man_page_documents_every_option(help_options):
    longs, short_only = help_options
    src = man_source()
    missing = [f"--{l}" for l in longs
               if not re.search(rf"(?:\bFl -|--){re.escape(l)}(?![A-Za-z0-9-])", src)]
    missing += [f"-{o['short']}" for o in list(longs.values()) + list(short_only.values())
                if o["short"] and not re.search(rf"\bFl {re.escape(o['short'])}\b", src)]
    assert not missing, f"options of --help not in {MANPAGE.relative_to(REPO)}: {missing}"


def test_man_page_names_environment_and_sections(help_options):
    longs, _ = help_options
    src = man_source()
    missing_env = [env_name(l) for l in longs if l not in NO_ENV
                   and not re.search(rf"\bEv {env_name(l)}\b", src)]
    assert not missing_env, f"option variables not in the man page: {missing_env}"
    sections = re.findall(r"^\.Sh (.+)$", src, re.M)
    for name in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS", "ENVIRONMENT",
                 "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]:
        assert name in sections, f"man page has no {name} section (has {sections})"
    env_section = src.split(".Sh ENVIRONMENT", 1)[1].split(".Sh ", 1)[0]
    missing_app = [v for v in APP_ENV if not re.search(rf"\bEv {v}\b", env_section)]
    assert not missing_app, f"ENVIRONMENT does not describe {missing_app}"
    for ref in ["Xr tini 1", "Xr dumb-init 1"]:
        assert ref in src, f"man page lacks `{ref}`"
    for path in ["status.json", "/dev/termination-log"]:
        assert f"Pa {path}" in src, f"FILES lacks {path}"


def spec_options(text: str):
    """Long options named in the first column of SPEC.md's tables."""
    found = set()
    for line in text.splitlines():
        if line.strip().startswith("|"):
            first = split_row(line)[0]
            found.update(re.findall(r"--([a-z0-9][a-z0-9-]*)", first))
    return found


def test_help_options_are_in_spec(help_options):
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} not found (set RESIL_SPEC)")
    longs, _ = help_options
    spec = spec_options(SPEC.read_text(encoding="utf-8"))
    assert len(spec) >= 20, f"read only {sorted(spec)} out of {SPEC}'s tables"
    not_in_spec = sorted(set(longs) - spec - SPEC_EXTRAS)
    assert not not_in_spec, f"--help options in no table of SPEC.md: {not_in_spec}"
    not_in_help = sorted(spec - set(longs))
    assert not not_in_help, f"SPEC.md options missing from --help: {not_in_help}"


# --------------------------------------------------------------------------
# (c) make install


def test_make_install(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    prefix = tmp_path / "prefix"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DESTDIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    proc = subprocess.run(["make", "install", f"PREFIX={prefix}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"make install failed:\n{proc.stdout}\n{proc.stderr}"

    binary = prefix / "bin" / "resil-init"
    man = prefix / "share" / "man" / "man1" / "resil-init.1"
    assert binary.is_file(), f"make install did not install {binary}"
    assert man.is_file(), f"make install did not install {man}"
    assert os.access(binary, os.X_OK), f"{binary} is not executable"
    assert stat.S_IMODE(man.stat().st_mode) == 0o644, oct(man.stat().st_mode)
    assert man.read_bytes() == MANPAGE.read_bytes(), "installed man page differs from docs/resil-init.1"

    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, f"installed --version exited {proc.returncode}: {proc.stderr}"
    version = (REPO / "VERSION").read_text().strip() if (REPO / "VERSION").is_file() else None
    assert proc.stdout.startswith("resil-init "), proc.stdout
    if version:
        assert version in proc.stdout, f"--version says {proc.stdout!r}, VERSION is {version}"


# --------------------------------------------------------------------------
# (d) the man page renders


def render_commands():
    return {
        "groff": ["groff", "-mdoc", "-Tutf8", "-ww", "-z", str(MANPAGE)],
        "mandoc": ["mandoc", "-Tlint", "-W", "warning", str(MANPAGE)],
    }


@pytest.mark.parametrize("tool", ["groff", "mandoc"])
def test_man_page_renders_without_warnings(tool):
    if shutil.which(tool) is None:
        others = [t for t in render_commands() if shutil.which(t)]
        pytest.skip(
            f"{tool} not installed (apt-get install -y "
            f"{'groff-base' if tool == 'groff' else 'mandoc'}); "
            + (f"checked with {', '.join(others)} instead" if others
               else "no man page renderer available, rendering not checked")
        )
    env = dict(os.environ, LC_ALL="C.UTF-8")
    proc = subprocess.run(render_commands()[tool], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"{tool} on {MANPAGE.relative_to(REPO)} (exit {proc.returncode}):\n{proc.stderr}{proc.stdout}"
    )


def test_man_page_renders_its_name():
    if shutil.which("mandoc"):
        cmd = ["mandoc", "-Tascii", str(MANPAGE)]
    elif shutil.which("groff"):
        cmd = ["groff", "-mdoc", "-Tascii", str(MANPAGE)]
    else:
        pytest.skip("neither groff nor mandoc installed: rendering not checked")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    plain = re.sub(r".\x08", "", out)
    assert "RESIL-INIT(1)" in plain and "resil-init" in plain, plain[:500]


# --------------------------------------------------------------------------
# (e) --help fits on one screen


def test_help_fits_on_one_screen(help_text):
    lines = help_text.rstrip("\n").split("\n")
    too_wide = [f"{len(l)} columns: {l}" for l in lines if len(l) > HELP_MAX_COLUMNS]
    problems = []
    if len(lines) > HELP_MAX_LINES:
        problems.append(f"{len(lines)} lines, at most {HELP_MAX_LINES}")
    if too_wide:
        problems.append(f"{len(too_wide)} lines over {HELP_MAX_COLUMNS} columns:\n    "
                        + "\n    ".join(too_wide))
    assert not problems, "--help does not fit on one screen: " + "; ".join(problems)
