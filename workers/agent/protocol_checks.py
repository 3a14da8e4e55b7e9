"""How the farm-agent contract is checked: the field checks, the declared-key tables with their defaults, and
the walk over a declared JSON tree; every bad field collected and named (:class:`ContractError`).

The contract itself (which keys exist, their defaults, what each may hold) is declared in protocol.py; this
module is the small, generic machinery it is declared with, apart so the contract reads as a list of
declarations. Like protocol.py it is Python 3.8 and standard library only: the farm imports it (through
protocol.py, as ``farm.workers.agent.protocol_checks``) and the agent imports it by bare name on the board.
Import the contract's names from protocol.py, which re-exports :class:`ContractError`.
"""

import collections
import copy
import os

# --------------------------------------------------------------------------- errors


class ContractError(ValueError):
    """A config or report that breaks the contract. ``problems`` holds ``(field, message)`` for every bad
    field (each message names its field); the text is all of them, so one look shows everything to fix."""

    def __init__(self, what, problems):
        self.what = what
        self.problems = list(problems)
        missing = [field for field, message in self.problems if message is None]
        parts = ["%s is missing required field(s): %s" % (what, ", ".join(missing))] if missing else []
        parts += ["%s %s" % (what, message) for _, message in self.problems if message is not None]
        super(ContractError, self).__init__("; ".join(parts))

    @property
    def fields(self):
        """The names of the bad fields, in the order found (dotted for nested ones: ``loadgen.seed``)."""
        return [field for field, _ in self.problems]


# --------------------------------------------------------------------------- checks


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rule(test, wants, nullable=False):
    """A field check from a predicate; the problem reads ``<field> must be <wants>, got <value>``."""

    def check(value, name, problems, warn):
        if not ((nullable and value is None) or test(value)):
            problems.append((name, "%s must be %s, got %r" % (name, wants, value)))
        return value

    return check


def integer(minimum, nullable=False):
    wants = "an integer >= %d%s" % (minimum, " or null" if nullable else "")
    return rule(lambda v: is_int(v) and v >= minimum, wants, nullable)


def positive():
    return rule(lambda v: is_number(v) and v > 0, "a positive number or null", nullable=True)


def percentile():
    return rule(lambda v: is_number(v) and 0 < v < 100, "a percentile in (0, 100)")


def string(nullable=False, wants="a string"):
    return rule(lambda v: isinstance(v, str), wants + (" or null" if nullable else ""), nullable)


ABSOLUTE_PATH = rule(lambda v: isinstance(v, str) and os.path.isabs(v), "an absolute path")
TIME_SCALE = rule(lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]")
NON_EMPTY = rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
OBJECT = rule(lambda v: isinstance(v, dict), "an object", True)
SECONDS = rule(lambda v: is_number(v) and v >= 0, "a number >= 0", True)
INTERVAL = rule(lambda v: is_number(v) and v > 0, "a positive number", True)


def one_of(values, noun):
    def check(value, name, problems, warn):
        if not isinstance(value, str):
            problems.append((name, "%s must be a string, got %r" % (name, value)))
        elif values is not None and value not in values:
            problems.append((name, "%s %r is unknown; %s: %s" % (name, value, noun, ", ".join(values))))
        return value

    return check


#: One config key: its default (:data:`REQUIRED` for none), its check, what it means, and whether null
#: stands for the default.
Field = collections.namedtuple("Field", "name default check doc null_default", defaults=(False,))


#: The default of a field the config must give.
REQUIRED = object()


def fields_table(*fields):
    """The fields by name, in the order declared."""
    return dict((f.name, f) for f in fields)


def section_check(table, prefix, what):
    """The check of a nested object: its fields filled in and checked (unknown keys warned about)."""

    def check(value, name, problems, warn):
        if not isinstance(value, dict):
            problems.append((name, "%s must be %s, got %r" % (name, what, value)))
            return value
        return normalize(table, value, prefix, problems, warn)

    return check


def normalize(table, raw, prefix, problems, warn):
    """``raw`` with every field of ``table`` filled in (its default) and checked; each problem appended to
    ``problems`` as ``(field, message)``, unknown keys told to ``warn``."""
    unknown = sorted(set(raw) - set(table))
    if unknown and warn is not None:
        warn(
            "ignoring unknown %sfield(s): %s"
            % (prefix.replace(".", " ") if prefix else "config ", ", ".join(unknown))
        )
    out = {}
    for field in table.values():
        name = prefix + field.name
        value = raw.get(field.name)
        if field.default is REQUIRED and (value is None or value == ""):
            problems.append((name, None))  # rendered together: "missing required field(s): a, b"
            out[field.name] = value
            continue
        if field.default is not REQUIRED and (
            field.name not in raw or (value is None and field.null_default)
        ):
            value = copy.copy(field.default)
        out[field.name] = field.check(value, name, problems, warn)
    return out


def nullable_section_check(table, prefix, what):
    inner = section_check(table, prefix, what + " or null")

    def check(value, name, problems, warn):
        return None if value is None else inner(value, name, problems, warn)

    return check


# --------------------------------------------------------------------------- declared JSON trees


def declare(tree, path=()):
    """``{"a": {"b": "str"}}`` -> ``{("a",): "object", ("a", "b"): "str"}``."""
    out = {}
    for key, kind in tree.items():
        out[path + (key,)] = "object" if isinstance(kind, dict) else kind
        if isinstance(kind, dict):
            out.update(declare(kind, path + (key,)))
    return out


#: The kinds a declared field may have: name -> (test, what the message says it must be).
KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "number": (is_number, "a number"),
    "int": (is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "numbers": (lambda v: isinstance(v, list) and all(is_number(x) for x in v), "a list of numbers"),
}


def dotted(path):
    return ".".join(path)


def validate_tree(what, document, declared, required):
    """Every problem of a JSON document against ``declared`` (:func:`declare`'s paths and kinds), as
    ``(field, message)``; the paths in ``required`` must be present and not null. A field under a parent
    that is not an object is not looked at: the parent's problem says it."""
    if not isinstance(document, dict):
        return [(what, "must be a JSON object, got %s" % type(document).__name__)]
    problems = []
    for path in required:
        if lookup(document, path) is None:
            problems.append((dotted(path), None))
    for path in sorted(declared, key=len):
        parent = lookup(document, path[:-1]) if len(path) > 1 else document
        if not isinstance(parent, dict) or parent.get(path[-1]) is None:
            continue
        value, kind = parent[path[-1]], declared[path]
        if isinstance(kind, tuple):
            if value not in kind:
                wants = "one of %s" % ", ".join(kind)
                problems.append((dotted(path), "%s must be %s, got %r" % (dotted(path), wants, value)))
            continue
        test, wants = KINDS[kind]
        if not test(value):
            problems.append(
                (dotted(path), "%s must be %s or null, got %s" % (dotted(path), wants, short(value)))
            )
    return problems


def short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def lookup(document, path):
    """The value at ``path`` (a tuple of keys), None when it or a parent is absent, null or not an object."""
    value = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
