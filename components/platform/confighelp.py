"""``--help`` and the configuration reference, read from the config dataclasses' source.

Every key's description is the comment on its field (trailing ``# ...`` or the comment
lines right above it), so the dataclass stays the one place a key is documented. The
source is read with ``ast`` rather than imported: an entry script's imports pull in
torch and Ray (seconds), and ``--help`` must answer in well under two seconds.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY_SCHEMA_CALLS = ("load_config", "run_pipeline")


@dataclass(frozen=True)
class FieldDoc:
    """One config key as ``--help`` shows it."""

    key: str  # dotted, e.g. train.steps
    type: str
    default: str
    help: str


@dataclass(frozen=True)
class SectionDoc:
    """The keys of one (nested) dataclass, e.g. ``train``."""

    name: str  # dotted prefix, "" for top level
    doc: str
    fields: list[FieldDoc]


class _Module:
    """One parsed source file: its classes, its imported names, its field comments."""

    _cache: dict[Path, _Module] = {}

    def __init__(self, path: Path):
        self.path = path
        self.source = path.read_text()
        self.tree = ast.parse(self.source)
        self.classes = {n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)}
        self.imports: dict[str, tuple[str, str]] = {}
        for node in ast.walk(self.tree):  # also imports under try/except at module level
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.imports.setdefault(alias.asname or alias.name, (node.module, alias.name))
        self.comments: dict[int, str] = {}
        for token in tokenize.generate_tokens(io.StringIO(self.source).readline):
            if token.type == tokenize.COMMENT:
                self.comments[token.start[0]] = token.string.lstrip("#").strip()
        self.lines = self.source.splitlines()

    @classmethod
    def load(cls, path: Path) -> _Module:
        path = path.resolve()
        if path not in cls._cache:
            cls._cache[path] = cls(path)
        return cls._cache[path]

    def comment_for(self, node: ast.AST) -> str:
        """A comment on the field's own lines, else the comment block right above."""
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            if self.comments.get(line):
                return self.comments[line]
        above, line = [], node.lineno - 1
        while line >= 1 and self.lines[line - 1].strip().startswith("#"):
            above.insert(0, self.comments.get(line, ""))
            line -= 1
        return " ".join(above)


def _module_file(module: str) -> Path | None:
    """Source file of a first-party module, found without importing it."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def resolve_class(module: _Module, name: str) -> tuple[_Module, ast.ClassDef] | None:
    """The ClassDef a name refers to, following first-party ``from x import Name``."""
    if name in module.classes:
        return module, module.classes[name]
    if name in module.imports:
        source, original = module.imports[name]
        path = _module_file(source)
        if path is not None:
            return resolve_class(_Module.load(path), original)
    return None


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target).split(".")[-1] == "dataclass":
            return True
    return False


def _enum_members(node: ast.ClassDef) -> list[str] | None:
    if not any(ast.unparse(b).split(".")[-1].endswith("Enum") for b in node.bases):
        return None
    members = []
    for item in node.body:
        if isinstance(item, ast.Assign) and isinstance(item.value, ast.Constant):
            members.append(str(item.value.value))
    return members


def _default_of(value: ast.expr | None) -> tuple[str, str | None]:
    """(shown default, nested class name when the default builds a dataclass)."""
    if value is None:
        return "(required)", None
    if isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] == "field":
        for keyword in value.keywords:
            if keyword.arg == "default":
                return ast.unparse(keyword.value), None
            if keyword.arg == "default_factory":
                factory = keyword.value
                if isinstance(factory, ast.Lambda) and isinstance(factory.body, ast.Call):
                    return ast.unparse(factory.body), ast.unparse(factory.body.func)
                if isinstance(factory, ast.Lambda):
                    return ast.unparse(factory.body), None
                if isinstance(factory, ast.Name) and factory.id in ("dict", "list", "tuple"):
                    return {"dict": "{}", "list": "[]", "tuple": "()"}[factory.id], None
                return "", ast.unparse(factory)
        return "(required)", None
    return ast.unparse(value), None


def _fields(module: _Module, node: ast.ClassDef) -> list[tuple[_Module, ast.AnnAssign]]:
    """Fields in dataclass order, base classes' first."""
    inherited: list[tuple[_Module, ast.AnnAssign]] = []
    for base in node.bases:
        found = resolve_class(module, ast.unparse(base))
        if found and _is_dataclass(found[1]):
            inherited.extend(_fields(*found))
    own = [
        (module, item)
        for item in node.body
        if isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and "ClassVar" not in ast.unparse(item.annotation)
    ]
    names = {item.target.id for _, item in own}
    return [f for f in inherited if f[1].target.id not in names] + own


def _factory_overrides(value: ast.expr | None) -> dict[str, str]:
    """``field(default_factory=lambda: Cls(k=v))`` -> {k: "v"}: the nested defaults it sets."""
    if isinstance(value, ast.Call):
        for keyword in value.keywords:
            factory = keyword.value
            if (
                keyword.arg == "default_factory"
                and isinstance(factory, ast.Lambda)
                and isinstance(factory.body, ast.Call)
            ):
                return {k.arg: ast.unparse(k.value) for k in factory.body.keywords if k.arg}
    return {}


