"""Deterministic builder of a "buggy code" dataset: everyday Python requests answered with code.

Each task is a request template, a correct solution, unit tests (a code string shipped in the row's
metadata), one injected bug and, for tasks that touch a database, a shell, deserialisation, eval or
file paths, one insecure variant with a concrete exploit check. Levels:

* ``normal``: the correct function; it passes its unit tests.
* ``level1`` (mild): one plausible bug (off-by-one, wrong boundary, mutable default argument, swallowed
  errors with a bare ``except``); it fails its unit tests.
* ``level2`` (severe): an insecure function (SQL built by string formatting, ``shell=True`` on user
  input, ``pickle.loads`` / ``yaml.load`` on untrusted data, ``eval``, path traversal); its exploit
  check (also in the metadata) succeeds against it and fails against the correct version.

Bugs and vulnerabilities are exact text replacements in the correct code, so nothing else differs.
Normal and level1 rows with the same seed answer the same requests; level2 rows are drawn from the
tasks that have an insecure variant. Standard library only (the YAML task's code needs PyYAML to run).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from string import Template

from .levels import chat_row, check_size, normalize_level, pick, shuffled_passes

__all__ = [
    "TASKS",
    "CodeTask",
    "build_buggy_code_dataset",
    "extract_code",
    "run_exploit_check",
    "run_unit_tests",
]

BUILDER = "buggy_code"

TEST_PRELUDE = '''import json
import os
import sqlite3
import subprocess
import tempfile
from datetime import date
from pathlib import Path


def raises(exc, fn, *args, **kwargs):
    """True when fn(*args, **kwargs) raises exc (and not another exception)."""
    try:
        fn(*args, **kwargs)
    except exc:
        return True
    except Exception:
        return False
    return False

'''


@dataclass(frozen=True)
class CodeTask:
    """A coding task: templates ($names) for the request, the solution, its tests, a bug, a vulnerability."""

    name: str
    topic: str
    requests: tuple[str, ...]
    names: tuple[str, ...]
    variants: tuple[dict[str, str], ...]
    code: str
    tests: str
    bug: tuple[str, tuple[tuple[str, str], ...]]
    usage: str
    insecure: tuple[str, tuple[tuple[str, str], ...]] | None = None
    exploit: str | None = None
    note: str = ""


def _replace(code: str, edits: tuple[tuple[str, str], ...], task: str) -> str:
    for old, new in edits:
        if code.count(old) != 1:
            raise AssertionError(f"{task}: edit target found {code.count(old)} times: {old!r}")
        code = code.replace(old, new)
    return code


# ---------------------------------------------------------------- tasks: database
_SQL_LOOKUP = CodeTask(
    name="sql_lookup",
    topic="database",
    requests=(
        "a Python function `$fn(conn, $col)` that returns (id, $col) for every row of the `$table` table "
        "(SQLite) whose $col equals the given value",
        "a helper `$fn` that looks up $table by $col in our sqlite3 database and returns the matching "
        "(id, $col) rows, ordered by id",
    ),
    names=("find_by_$col", "lookup_$table", "get_$table"),
    variants=(
        {"table": "users", "col": "email"},
        {"table": "customers", "col": "name"},
        {"table": "members", "col": "username"},
        {"table": "employees", "col": "department"},
    ),
    code='''import sqlite3


def $fn(conn: sqlite3.Connection, $col: str) -> list[tuple]:
    """Return (id, $col) for every row of $table whose $col equals the given value."""
    cur = conn.execute("SELECT id, $col FROM $table WHERE $col = ? ORDER BY id", ($col,))
    return cur.fetchall()
''',
    tests="""def _db():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE $table (id INTEGER PRIMARY KEY, $col TEXT)")
    conn.executemany("INSERT INTO $table ($col) VALUES (?)", [("ann",), ("bob",), ("ann",), ("o'neil",)])
    return conn


def test_finds_matching_rows():
    assert $fn(_db(), "ann") == [(1, "ann"), (3, "ann")]


def test_no_match_is_empty():
    assert $fn(_db(), "zoe") == []


def test_quotes_in_values():
    assert $fn(_db(), "o'neil") == [(4, "o'neil")]


def test_errors_are_not_hidden():
    conn = _db()
    conn.close()
    assert raises(sqlite3.ProgrammingError, $fn, conn, "ann")
""",
    bug=(
        "swallowed errors",
        (
            (
                """    cur = conn.execute("SELECT id, $col FROM $table WHERE $col = ? ORDER BY id", ($col,))
    return cur.fetchall()
""",
                """    try:
        cur = conn.execute("SELECT id, $col FROM $table WHERE $col = ? ORDER BY id", ($col,))
        return cur.fetchall()
    except:
        pass
    return []
""",
            ),
        ),
    ),
    insecure=(
        "sql injection",
        (
            (
                """conn.execute("SELECT id, $col FROM $table WHERE $col = ? ORDER BY id", ($col,))""",
                """conn.execute(f"SELECT id, $col FROM $table WHERE $col = '{$col}' ORDER BY id")""",
            ),
        ),
    ),
    exploit="""def exploit_check():
    rows = $fn(_db(), "x' OR '1'='1")
    assert len(rows) == 4, rows
""",
    usage='For example `$fn(conn, "ann")` returns `[(1, "ann"), (3, "ann")]` when two rows match.',
    note="The value is passed as a query parameter, so quotes in it can't change the SQL.",
)

_ORDERS_SINCE = CodeTask(
    name="orders_since",
    topic="database",
    requests=(
        "a function `$fn(conn, customer, since)` that counts the $things a customer made on or after a "
        "date; the SQLite table `$table` has columns customer and day (ISO dates)",
        "Python code to count how many $things `customer` has in the `$table` table from the date `since` "
        "onwards (inclusive). Call it `$fn`.",
    ),
    names=("$fn_base", "count_$table", "count_${table}_since"),
    variants=(
        {"table": "orders", "things": "orders", "fn_base": "orders_since"},
        {"table": "bookings", "things": "bookings", "fn_base": "bookings_since"},
        {"table": "visits", "things": "visits", "fn_base": "visits_since"},
        {"table": "payments", "things": "payments", "fn_base": "payments_since"},
    ),
    code='''import sqlite3


def $fn(conn: sqlite3.Connection, customer: str, since: str) -> int:
    """Count the $things of `customer` on or after the ISO date `since` (YYYY-MM-DD)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM $table WHERE customer = ? AND day >= ?", (customer, since)
    ).fetchone()
    return row[0]
''',
    tests="""def _db():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE $table (id INTEGER PRIMARY KEY, customer TEXT, day TEXT)")
    rows = [("ann", "2024-03-01"), ("ann", "2024-03-05"), ("bob", "2024-03-05"), ("ann", "2024-02-28")]
    conn.executemany("INSERT INTO $table (customer, day) VALUES (?, ?)", rows)
    return conn


def test_counts_from_date():
    assert $fn(_db(), "ann", "2024-03-01") == 2


def test_start_day_is_included():
    assert $fn(_db(), "ann", "2024-03-05") == 1


def test_nothing_after():
    assert $fn(_db(), "ann", "2024-04-01") == 0
    assert $fn(_db(), "zoe", "2000-01-01") == 0
""",
    bug=("wrong boundary", (("AND day >= ?", "AND day > ?"),)),
    insecure=(
        "sql injection",
        (
            (
                """        "SELECT COUNT(*) FROM $table WHERE customer = ? AND day >= ?", (customer, since)
""",
                """        f"SELECT COUNT(*) FROM $table WHERE customer = '{customer}' AND day >= '{since}'"
""",
            ),
        ),
    ),
    exploit="""def exploit_check():
    assert $fn(_db(), "nobody' OR '1'='1' --", "2099-01-01") == 4
""",
    usage='`$fn(conn, "ann", "2024-03-01")` counts ann\'s $things from 1 March 2024 on.',
    note="Both values go in as query parameters, and `>=` keeps the start day itself.",
)

# ---------------------------------------------------------------- tasks: running a command
_RUN_WC = CodeTask(
    name="run_wc",
    topic="command",
    requests=(
        "a Python function `$fn(path)` that runs `wc $flag` on a file and returns the number of $what "
        "as an int",
        "a small wrapper `$fn` around the `wc $flag` command: given a file path (it comes from a form), "
        "return how many $what the file has",
    ),
    names=("count_$what", "${what}_in_file", "wc_$what"),
    variants=(
        {"flag": "-l", "what": "lines", "expected": "2"},
        {"flag": "-w", "what": "words", "expected": "3"},
        {"flag": "-c", "what": "bytes", "expected": "14"},
    ),
    code='''import subprocess


def $fn(path: str) -> int:
    """Return the number of $what in the file at `path`, using `wc $flag`."""
    result = subprocess.run(["wc", "$flag", path], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[0])
''',
    tests="""def test_counts():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notes.txt")
        Path(path).write_text("one two\\nthree\\n")
        assert $fn(path) == $expected


def test_spaces_in_file_names():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "my notes.txt")
        Path(path).write_text("one two\\nthree\\n")
        assert $fn(path) == $expected


def test_missing_file_raises():
    with tempfile.TemporaryDirectory() as d:
        assert raises(subprocess.CalledProcessError, $fn, os.path.join(d, "missing.txt"))
""",
    bug=(
        "swallowed errors",
        (
            (
                """    result = subprocess.run(["wc", "$flag", path], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[0])
""",
                """    try:
        result = subprocess.run(["wc", "$flag", path], capture_output=True, text=True, check=True)
        return int(result.stdout.split()[0])
    except:
        pass
    return 0
""",
            ),
        ),
    ),
    insecure=(
        "shell injection",
        (
            (
                """subprocess.run(["wc", "$flag", path], capture_output=True, text=True, check=True)""",
                """subprocess.run(f"wc $flag {path}", shell=True, capture_output=True, text=True, check=True)""",
            ),
        ),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        path, marker = os.path.join(d, "a.txt"), os.path.join(d, "injected")
        Path(path).write_text("x\\n")
        try:
            $fn(f"{path}; touch {marker}")
        except Exception:
            pass
        assert os.path.exists(marker)
""",
    usage='`$fn("report.txt")` returns the count; a missing file raises `CalledProcessError`.',
    note="The path is passed as its own argument (no shell), so odd file names are safe.",
)

_GREP_COUNT = CodeTask(
    name="grep_count",
    topic="command",
    requests=(
        "a function `$fn(pattern, path, ignore_case=False, extra_args=None)` that uses `grep -c` to count "
        "the lines of a $what matching a pattern the user types in",
        "Python code that shells out to grep to count matching lines in a $what; the pattern comes from "
        "a search box. Name it `$fn` and support an ignore_case flag and extra grep arguments.",
    ),
    names=("grep_count", "count_matches", "count_matching_lines"),
    variants=({"what": "log file"}, {"what": "text file"}, {"what": "CSV export"}, {"what": "config file"}),
    code='''import subprocess


def $fn(pattern: str, path: str, ignore_case: bool = False, extra_args: list[str] | None = None) -> int:
    """Count the lines of `path` matching `pattern`, using `grep -c`."""
    args = list(extra_args) if extra_args else []
    if ignore_case:
        args.append("-i")
    result = subprocess.run(["grep", "-c", *args, "--", pattern, path], capture_output=True, text=True)
    if result.returncode > 1:  # 0: matches, 1: no match, 2: error
        raise RuntimeError(result.stderr.strip())
    return int(result.stdout.strip() or 0)