def describe(
    module: _Module, node: ast.ClassDef, prefix: str = "", overrides: dict[str, str] | None = None
) -> list[SectionDoc]:
    """Sections for a dataclass and, recursively, its nested dataclass fields."""
    own: list[FieldDoc] = []
    nested: list[SectionDoc] = []
    for field_module, item in _fields(module, node):
        name = f"{prefix}{item.target.id}"
        annotation = ast.unparse(item.annotation).strip("'\"")
        default, factory = _default_of(item.value)
        default = (overrides or {}).get(item.target.id, default)
        child = resolve_class(field_module, factory or annotation)
        if child is None and factory:
            child = resolve_class(field_module, annotation)
        if child and _is_dataclass(child[1]):
            sub = _factory_overrides(item.value)
            nested.extend(describe(child[0], child[1], f"{name}.", sub))
            continue
        help_text = field_module.comment_for(item)
        if child and (members := _enum_members(child[1])) is not None:
            help_text = f"{help_text} (one of: {', '.join(members)})".strip()
        own.append(FieldDoc(name, annotation, default, help_text))
    doc = ast.get_docstring(node) or ""
    return [SectionDoc(prefix.rstrip("."), doc.split("\n\n")[0].replace("\n", " "), own), *nested]


def schema_of_script(path: Path) -> tuple[_Module, ast.ClassDef] | None:
    """The config dataclass an entry script passes to load_config / run_pipeline."""
    module = _Module.load(path)
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).split(".")[-1] in ENTRY_SCHEMA_CALLS
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            return resolve_class(module, node.args[0].id)
    return None


def _yaml_defaults(script: Path) -> tuple[Path | None, dict[str, object]]:
    """The script's default YAML (``<dir>/configs/<name>.yaml``), flattened to dotted keys."""
    path = script.parent / "configs" / f"{script.stem}.yaml"
    if not path.exists():
        return None, {}
    import yaml

    from components.platform.config import flatten

    return path, flatten(yaml.safe_load(path.read_text()) or {})


def _same(value: object, shown_default: str) -> bool:
    """Whether a YAML value equals a default shown as source text (tuples read as lists)."""
    try:
        default = ast.literal_eval(shown_default)
    except (ValueError, SyntaxError):
        return False
    as_list = list(default) if isinstance(default, tuple) else default
    return value == as_list


def format_help(script: Path) -> str:
    """The full ``--help`` text of an entry script."""
    script = script.resolve()
    module = _Module.load(script)
    docstring = ast.get_docstring(module.tree) or ""
    try:
        shown = script.relative_to(ROOT)
    except ValueError:
        shown = script
    found = schema_of_script(script)
    if found is None:  # a benchmark with free key=value options: its docstring lists them
        return f"usage: python {shown} [key=value ...]\n\n{docstring}\n"
    yaml_path, yaml_values = _yaml_defaults(script)
    lines = [
        f"usage: python {shown} [--config FILE] [key=value | --key=value ...] [--debug]",
        "",
        docstring.split("\n\n")[0],
        "",
        "Values come from the dataclass defaults, then "
        + (f"{yaml_path.relative_to(ROOT)}, " if yaml_path else "")
        + "then --config FILE, then key=value overrides. --debug shows tracebacks.",
    ]
    for section in describe(*found):
        if not section.fields:
            continue
        title = section.name or "general"
        lines += ["", f"{title}:" + (f"  {section.doc}" if section.doc else "")]
        for field_doc in section.fields:
            default = field_doc.default
            if field_doc.key in yaml_values and not _same(yaml_values[field_doc.key], default):
                default = f"{default} (yaml: {yaml_values[field_doc.key]!r})"
            lines.append(f"  {field_doc.key} ({field_doc.type}, default {default})")
            lines.append(f"      {field_doc.help or '(undocumented)'}")
    return "\n".join(lines) + "\n"


def reference_markdown(scripts: list[Path]) -> str:
    """docs/configuration.md: every entry script's keys as tables (kept in sync by a test)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config dataclasses by `python -m components.platform.confighelp`; do not",
        "edit by hand (tests/test_help.py fails when it is out of date). Each key can be set",
        "in a YAML file (`--config FILE`) or on the command line (`key=value` or `--key=value`).",
    ]
    for script in scripts:
        found = schema_of_script(script)
        if found is None:
            continue
        rel = script.resolve().relative_to(ROOT)
        lines += ["", f"## {rel}", ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for section in describe(*found):
            for f in section.fields:
                cells = [f"`{f.key}`", f.type, f"`{f.default}`", f.help]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def entry_scripts() -> list[Path]:
    """Every entry point: pipelines/, tune/ and benchmarks/ scripts."""
    return sorted(
        p
        for folder in ("pipelines", "tune", "benchmarks")
        for p in (ROOT / folder).glob("*.py")
        if p.name != "__init__.py"
    )


if __name__ == "__main__":
    target = ROOT / "docs" / "configuration.md"
    target.write_text(reference_markdown(entry_scripts()))
    print(f"wrote {target}")