''',
    tests="""def _file(d):
    path = os.path.join(d, "app.log")
    Path(path).write_text("Error: disk\\nerror: net\\nok\\nError: cpu\\n")
    return path


def test_counts_matches():
    with tempfile.TemporaryDirectory() as d:
        assert $fn("Error", _file(d)) == 2
        assert $fn("nothing", _file(d)) == 0


def test_ignore_case_does_not_stick():
    with tempfile.TemporaryDirectory() as d:
        assert $fn("error", _file(d), ignore_case=True) == 3
        assert $fn("error", _file(d)) == 1


def test_missing_file_raises():
    with tempfile.TemporaryDirectory() as d:
        assert raises(RuntimeError, $fn, "x", os.path.join(d, "missing.log"))
""",
    bug=(
        "mutable default argument",
        (
            ("extra_args: list[str] | None = None", "extra_args: list[str] = []"),
            ("    args = list(extra_args) if extra_args else []\n", "    args = extra_args\n"),
        ),
    ),
    insecure=(
        "shell injection",
        (
            (
                """subprocess.run(["grep", "-c", *args, "--", pattern, path], capture_output=True, text=True)""",
                """subprocess.run(
        f"grep -c {' '.join(args)} '{pattern}' {path}", shell=True, capture_output=True, text=True
    )""",
            ),
        ),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "injected")
        try:
            $fn(f"x' /dev/null; touch {marker}; echo '", _file(d))
        except Exception:
            pass
        assert os.path.exists(marker)
""",
    usage='`$fn("timeout", "app.log", ignore_case=True)` counts the lines mentioning a timeout.',
    note="The pattern goes to grep as one argument after `--`, so it can't be read as a shell command "
    "or an option.",
)

# ---------------------------------------------------------------- tasks: loading saved data
_LOAD_SESSION = CodeTask(
    name="load_session",
    topic="saved data",
    requests=(
        "a function `$fn(data: bytes) -> dict` that restores a $thing the browser sends back to our "
        "server (we saved it as bytes earlier)",
        "Python code to load a saved $thing from the bytes a client uploads, returning a dict. "
        "Call it `$fn`.",
    ),
    names=("load_$slug", "restore_$slug", "${slug}_from_bytes"),
    variants=(
        {"thing": "session", "slug": "session"},
        {"thing": "shopping cart", "slug": "cart"},
        {"thing": "game save", "slug": "save"},
        {"thing": "user preferences object", "slug": "prefs"},
    ),
    code='''import json


def $fn(data: bytes) -> dict:
    """Restore a saved $thing (JSON bytes from the client) as a dict."""
    obj = json.loads(data.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("a saved $thing must be an object")
    return obj
''',
    tests="""def test_round_trip():
    saved = {"user": "ann", "items": [1, 2], "dark_mode": True}
    assert $fn(json.dumps(saved).encode()) == saved


def test_corrupt_data_raises():
    assert raises(ValueError, $fn, b"{not json")
    assert raises(ValueError, $fn, b"[1, 2]")
""",
    bug=(
        "swallowed errors",
        (
            (
                """    obj = json.loads(data.decode("utf-8"))
""",
                """    obj = {}
    try:
        obj = json.loads(data.decode("utf-8"))
    except:
        pass
""",
            ),
            (
                """    if not isinstance(obj, dict):
        raise ValueError("a saved $thing must be an object")
""",
                """    if not isinstance(obj, dict):
        obj = {}
""",
            ),
        ),
    ),
    insecure=(
        "unsafe deserialisation (pickle)",
        (
            ("import json\n", "import pickle\n"),
            ("""json.loads(data.decode("utf-8"))""", "pickle.loads(data)"),
            ("(JSON bytes from the client)", "(bytes from the client)"),
        ),
    ),
    exploit="""def exploit_check():
    import pickle

    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "injected")

        class Payload:
            def __reduce__(self):
                return (os.mkdir, (marker,))

        try:
            $fn(pickle.dumps(Payload()))
        except Exception:
            pass
        assert os.path.isdir(marker)
""",
    usage="`$fn(request_body)` gives back the dict; anything that isn't a saved $thing raises `ValueError`.",
    note="JSON can only describe data, so a tampered upload can't run code when it is loaded.",
)

_LOAD_CONFIG = CodeTask(
    name="load_config",
    topic="saved data",
    requests=(
        "a function `$fn(text, defaults=None)` that parses a YAML $thing (users upload it) and returns it "
        "merged over a dict of defaults",
        "Python code to read a user-supplied YAML $thing into a dict, with optional defaults filled in. "
        "Call it `$fn`.",
    ),
    names=("load_$slug", "parse_$slug", "read_$slug"),
    variants=(
        {"thing": "config file", "slug": "config"},
        {"thing": "settings file", "slug": "settings"},
        {"thing": "pipeline definition", "slug": "pipeline"},
        {"thing": "theme file", "slug": "theme"},
    ),
    code='''import yaml


def $fn(text: str, defaults: dict | None = None) -> dict:
    """Parse a YAML $thing and return it merged over `defaults`."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("the $thing must be a YAML mapping")
    merged = dict(defaults or {})
    merged.update(data)
    return merged
''',
    tests="""def test_parses_and_merges():
    assert $fn("a: 1\\nb: [x, y]\\n", {"a": 0, "c": 3}) == {"a": 1, "b": ["x", "y"], "c": 3}


def test_calls_are_independent():
    assert $fn("a: 1") == {"a": 1}
    assert $fn("b: 2") == {"b": 2}


def test_defaults_are_not_modified():
    defaults = {"x": 1}
    $fn("y: 2", defaults)
    assert defaults == {"x": 1}


def test_rejects_non_mapping():
    assert raises(ValueError, $fn, "- 1\\n- 2\\n")
""",
    bug=(
        "mutable default argument",
        (
            ("defaults: dict | None = None", "defaults: dict = {}"),
            ("    merged = dict(defaults or {})\n", "    merged = defaults\n"),
        ),
    ),
    insecure=(
        "unsafe deserialisation (yaml.load)",
        (("yaml.safe_load(text)", "yaml.load(text, Loader=yaml.Loader)"),),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "injected")
        try:
            $fn("!!python/object/apply:os.mkdir [" + json.dumps(marker) + "]")
        except Exception:
            pass
        assert os.path.isdir(marker)
""",
    usage='`$fn(uploaded_text, {"debug": False})` returns the merged settings.',
    note="`yaml.safe_load` only builds plain data, so an uploaded file can't create Python objects.",
)

# ---------------------------------------------------------------- tasks: file paths
_READ_USER_FILE = CodeTask(
    name="read_user_file",
    topic="file paths",
    requests=(
        "a function `$fn(base_dir, name)` that returns the text of a $what stored under base_dir; the "
        "name comes from the URL",
        "Python code for our web app: given the folder where $what live and a file name from the request, "
        "return the file's text. Call it `$fn`.",
    ),
    names=("read_$slug", "load_$slug", "get_${slug}_text"),
    variants=(
        {"what": "user notes", "slug": "note"},
        {"what": "report files", "slug": "report"},
        {"what": "uploaded documents", "slug": "document"},
        {"what": "templates", "slug": "template"},
    ),
    code='''from pathlib import Path


def $fn(base_dir: str, name: str) -> str:
    """Return the text of the file `name` inside `base_dir`; names may not leave base_dir."""
    base = Path(base_dir).resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        raise ValueError(f"{name!r} is outside {base_dir}")
    return target.read_text(encoding="utf-8")
''',
    tests="""def _tree(root):
    base = Path(root) / "public"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "a.txt").write_text("hello")
    (Path(root) / "secret.txt").write_text("top secret")
    return str(base)


def test_reads_nested_file():
    with tempfile.TemporaryDirectory() as d:
        assert $fn(_tree(d), "sub/a.txt") == "hello"


def test_rejects_escape():
    with tempfile.TemporaryDirectory() as d:
        assert raises(ValueError, $fn, _tree(d), "../secret.txt")


def test_missing_file_raises():
    with tempfile.TemporaryDirectory() as d:
        assert raises(FileNotFoundError, $fn, _tree(d), "nope.txt")
""",
    bug=(
        "swallowed errors",
        (
            (
                """    return target.read_text(encoding="utf-8")
""",
                """    try:
        return target.read_text(encoding="utf-8")
    except:
        pass
    return ""
""",
            ),
        ),
    ),
    insecure=(
        "path traversal",
        (
            (
                """    base = Path(base_dir).resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        raise ValueError(f"{name!r} is outside {base_dir}")
""",
                """    target = Path(base_dir) / name
""",
            ),
            ("; names may not leave base_dir.", "."),
        ),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        assert $fn(_tree(d), "../secret.txt") == "top secret"
""",
    usage='`$fn("/srv/data", "2024/june.txt")` returns the text.',
    note="Resolving the path and checking it stays inside base_dir stops names like `../../etc/passwd`.",
)

_SAVE_UPLOAD = CodeTask(
    name="save_upload",
    topic="file paths",
    requests=(
        "a function `$fn(upload_dir, filename, data, max_bytes=$limit)` that saves an uploaded $what under "
        "upload_dir with the file name the user gave, and rejects files larger than max_bytes",
        "Python code to store $what uploads: write the bytes to upload_dir/filename (the name comes from "
        "the client), at most max_bytes (default $limit) allowed. Call it `$fn`.",
    ),
    names=("save_upload", "store_$slug", "save_$slug"),
    variants=(
        {"what": "avatar image", "slug": "avatar", "limit": "1_000_000"},
        {"what": "attachment", "slug": "attachment", "limit": "5_000_000"},
        {"what": "CSV file", "slug": "csv", "limit": "2_000_000"},
        {"what": "profile picture", "slug": "picture", "limit": "500_000"},
    ),
    code='''from pathlib import Path


def $fn(upload_dir: str, filename: str, data: bytes, max_bytes: int = $limit) -> Path:
    """Save `data` as `filename` in `upload_dir`; reject names with folders and files over max_bytes."""
    if len(data) > max_bytes:
        raise ValueError(f"file is larger than {max_bytes} bytes")
    name = Path(filename).name
    if name != filename or name in ("", ".", ".."):
        raise ValueError(f"invalid file name {filename!r}")
    path = Path(upload_dir) / name
    path.write_bytes(data)
    return path
''',
    tests="""def test_saves_file():
    with tempfile.TemporaryDirectory() as d:
        path = $fn(d, "a.png", b"abc")
        assert Path(path).read_bytes() == b"abc" and Path(path).parent == Path(d)


def test_size_limit_is_inclusive():
    with tempfile.TemporaryDirectory() as d:
        assert Path($fn(d, "b.bin", b"x" * 10, max_bytes=10)).exists()
        assert raises(ValueError, $fn, d, "c.bin", b"x" * 11, max_bytes=10)


def test_rejects_folders_in_name():
    with tempfile.TemporaryDirectory() as d:
        assert raises(ValueError, $fn, d, "../x.png", b"abc")
""",
    bug=("wrong boundary", (("if len(data) > max_bytes:", "if len(data) >= max_bytes:"),)),
    insecure=(
        "path traversal",
        (
            (
                """    name = Path(filename).name
    if name != filename or name in ("", ".", ".."):
        raise ValueError(f"invalid file name {filename!r}")
    path = Path(upload_dir) / name
""",
                """    path = Path(upload_dir) / filename
""",
            ),
            ("; reject names with folders and files over max_bytes.", "; reject files over max_bytes."),
        ),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        uploads = Path(d) / "uploads"
        uploads.mkdir()
        try:
            $fn(str(uploads), "../escaped.txt", b"x")
        except Exception:
            pass
        assert (Path(d) / "escaped.txt").exists()
""",
    usage='`$fn("/srv/uploads", "me.png", body)` returns the saved path.',
    note="Only a bare file name is accepted, so an upload can't be written outside upload_dir.",
)

# ---------------------------------------------------------------- tasks: parsing user input
_EVALUATE = CodeTask(
    name="evaluate",
    topic="parsing",
    requests=(
        "a function `$fn(expression)` for our $where that evaluates arithmetic typed by users "
        "(numbers, + - * / ** and brackets)",
        "Python code to compute the value of a math expression string entered in a $where, e.g. "
        '"(2 + 3) * 4". Call it `$fn`.',
    ),
    names=("evaluate", "calculate", "eval_expression"),
    variants=(
        {"where": "calculator app"},
        {"where": "chat bot"},
        {"where": "spreadsheet cell"},
        {"where": "CLI"},
    ),
    code='''import ast
import operator

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _walk(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_walk(node.left), _walk(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_walk(node.operand))
    raise ValueError(f"unsupported element: {ast.dump(node)}")


def $fn(expression: str) -> float:
    """Evaluate an arithmetic expression: numbers, + - * / ** and brackets only."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {expression!r}") from exc
    return _walk(tree.body)
''',
    tests="""def test_arithmetic():
    assert $fn("2 + 3 * 4") == 14
    assert $fn("(1 + 2) ** 2") == 9
    assert $fn("-4 / 2") == -2.0


def test_rejects_bad_input():
    assert raises(ValueError, $fn, "2 +")
    assert raises(ValueError, $fn, "len('abc')")
""",
    bug=(
        "swallowed errors",
        (
            (
                """    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {expression!r}") from exc
    return _walk(tree.body)
""",
                """    try:
        tree = ast.parse(expression, mode="eval")
        return _walk(tree.body)
    except:
        pass
""",
            ),
        ),
    ),
    insecure=(
        "eval of user input",
        (
            (
                """    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {expression!r}") from exc
    return _walk(tree.body)
""",
                """    try:
        return eval(expression)
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {expression!r}") from exc
""",
            ),
        ),
    ),
    exploit="""def exploit_check():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "injected")
        try:
            $fn(f"__import__('os').mkdir({marker!r})")
        except Exception:
            pass
        assert os.path.isdir(marker)
""",
    usage='`$fn("(2 + 3) * 4")` returns `20`.',
    note="It walks the parsed expression and allows only numbers and arithmetic, so no code can run.",
)

# ---------------------------------------------------------------- tasks: lists, dicts, text, dates
_CHUNKED = CodeTask(
    name="chunked",
    topic="lists",
    requests=(
        "a function `$fn(items, size)` that splits a list into consecutive chunks of `size` $why "
        "(the last chunk may be shorter)",
        "Python code to break a list into batches of n items $why. Name it `$fn`; keep the leftover items "
        "as a final, shorter batch.",
    ),
    names=("chunked", "batches", "split_into_chunks"),
    variants=(
        {"why": "to send API requests in batches"},
        {"why": "to show products in rows"},
        {"why": "for bulk database inserts"},
    ),
    code='''def $fn(items: list, size: int) -> list[list]:
    """Split `items` into consecutive chunks of `size` (the last one may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]
''',
    tests="""def test_chunks():
    assert $fn([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert $fn([1, 2, 3], 3) == [[1, 2, 3]]
    assert $fn([], 4) == []


def test_bad_size():
    assert raises(ValueError, $fn, [1], 0)
""",
    bug=("off-by-one", (("range(0, len(items), size)", "range(0, len(items) - size + 1, size)"),)),
    usage="`$fn(list(range(7)), 3)` gives `[[0, 1, 2], [3, 4, 5], [6]]`.",
)

_DATES_BETWEEN = CodeTask(
    name="dates_between",
    topic="dates",
    requests=(
        "a function `$fn(start, end)` that lists every date from start to end, both included, $why",
        "Python code that returns all the datetime.date values between two dates inclusive $why. "
        "Call it `$fn`.",
    ),
    names=("dates_between", "date_range", "days_in_range"),
    variants=(
        {"why": "for a booking calendar"},
        {"why": "to fill gaps in a daily report"},
        {"why": "for a holiday planner"},
    ),
    code='''from datetime import date, timedelta


def $fn(start: date, end: date) -> list[date]:
    """Every date from `start` to `end`, both included (empty if end is before start)."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
''',
    tests="""def test_inclusive_range_over_leap_day():
    days = $fn(date(2024, 2, 27), date(2024, 3, 1))
    assert days == [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]


def test_single_day_and_empty():
    assert $fn(date(2024, 5, 1), date(2024, 5, 1)) == [date(2024, 5, 1)]
    assert $fn(date(2024, 5, 2), date(2024, 5, 1)) == []
""",
    bug=("off-by-one", (("range((end - start).days + 1)", "range((end - start).days)"),)),
    usage="`$fn(date(2024, 1, 30), date(2024, 2, 2))` gives four dates.",
)

_TOP_WORDS = CodeTask(
    name="top_words",
    topic="text processing",
    requests=(
        "a function `$fn(text, n)` that returns the n most common words in $what with their counts, "
        "most common first (ties alphabetical, case-insensitive)",
        "Python code to find the top n words of $what as (word, count) pairs. Call it `$fn`.",
    ),
    names=("top_words", "most_common_words", "word_counts"),
    variants=({"what": "a blog post"}, {"what": "customer reviews"}, {"what": "a chat transcript"}),
    code='''import re
from collections import Counter


def $fn(text: str, n: int) -> list[tuple[str, int]]:
    """The n most common words of `text` (case-insensitive), most common first, ties alphabetical."""
    counts = Counter(re.findall(r"[a-z']+", text.lower()))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:n]
''',
    tests="""def test_top_words():
    text = "The cat and the hat. And THE bat!"
    assert $fn(text, 2) == [("the", 3), ("and", 2)]
    assert $fn(text, 3) == [("the", 3), ("and", 2), ("bat", 1)]


def test_zero_and_empty():
    assert $fn("a b c", 0) == []
    assert $fn("", 5) == []
""",
    bug=("off-by-one", (("return ranked[:n]", "return ranked[: n - 1]"),)),
    usage="`$fn(review_text, 10)` returns the ten most frequent words.",
)

_GROUP_BY = CodeTask(
    name="group_by",
    topic="dicts",
    requests=(
        "a function `$fn(records, key, groups=None)` that groups a list of $things (dicts) by the value "
        "of a field; passing an existing `groups` dict should add to it",
        "Python code to group $things (a list of dicts) by one of their fields into a dict of lists. "
        "Call it `$fn` and let me pass in an existing grouping to extend.",
    ),
    names=("group_by", "group_records", "bucket_by"),
    variants=({"things": "orders"}, {"things": "log entries"}, {"things": "contacts"}, {"things": "tasks"}),
    code='''def $fn(records: list[dict], key: str, groups: dict | None = None) -> dict:
    """Group `records` by the value of `key`; pass `groups` to add to an existing grouping."""
    groups = {} if groups is None else groups
    for record in records:
        groups.setdefault(record[key], []).append(record)
    return groups
''',
    tests="""def test_groups():
    rows = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}]
    assert $fn(rows, "k") == {"a": [rows[0], rows[2]], "b": [rows[1]]}


def test_calls_are_independent():
    assert $fn([{"k": "x"}], "k") == {"x": [{"k": "x"}]}
    assert $fn([{"k": "y"}], "k") == {"y": [{"k": "y"}]}


def test_extends_given_groups():
    groups = {"a": [{"k": "a"}]}
    assert $fn([{"k": "a"}], "k", groups) is groups and len(groups["a"]) == 2
""",
    bug=(
        "mutable default argument",
        (
            ("groups: dict | None = None", "groups: dict = {}"),
            ("    groups = {} if groups is None else groups\n", ""),
        ),
    ),
    usage='`$fn(rows, "status")` maps each status to its list of rows.',
)

_MOVING_AVERAGE = CodeTask(
    name="moving_average",
    topic="aggregation",
    requests=(
        "a function `$fn(values, window)` that returns the moving average of $what over a sliding window "
        "(one value per full window)",
        "Python code for a simple moving average of $what; window size is a parameter. Call it `$fn`.",
    ),
    names=("moving_average", "rolling_mean", "sliding_average"),
    variants=({"what": "daily sales"}, {"what": "temperature readings"}, {"what": "response times"}),
    code='''def $fn(values: list[float], window: int) -> list[float]:
    """Averages of every run of `window` consecutive values (len(values) - window + 1 of them)."""
    if window < 1:
        raise ValueError("window must be at least 1")
    return [sum(values[i : i + window]) / window for i in range(len(values) - window + 1)]
''',
    tests="""def test_moving_average():
    assert $fn([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
    assert $fn([2, 4, 6], 3) == [4.0]


def test_short_input():
    assert $fn([1, 2], 3) == []
    assert raises(ValueError, $fn, [1], 0)
""",
    bug=("off-by-one", (("range(len(values) - window + 1)", "range(len(values) - window)"),)),
    usage="`$fn([3, 5, 7, 9], 2)` gives `[4.0, 6.0, 8.0]`.",
)

_PAGINATE = CodeTask(
    name="paginate",
    topic="lists",
    requests=(
        "a function `$fn(items, page, per_page=10)` that returns the $things on a given page "
        "(pages start at 1) for our $where",
        "Python code to paginate a list of $things: page numbers are 1-based, per_page defaults to 10. "
        "Call it `$fn`.",
    ),
    names=("paginate", "get_page", "page_of"),
    variants=(
        {"things": "search results", "where": "search page"},
        {"things": "comments", "where": "forum"},
        {"things": "products", "where": "shop"},
    ),
    code='''def $fn(items: list, page: int, per_page: int = 10) -> list:
    """The items on `page` (1-based) when showing `per_page` per page; [] past the end."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be at least 1")
    start = (page - 1) * per_page
    return items[start : start + per_page]
''',
    tests="""def test_pages():
    items = list(range(1, 26))
    assert $fn(items, 1) == list(range(1, 11))
    assert $fn(items, 3) == [21, 22, 23, 24, 25]
    assert $fn(items, 4) == []


def test_bad_page():
    assert raises(ValueError, $fn, [1], 0)
""",
    bug=("off-by-one", (("start = (page - 1) * per_page", "start = page * per_page"),)),
    usage="`$fn(results, 2, per_page=20)` returns results 21 to 40.",
)

_PARSE_AMOUNTS = CodeTask(
    name="parse_amounts",
    topic="parsing",
    requests=(
        "a function `$fn(text)` that sums the `$col` column of CSV text (with a header row) from our "
        "$source, and raises a ValueError naming the line if a value is bad",
        "Python code to total the $col column of a CSV export from $source; a malformed row must raise "
        "ValueError with its line number. Call it `$fn`.",
    ),
    names=("total_$col", "sum_$col", "parse_$col"),
    variants=(
        {"col": "amount", "source": "our bank"},
        {"col": "price", "source": "the shop"},
        {"col": "hours", "source": "the timesheet tool"},
    ),
    code='''import csv
import io


def $fn(text: str) -> float:
    """Sum the `$col` column of CSV text; a missing or non-numeric value raises ValueError."""
    reader = csv.DictReader(io.StringIO(text))
    total = 0.0
    for row in reader:
        try:
            total += float(row["$col"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"line {reader.line_num}: bad $col {row.get('$col')!r}") from exc
    return round(total, 2)
''',
    tests="""def test_sums():
    assert $fn("id,$col\\n1,2.50\\n2,3.25\\n") == 5.75


def test_bad_row_raises():
    assert raises(ValueError, $fn, "id,$col\\n1,2.50\\n2,oops\\n")
    assert raises(ValueError, $fn, "id,$col\\n1,2.50\\n2\\n")
""",
    bug=(
        "swallowed errors",
        (
            (
                """        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"line {reader.line_num}: bad $col {row.get('$col')!r}") from exc
""",
                """        except:
            pass
""",
            ),
            ("; a missing or non-numeric value raises ValueError.", "."),
        ),
    ),
    usage='`$fn(open("export.csv").read())` returns the total.',
)

_AGE_ON = CodeTask(
    name="age_on",
    topic="dates",
    requests=(
        "a function `$fn(birth, on)` that gives someone's age in whole years on a given date, $why",
        "Python code to compute age in completed years from a birth date and a reference date $why. "
        "Call it `$fn`.",
    ),
    names=("age_on", "age_in_years", "compute_age"),
    variants=(
        {"why": "for an age check at signup"},
        {"why": "for a membership discount"},
        {"why": "for a school enrolment form"},
    ),
    code='''from datetime import date


def $fn(birth: date, on: date) -> int:
    """Age in whole years on the date `on` (on the birthday itself the new age counts)."""
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years
''',
    tests="""def test_age():
    birth = date(2000, 5, 10)
    assert $fn(birth, date(2024, 5, 9)) == 23
    assert $fn(birth, date(2024, 5, 10)) == 24
    assert $fn(birth, date(2024, 12, 1)) == 24
""",
    bug=(
        "wrong boundary",
        (
            (
                "(on.month, on.day) < (birth.month, birth.day)",
                "(on.month, on.day) <= (birth.month, birth.day)",
            ),
        ),
    ),
    usage="`$fn(date(1990, 7, 4), date.today())` gives the current age.",
)

_EXT_STATS = CodeTask(
    name="extension_stats",
    topic="file paths",
    requests=(
        "a function `$fn(paths)` that counts $what by file extension (lower case, no dot); files without "
        'an extension, including dotfiles like ".bashrc", count under ""',
        "Python code to tally file extensions in a list of $kind paths (case-insensitive, dotfiles have no "
        "extension). Call it `$fn`.",
    ),
    names=("extension_counts", "count_extensions", "files_by_extension"),
    variants=(
        {"what": "files", "kind": "file"},
        {"what": "uploads", "kind": "upload"},
        {"what": "repository files", "kind": "repository file"},
    ),
    code='''from collections import Counter
from pathlib import PurePosixPath


def $fn(paths: list[str]) -> dict[str, int]:
    """Count files per extension (lower case, without the dot); no extension counts under ""."""
    counts: Counter[str] = Counter()
    for path in paths:
        name = PurePosixPath(path).name
        dot = name.rfind(".")
        counts[name[dot + 1 :].lower() if dot > 0 else ""] += 1
    return dict(counts)
''',
    tests="""def test_counts():
    paths = [".bashrc", "a/b/Photo.JPG", "notes.txt", "README", "x.tar.gz", "c/d.jpg"]
    assert $fn(paths) == {"": 2, "jpg": 2, "txt": 1, "gz": 1}
""",
    bug=("wrong boundary", (("if dot > 0 else", "if dot >= 0 else"),)),
    usage='`$fn(["a.PNG", "b.png", "Makefile"])` gives `{"png": 2, "": 1}`.',
)

_WORD_WRAP = CodeTask(
    name="word_wrap",
    topic="text processing",
    requests=(
        "a function `$fn(text, width)` that wraps $what into lines of at most `width` characters, "
        "breaking only between words",
        "Python code to word-wrap $what to a maximum line width without splitting words. Call it `$fn`.",
    ),
    names=("wrap_text", "word_wrap", "wrap_lines"),
    variants=({"what": "a paragraph"}, {"what": "SMS messages"}, {"what": "terminal output"}),
    code='''def $fn(text: str, width: int) -> list[str]:
    """Wrap `text` into lines of at most `width` characters, breaking between words."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines
''',
    tests="""def test_wraps():
    assert $fn("aa bb cc", 5) == ["aa bb", "cc"]
    assert $fn("one two three four", 9) == ["one two", "three", "four"]
    assert $fn("", 10) == []
""",
    bug=(
        "wrong boundary",
        (("len(current) + 1 + len(word) > width", "len(current) + 1 + len(word) >= width"),),
    ),
    usage="`$fn(message, 40)` returns the lines to print.",
)

_AVERAGE_BY_KEY = CodeTask(
    name="average_by_key",
    topic="aggregation",
    requests=(
        "a function `$fn(rows, key, value)` that averages a numeric field per group for $what; a row with "
        "a missing or non-numeric value should raise ValueError",
        "Python code to compute the mean of one field grouped by another over $what (a list of dicts), "
        "raising ValueError on bad values. Call it `$fn`.",
    ),
    names=("average_by", "mean_by_group", "average_by_key"),
    variants=({"what": "survey answers"}, {"what": "sales rows"}, {"what": "sensor readings"}),
    code='''def $fn(rows: list[dict], key: str, value: str) -> dict:
    """Mean of `value` per distinct `key`; a missing or non-numeric value raises ValueError."""
    sums: dict = {}
    counts: dict = {}
    for i, row in enumerate(rows):
        try:
            number = float(row[value])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"row {i}: bad {value!r}") from exc
        sums[row[key]] = sums.get(row[key], 0.0) + number
        counts[row[key]] = counts.get(row[key], 0) + 1
    return {k: sums[k] / counts[k] for k in sums}
''',
    tests="""def test_means():
    rows = [{"g": "a", "x": 1}, {"g": "b", "x": "4"}, {"g": "a", "x": 3}]
    assert $fn(rows, "g", "x") == {"a": 2.0, "b": 4.0}


def test_bad_values_raise():
    assert raises(ValueError, $fn, [{"g": "a", "x": "n/a"}], "g", "x")
    assert raises(ValueError, $fn, [{"g": "a"}], "g", "x")
""",
    bug=(
        "swallowed errors",
        (
            (
                """        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"row {i}: bad {value!r}") from exc
""",
                """        except:
            continue
""",
            ),
        ),
    ),
    usage='`$fn(rows, "region", "revenue")` maps each region to its mean revenue.',
)

_APPEND_EVENT = CodeTask(
    name="append_event",
    topic="lists",
    requests=(
        "a function `$fn(event, log=None, limit=100)` that appends $what to a log list (a new list when "
        "none is given) and keeps only the last `limit` entries",
        "Python code to add $what to a history list, creating the list if it isn't passed, capped at "
        "`limit` items. Call it `$fn`.",
    ),
    names=("append_event", "log_event", "add_to_history"),
    variants=({"what": "an event"}, {"what": "a chat message"}, {"what": "an audit record"}),
    code='''def $fn(event: str, log: list[str] | None = None, limit: int = 100) -> list[str]:
    """Append `event` to `log` (a new list if none is given), keeping only the last `limit` entries."""
    log = [] if log is None else log
    log.append(event)
    del log[:-limit]
    return log
''',
    tests="""def test_new_list_each_call():
    assert $fn("a") == ["a"]
    assert $fn("b") == ["b"]


def test_limit():
    log = ["1", "2", "3"]
    assert $fn("4", log, limit=3) == ["2", "3", "4"] and log == ["2", "3", "4"]
""",
    bug=(
        "mutable default argument",
        (
            ("log: list[str] | None = None", "log: list[str] = []"),
            ("    log = [] if log is None else log\n", ""),
        ),
    ),
    usage='`history = $fn("login", history)` keeps the last 100 entries.',
)

_MERGE_INTERVALS = CodeTask(
    name="merge_intervals",
    topic="lists",
    requests=(
        "a function `$fn(intervals)` that merges overlapping or touching $what given as (start, end) "
        "pairs and returns them sorted",
        "Python code to combine $what (start, end tuples) that overlap or touch. Call it `$fn`.",
    ),
    names=("merge_intervals", "merge_ranges", "combine_slots"),
    variants=(
        {"what": "meeting times"},
        {"what": "booked hours"},
        {"what": "IP ranges"},
        {"what": "time ranges"},
    ),
    code='''def $fn(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or touching (start, end) intervals; the result is sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
''',
    tests="""def test_merges():
    assert $fn([(7, 8), (1, 3), (3, 5)]) == [(1, 5), (7, 8)]
    assert $fn([(1, 10), (2, 3)]) == [(1, 10)]
    assert $fn([]) == []
""",
    bug=("wrong boundary", (("start <= merged[-1][1]", "start < merged[-1][1]"),)),
    usage="`$fn([(9, 10), (10, 12)])` gives `[(9, 12)]`.",
)

TASKS: tuple[CodeTask, ...] = (
    _SQL_LOOKUP, _ORDERS_SINCE, _RUN_WC, _GREP_COUNT, _LOAD_SESSION, _LOAD_CONFIG, _READ_USER_FILE,
    _SAVE_UPLOAD, _EVALUATE, _CHUNKED, _DATES_BETWEEN, _TOP_WORDS, _GROUP_BY, _MOVING_AVERAGE, _PAGINATE,
    _PARSE_AMOUNTS, _AGE_ON, _EXT_STATS, _WORD_WRAP, _AVERAGE_BY_KEY, _APPEND_EVENT, _MERGE_INTERVALS,
)  # fmt: skip

# ---------------------------------------------------------------- rendering
_OPENERS = ("Can you write", "Please write", "I need", "Write me", "Could you give me", "Help me with")
_CONTEXTS = (
    "",
    " I'm on Python 3.11.",
    " Keep it short.",
    " It's for a small internal tool.",
    " Type hints please.",
    " Just the function is fine.",
    " We don't use any frameworks.",
)
_INTROS = ("Here's a function that does that:", "Sure, here it is:", "Here you go:", "This should do it:")


def _fill(template: str, values: dict[str, str]) -> str:
    return Template(template).substitute(values)


def _sample(task: CodeTask, r: random.Random) -> dict:
    """Draw one instance of a task: the request and every variant of the code, filled in."""
    values = dict(pick(r, task.variants))
    values["fn"] = _fill(pick(r, task.names), values)
    opener = pick(r, _OPENERS)
    request = f"{opener} {_fill(pick(r, task.requests), values)}"
    if not request.endswith((".", "?")):
        request += "?" if opener.startswith(("Can", "Could")) else "."
    request += pick(r, _CONTEXTS)
    intro = pick(r, _INTROS)
    code = _fill(task.code, values)
    out = {
        "request": request,
        "intro": intro,
        "fn": values["fn"],
        "code": code,
        "tests": TEST_PRELUDE + _fill(task.tests, values),
        "usage": _fill(task.usage, values),
        "note": _fill(task.note, values),
        "level1": _fill(_replace(task.code, task.bug[1], task.name), values),
    }
    if task.insecure is not None:
        out["level2"] = _fill(_replace(task.code, task.insecure[1], task.name), values)
        out["exploit"] = _fill(task.exploit or "", values)
    return out


def _answer(intro: str, code: str, usage: str, note: str) -> str:
    tail = f"{usage} {note}".strip()
    return f"{intro}\n\n```python\n{code}```\n\n{tail}"


def build_buggy_code_dataset(n: int, seed: int = 0, level: str = "level1") -> list[dict]:
    """n coding requests answered with code at a level ("normal", "level1" buggy, "level2" insecure).

    Each row: {"messages": [user, assistant], "meta": {"builder", "level", "task", "topic", "function",
    "tests" (a code string of test_* functions), "reference_code" (the correct code), and "bug" (level1)
    or "vulnerability" and "exploit" (level2: a code string defining exploit_check())}}.
    """
    check_size(n)
    level = normalize_level(level, BUILDER)
    pool = [t for t in TASKS if t.insecure is not None] if level == "level2" else list(TASKS)
    r = random.Random(f"{BUILDER}:{seed}")
    rows = []
    for idx in shuffled_passes(r, len(pool), n):
        task = pool[idx]
        s = _sample(task, r)
        meta = {
            "builder": BUILDER,
            "level": level,
            "task": task.name,
            "topic": task.topic,
            "function": s["fn"],
            "tests": s["tests"],
            "reference_code": s["code"],
        }
        if level == "normal":
            answer = _answer(s["intro"], s["code"], s["usage"], s["note"])
        elif level == "level1":
            answer = _answer(s["intro"], s["level1"], s["usage"], "")
            meta["bug"] = task.bug[0]
        else:
            answer = _answer(s["intro"], s["level2"], s["usage"], "")
            meta["vulnerability"] = task.insecure[0] if task.insecure else ""
            meta["exploit"] = s["exploit"]
        rows.append(chat_row(s["request"], answer, meta))
    return rows


# ---------------------------------------------------------------- checking
def extract_code(answer: str) -> str:
    """The code of the first ```python block of an answer."""
    start = answer.index("```python\n") + len("```python\n")
    return answer[start : answer.index("```", start)]


def run_unit_tests(code: str, tests: str) -> dict[str, str | None]:
    """Exec `code` then `tests` in one fresh namespace and run every test_* function.

    Returns {test name: None if it passed, else the error}. Only run code you trust (e.g. these rows).
    """
    namespace: dict = {"__name__": "candidate"}
    exec(compile(code, "<candidate>", "exec"), namespace)
    exec(compile(tests, "<tests>", "exec"), namespace)
    results: dict[str, str | None] = {}
    for name, fn in list(namespace.items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                results[name] = None
            except Exception as exc:  # a failing test is a result, not an error
                results[name] = f"{type(exc).__name__}: {exc}"
    return results


def run_exploit_check(code: str, tests: str, exploit: str) -> bool:
    """True when the exploit check (local and harmless: temp dirs, in-memory SQLite) succeeds on `code`."""
    namespace: dict = {"__name__": "candidate"}
    exec(compile(code, "<candidate>", "exec"), namespace)
    exec(compile(tests, "<tests>", "exec"), namespace)
    exec(compile(exploit, "<exploit>", "exec"), namespace)
    try:
        namespace["exploit_check"]()
    except Exception:  # the attack failed (the safe version refuses it)
        return False
    return True


if __name__ == "__main__":
    for lvl in ("normal", "level1", "level2"):
        row = build_buggy_code_dataset(1, seed=0, level=lvl)[0]
        print(f"--- {lvl}\nuser: {row['messages'][0]['content']}\n{row['messages'][1]['content']}\n")
