"""Git's ignore rules, exactly as git applies them (docs/cli.md, "Ignore rules").

The walk (slopfast.walk) imports this module the first time it walks a
directory: `import slopfast.cli` does not pay for it.

Everything here works on bytes: file names as the file system gives them
(os.fsencode), patterns as the ignore files hold them. Matching is git's
wildmatch (wildmatch.c) and git's exclude logic (dir.c), compiled to Python
regular expressions over bytes:

- an ignore file is split at '\\n' only; a UTF-8 BOM at its start is
  skipped; a trailing '\\r' is dropped; empty lines and lines starting with
  '#' are skipped; trailing spaces are trimmed unless escaped with '\\'; a
  NUL byte ends the line (git reads the line as a C string);
- '!' negates; a trailing '/' matches directories only; a pattern with no
  other '/' is matched against the last component of the path (at any
  depth), one with a '/' against the path relative to the ignore file's
  directory (a leading '/' only anchors);
- '*' and '?' never match '/'; '**' matches across '/' when it stands
  between slashes or at either end (git's rule, including its quirk that a
  '**' right after the pattern's literal prefix counts as starting the
  pattern, so `foo**/bar` matches `foo/x/bar`); `[...]` as git (first ']'
  literal, '!' or '^' negates, ranges by byte value, POSIX classes
  `[:alnum:]` ... `[:xdigit:]` in ASCII, never '/'); '\\' escapes;
- matching is by bytes, case-sensitive; with core.ignoreCase (a work tree's
  setting: `fold`) the ignore files' patterns fold ASCII letters as git's
  WM_CASEFOLD does (a literal letter matches either case; in a bracket a
  range and [:upper:] take either case, a listed letter matches only its
  own lower case; an escaped upper-case letter matches nothing);
- a malformed pattern (an unterminated '[', an unknown `[:class:]`, a
  trailing '\\') matches nothing, as in git, and a reversed range matches no
  character (git reads `[z-a]` as the literal 'z', then the empty range z-a,
  so it matches 'z' only); neither ever raises. `compile_patterns` (the
  command's --include/--exclude/--full) refuses them instead, with
  PatternError naming the pattern.

Sources (git's, lowest priority first): core.excludesFile (default
$XDG_CONFIG_HOME/git/ignore, else ~/.config/git/ignore), the repository's
info/exclude, then the .gitignore files from the top of the work tree down,
a deeper one overriding a shallower; the last matching pattern decides. The
configuration is read by a small parser of git's config syntax (no `git`
process): /etc/gitconfig (unless GIT_CONFIG_NOSYSTEM; GIT_CONFIG_SYSTEM
names another), the user's $XDG_CONFIG_HOME/git/config then ~/.gitconfig
(GIT_CONFIG_GLOBAL names another), the repository's config, then its
config.worktree when extensions.worktreeConfig is set; the last value
wins. `[include]`/`[includeIf]`, GIT_CONFIG_COUNT and `git -c` are not
read. Tracked files come from the index (`.git/index`, versions 2 to 4,
SHA-1 or SHA-256), read directly.
"""
from __future__ import annotations

import os
import re
import stat
from bisect import bisect_left

from .walk import PatternError

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Iterable, NamedTuple, Sequence
else:
    from ._named import NamedTuple

__all__ = [
    "DEFAULT_IGNORES", "IGNORE_FILE", "PatternError", "Patterns", "Repo", "Rule", "RuleList",
    "compile_patterns", "find_work_tree", "parse_lines", "parse_rule", "read_ignore_file",
    "repo_at", "user_excludes_file",
]

# The tool's own ignore file: same syntax and placement as .gitignore.
IGNORE_FILE = ".slopfastignore"

# Where git's rules are not used (outside a work tree, or --no-gitignore),
# these stand in for them, as the first lines of the tool's own rules (a
# .slopfastignore can re-include with '!'); --no-default-ignores drops them.
DEFAULT_IGNORES = (
    ".git/", ".hg/", ".svn/",
    "__pycache__/", "*.py[cod]", "*.egg-info/",
    ".venv/", ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".hypothesis/",
    "node_modules/",
    ".DS_Store",
)

_SLASH = 0x2F
_BACKSLASH = 0x5C
_GLOB_SPECIAL = frozenset(b"*?[\\")


# ---- wildmatch, compiled --------------------------------------------------------------

def _ascii(pred) -> frozenset:
    return frozenset(c for c in range(128) if pred(chr(c)))


_PUNCT = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# git's own ctype (ctype.c, sane_ctype): ASCII only; its isspace is \t \n \r
# and space (not \v \f); cntrl is 0-31 and 127.
_CLASSES = {
    b"alnum": _ascii(lambda c: c.isascii() and c.isalnum()),
    b"alpha": _ascii(lambda c: c.isascii() and c.isalpha()),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset(list(range(32)) + [127]),
    b"digit": frozenset(b"0123456789"),
    b"graph": frozenset(range(0x21, 0x7F)),
    b"lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    b"print": frozenset(range(0x20, 0x7F)),
    b"punct": _PUNCT,
    b"space": frozenset(b"\t\n\r "),
    b"upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
}


class _Never(Exception):
    """The pattern can never match (git's wildmatch returns WM_ABORT_ALL)."""


def _byte(c: int) -> str:
    return re.escape(chr(c)) if 0x20 < c < 0x7F else f"\\x{c:02x}"


def _is_upper(c: int) -> bool:
    return 0x41 <= c <= 0x5A


def _is_lower(c: int) -> bool:
    return 0x61 <= c <= 0x7A


def _lit(c: int, fold: bool) -> str:
    """A literal pattern byte: with fold (the text is folded to lower case,
    and so is the pattern's letter) a letter matches either case."""
    if fold and (_is_upper(c) or _is_lower(c)):
        return f"[{chr(c | 0x20).upper()}{chr(c | 0x20)}]"
    return _byte(c)


def _escaped(c: int, fold: bool) -> str:
    """The byte after a '\\': git compares it unfolded with the folded text."""
    if fold and _is_upper(c):
        raise _Never("an escaped upper-case letter, with core.ignoreCase")
    return _lit(c, fold)


def _set_regex(members: set) -> str:
    members = set(members)
    members.discard(_SLASH)          # with WM_PATHNAME a bracket never matches '/'
    members.discard(0)               # (no name holds a NUL)
    if not members:
        return "(?!)"
    if len(members) == 254:
        return "[^/]"
    if len(members) == 1:
        return _byte(next(iter(members)))
    out = []
    run = sorted(members)
    i = 0
    while i < len(run):
        j = i
        while j + 1 < len(run) and run[j + 1] == run[j] + 1:
            j += 1
        out.append(_byte(run[i]) if i == j else f"{_byte(run[i])}-{_byte(run[j])}")
        i = j + 1
    return "[" + "".join(out) + "]"


def _bracket(p: bytes, i: int, problems: list, fold: bool = False) -> tuple[str, int]:
    """The bracket expression at p[i] == '[': (regex, index after it); _Never if
    malformed. With fold, which text byte T matches is decided as git's
    dowild decides it with WM_CASEFOLD, on T folded to lower case (t): a
    listed byte must equal t, a range must hold t or, for a lower-case t,
    its upper case; a class must hold t ([:upper:] also any lower-case t)."""
    n = len(p)
    i += 1
    if i >= n:
        raise _Never("unterminated [")
    negated = p[i] in b"!^"
    if negated:
        i += 1
    members: set = set()                           # the bytes listed
    ranges: set = set()                            # the bytes of the ranges
    classes: set = set()
    upper_class = False
    prev = 0
    while True:                                    # git's do { ... } while (p_ch != ']')
        if i >= n:
            raise _Never("unterminated [")
        c = p[i]
        if c == _BACKSLASH:
            i += 1
            if i >= n:
                raise _Never("unterminated [")
            c = p[i]
            members.add(c)
        elif c == 0x2D and prev and i + 1 < n and p[i + 1] != 0x5D:   # a range prev-hi
            i += 1
            hi = p[i]
            if hi == _BACKSLASH:
                i += 1
                if i >= n:
                    raise _Never("unterminated [")
                hi = p[i]
            if hi < prev:
                problems.append(f"reversed range {chr(prev)}-{chr(hi)} (the range matches no character)")
            ranges.update(range(prev, hi + 1))
            c = 0
        elif c == 0x5B and i + 1 < n and p[i + 1] == 0x3A:              # [:class:]
            s = i + 2
            j = s
            while j < n and p[j] != 0x5D:
                j += 1
            if j >= n:
                raise _Never("unterminated [")
            if j - s - 1 < 0 or p[j - 1] != 0x3A:
                members.add(0x5B)                  # not a class: a literal '['
                c = 0x5B
            else:
                name = p[s:j - 1]
                if name not in _CLASSES:
                    raise _Never(f"unknown character class [:{name.decode('latin-1')}:]")
                classes |= _CLASSES[name]
                upper_class = upper_class or name == b"upper"
                i = j
                c = 0
        else:
            members.add(c)
        prev = c
        i += 1
        if i < n and p[i] == 0x5D:
            break
    if fold:
        def matches(t: int) -> bool:
            return (t in members or t in ranges or t in classes
                    or (_is_lower(t) and (t - 0x20 in ranges or upper_class)))
        members = {b for b in range(1, 256) if matches(b | 0x20 if _is_upper(b) else b)}
    else:
        members |= ranges | classes
    if negated:
        members = set(range(1, 256)) - members
    return _set_regex(members), i + 1


def _wild(p: bytes, problems: list, fold: bool = False) -> str:
    """git's dowild() with WM_PATHNAME (and WM_CASEFOLD with fold) for
    pattern p (a '**' at p's start counts as following a '/'), as a regex;
    raises _Never if it can match nothing."""
    out = []
    n = len(p)
    i = 0
    while i < n:
        c = p[i]
        if c == _BACKSLASH:
            i += 1
            if i >= n:
                raise _Never("trailing backslash")
            out.append(_escaped(p[i], fold))
            i += 1
        elif c == 0x3F:                            # ?
            out.append("[^/]")
            i += 1
        elif c == 0x2A:                            # * or **
            j = i
            while j < n and p[j] == 0x2A:
                j += 1
            if j - i >= 2 and (i == 0 or p[i - 1] == _SLASH) and (
                    j == n or p[j] == _SLASH or (p[j] == _BACKSLASH and j + 1 < n and p[j + 1] == _SLASH)):
                if j < n and p[j] == _SLASH:
                    out.append("(?:.*/)?")         # '**/': no directory, or any run of them
                    j += 1
                else:
                    out.append(".*")               # trailing '**', or '**\/'
            else:
                out.append("[^/]*")
            i = j
        elif c == 0x5B:                            # [
            regex, i = _bracket(p, i, problems, fold)
            out.append(regex)
        else:
            out.append(_lit(c, fold))
            i += 1
    return "".join(out)


def _simple_length(p: bytes) -> int:
    for i, c in enumerate(p):
        if c in _GLOB_SPECIAL:
            return i
    return len(p)


class Rule(NamedTuple):
    pattern: bytes          # as written (after trimming), '!' and trailing '/' included
    negative: bool
    dir_only: bool
    basename: bool          # no '/' (but a trailing one): matched against the last component
    regex: str | None       # over the last component / the path below the base; None: never matches
    problem: str | None     # why it matches nothing (or less than it seems), for --exclude & co.


def parse_rule(pattern: bytes, fold: bool = False) -> Rule:
    """One pattern as git's parse_path_pattern() and match_basename()/match_pathname()
    see it; `fold`: as they see it with core.ignoreCase."""
    negative = pattern[:1] == b"!"
    p = pattern[1:] if negative else pattern
    dir_only = p[-1:] == b"/"
    if dir_only:
        p = p[:-1]
    basename = b"/" not in p
    problems: list = []
    try:
        if not p:
            raise _Never("empty pattern")
        if basename:
            regex = _wild(p, problems, fold)
        else:
            if p[:1] == b"/":
                p = p[1:]
            k = _simple_length(p)                  # the literal prefix is compared as is;
            regex = "".join(_lit(c, fold) for c in p[:k]) + _wild(p[k:], problems, fold)   # the rest from its start
    except _Never as exc:
        return Rule(pattern, negative, dir_only, basename, None, str(exc))
    return Rule(pattern, negative, dir_only, basename, regex, problems[0] if problems else None)


def _trim_trailing_spaces(line: bytes) -> bytes:
    if line[-1:] != b" ":
        return line
    last_space = None
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == 0x20:
            if last_space is None:
                last_space = i
        elif c == _BACKSLASH:
            i += 1
            if i >= n:
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def parse_lines(data: bytes) -> list[bytes]:
    """The patterns of an ignore file, as git's add_patterns_from_buffer() reads them."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    out = []
    for raw in data.split(b"\n"):
        if not raw or raw[0] == 0x23:              # empty, or a '#' comment
            continue
        line = raw[:-1] if raw[-1] == 0x0D else raw
        nul = line.find(b"\0")
        if nul >= 0:
            line = line[:nul]
        out.append(_trim_trailing_spaces(line))
    return out


class RuleList:
    """The rules of one source (an ignore file, or the command's patterns), with the
    directory they are relative to (`base`: '' or 'dir/sub/', relative to the top).

    `last(path, name, is_dir)` is the index of the last rule matching `path`
    (relative to the top; its last component `name`), or -1: one regex match per
    kind of rule, each an alternation of the rules in reverse order."""

    __slots__ = ("rules", "base", "_cache", "source")

    def __init__(self, rules: Sequence[Rule], base: bytes = b"", source: str | None = None):
        self.rules = tuple(rules)
        self.base = base
        self._cache: dict = {}
        self.source = source      # the file the rules come from (for messages), or None

    def _regex(self, basename: bool, is_dir: bool):
        key = (basename, is_dir)
        try:
            return self._cache[key]
        except KeyError:
            pass
        alts, index = [], []
        for k in range(len(self.rules) - 1, -1, -1):
            r = self.rules[k]
            if r.regex is None or r.basename != basename or (r.dir_only and not is_dir):
                continue
            alts.append(f"(?:{r.regex})\\Z()")
            index.append(k)
        compiled = (re.compile(("(?s)(?:" + "|".join(alts) + ")").encode("latin-1")), [-1] + index) if alts else None
        self._cache[key] = compiled
        return compiled

    def last(self, path: bytes, name: bytes, is_dir: bool) -> int:
        best = -1
        rx = self._regex(True, is_dir)
        if rx is not None:
            m = rx[0].match(name)
            if m:
                best = rx[1][m.lastindex]
        rx = self._regex(False, is_dir)
        if rx is not None:
            m = rx[0].match(path, len(self.base))
            if m:
                best = max(best, rx[1][m.lastindex])
        return best

    def decide(self, path: bytes, name: bytes, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included ('!'), None: no rule matches."""
        k = self.last(path, name, is_dir)
        return None if k < 0 else not self.rules[k].negative


def decide(layers: Sequence[RuleList], path: bytes, is_dir: bool) -> bool:
    """Whether `path` (relative to the layers' top, no trailing '/') is ignored by
    these layers (lowest priority first): the last matching rule of the highest
    layer with a match decides."""
    name = path[path.rfind(b"/") + 1:]
    for layer in reversed(layers):
        result = layer.decide(path, name, is_dir)
        if result is not None:
            return result
    return False


def deciding_rule(layers: Sequence[RuleList], path: bytes, is_dir: bool) -> tuple[RuleList, int] | None:
    """What `decide` answers, with the reason: (layer, index of the rule) of the
    rule that ignores `path`, or None when it is not ignored."""
    name = path[path.rfind(b"/") + 1:]
    for layer in reversed(layers):
        k = layer.last(path, name, is_dir)
        if k >= 0:
            return None if layer.rules[k].negative else (layer, k)
    return None


class Patterns:
    """Command-line patterns (--include, --exclude, --full): one rule list
    relative to the PATH argument, read as a .gitignore there would be."""

    __slots__ = ("rules",)

    def __init__(self, rules: RuleList):
        self.rules = rules

    def matches(self, rel: bytes, is_dir: bool) -> bool:
        """rel (relative to the PATH argument) itself matches (no look at its parents)."""
        return decide((self.rules,), rel, is_dir)

    def match_file(self, rel: str | bytes) -> bool:
        """The file matches, or a directory above it does (as git ignores everything
        below an ignored directory)."""
        relb = rel if isinstance(rel, bytes) else os.fsencode(rel)
        start = 0
        while True:
            slash = relb.find(b"/", start)
            if slash < 0:
                return self.matches(relb, False)
            if self.matches(relb[:slash], True):
                return True
            start = slash + 1


def compile_patterns(patterns: Iterable[str], option: str = "pattern") -> Patterns | None:
    """Command-line patterns as one Patterns, or None when there are none.

    Each argument is one pattern taken as is (no comment, no trimming, as
    `git ls-files --exclude`); one that can match nothing (empty, a lone '!',
    an unterminated '[', an unknown [:class:], a trailing '\\', a reversed
    range) raises PatternError naming it."""
    rules = []
    for text in patterns:
        rule = parse_rule(os.fsencode(text))
        if rule.problem is not None:
            raise PatternError(text, rule.problem + (" (it would match nothing)" if rule.regex is None else ""), option)
        rules.append(rule)
    return Patterns(RuleList(rules)) if rules else None


def read_ignore_file(path: str, base: bytes = b"", follow: bool = False, fold: bool = False) -> RuleList | None:
    """The rules of an ignore file, or None when it is missing, unreadable, empty
    or not a regular file. In the work tree (follow=False) a symlink is not
    followed, as git reads .gitignore with O_NOFOLLOW; a FIFO never blocks.
    `fold`: core.ignoreCase (parse_rule)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow:
        if hasattr(os, "O_NOFOLLOW"):
            flags |= os.O_NOFOLLOW
        elif os.path.islink(path):      # Windows: git's open_nofollow checks first, and so does the C walk
            return None
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    lines = parse_lines(b"".join(chunks))
    if not lines:
        return None
    return RuleList([parse_rule(line, fold) for line in lines], base, path)


DEFAULT_RULES_SOURCE = "the default ignores"


def default_rules() -> RuleList:
    return RuleList([parse_rule(p.encode()) for p in DEFAULT_IGNORES], source=DEFAULT_RULES_SOURCE)


# ---- git configuration (a small parser: only what the walk needs) --------------------------

def _is_space(c: str) -> bool:
    return c in " \t\n\r"          # git's isspace (ctype.c)


def parse_config(data: bytes) -> list[tuple[str, str | None, str, bytes | None]]:
    """(section, subsection, key, value) of each variable in a git config file,
    in order; sections and keys lower-cased, value None for a bare key (true).
    A line git would refuse ends the parse (what came before it is kept)."""
    text = data.decode("latin-1")
    if text.startswith("\xef\xbb\xbf"):
        text = text[3:]
    text = text.replace("\r\n", "\n")
    n = len(text)
    i = 0
    out: list = []
    section: str | None = None
    subsection: str | None = None

    def value_at(i: int) -> tuple[bytes | None, int]:
        buf: list[str] = []
        quote = comment = False
        space = 0
        while True:
            c = text[i] if i < n else "\n"
            i += 1
            if c == "\n":
                if quote:
                    return None, -1
                return "".join(buf).encode("latin-1"), i
            if comment:
                continue
            if _is_space(c) and not quote:
                if buf:
                    space += 1
                continue
            if not quote and c in ";#":
                comment = True
                continue
            if space:
                buf.append(" " * space)
                space = 0
            if c == "\\":
                c = text[i] if i < n else "\n"
                i += 1
                if c == "\n":
                    continue
                c = {"t": "\t", "b": "\b", "n": "\n", "\\": "\\", '"': '"'}.get(c)
                if c is None:
                    return None, -1
                buf.append(c)
                continue
            if c == '"':
                quote = not quote
                continue
            buf.append(c)

    while i < n:
        c = text[i]
        i += 1
        if c == "\n" or _is_space(c):
            continue
        if c in "#;":
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "[":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "-.") and text[j].isascii():
                j += 1
            name = text[i:j].lower()
            if not name or j >= n:
                break
            subsection = None
            if text[j] == "]":
                i = j + 1
            elif _is_space(text[j]):
                while j < n and _is_space(text[j]) and text[j] != "\n":
                    j += 1
                if j >= n or text[j] != '"':
                    break
                j += 1
                sub: list[str] = []
                while j < n and text[j] != '"':
                    if text[j] == "\n":
                        break
                    if text[j] == "\\":
                        j += 1
                        if j >= n or text[j] == "\n":
                            break
                    sub.append(text[j])
                    j += 1
                if j + 1 >= n or text[j] != '"' or text[j + 1] != "]":
                    break
                subsection = "".join(sub)
                i = j + 2
            else:
                break
            section = name
            continue
        if not (c.isascii() and c.isalpha()) or section is None:
            break
        j = i
        while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "-"):
            j += 1
        key = (c + text[i:j]).lower()
        while j < n and text[j] in " \t":
            j += 1
        if j >= n or text[j] == "\n":
            out.append((section, subsection, key, None))
            i = j + 1
            continue
        if text[j] != "=":
            break
        value, i = value_at(j + 1)
        if value is None:
            break
        out.append((section, subsection, key, value))
    return out


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _read_config(path: str) -> list:
    try:
        with open(path, "rb") as f:
            return parse_config(f.read())
    except OSError:
        return []


def _home() -> str | None:
    return os.environ.get("HOME") or (os.path.expanduser("~") if os.name != "posix" else None)


def _xdg_path(*parts: str) -> str | None:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "git", *parts)
    home = _home()
    return os.path.join(home, ".config", "git", *parts) if home else None


def _user_config_files() -> list[str]:
    files = []
    if not _env_true("GIT_CONFIG_NOSYSTEM"):
        files.append(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")
    if "GIT_CONFIG_GLOBAL" in os.environ:
        if os.environ["GIT_CONFIG_GLOBAL"]:
            files.append(os.environ["GIT_CONFIG_GLOBAL"])
    else:
        xdg = _xdg_path("config")
        if xdg:
            files.append(xdg)
        home = _home()
        if home:
            files.append(os.path.join(home, ".gitconfig"))
    return files


def _get(config: list, section: str, key: str) -> bytes | None:
    value = None
    for s, sub, k, v in config:
        if s == section and sub is None and k == key:
            value = b"true" if v is None else v
    return value


def _bool(value: bytes | None) -> bool:
    """A boolean setting as git reads it (unset: false)."""
    if value is None:
        return False
    v = value.strip().lower()
    if v in (b"true", b"yes", b"on"):
        return True
    try:
        return int(v) != 0
    except ValueError:
        return False


def _expand_path(value: bytes, relative_to: str) -> str:
    path = os.fsdecode(value)
    if path.startswith("~"):
        path = os.path.expanduser(path) if path != "~" and not path.startswith("~/") else (_home() or "~") + path[1:]
    return os.path.join(relative_to, path)


def _excludes_file(config: list, relative_to: str) -> str | None:
    value = _get(config, "core", "excludesfile")
    if value is not None:
        return _expand_path(value, relative_to) if value else None
    return _xdg_path("ignore")


def user_excludes_file(cwd: str) -> str | None:
    """core.excludesFile from the system and user configuration (outside a work tree)."""
    config = []
    for f in _user_config_files():
        config += _read_config(f)
    return _excludes_file(config, cwd)


# ---- repositories --------------------------------------------------------------------------

def _read_small(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return None


def _is_git_dir(git_dir: str) -> str | None:
    """The common directory when git_dir looks like a repository to git (a HEAD,
    objects/ and refs/ in the common directory), else None."""
    head = _read_small(os.path.join(git_dir, "HEAD"))
    if head is None or not (head.startswith(b"ref:") or re.fullmatch(rb"[0-9a-f]{40}([0-9a-f]{24})?\s*", head)):
        return None
    common = git_dir
    link = _read_small(os.path.join(git_dir, "commondir"))
    if link is not None:
        common = os.path.join(git_dir, os.fsdecode(link.rstrip(b"\r\n")))
    if not (os.path.isdir(os.path.join(common, "objects")) and os.path.isdir(os.path.join(common, "refs"))):
        return None
    return common


class Repo:
    """A git work tree: its top, git directory, configuration and index."""

    def __init__(self, top: str, git_dir: str, common_dir: str):
        self.top = top
        self.git_dir = git_dir
        self.common_dir = common_dir
        config = []
        for f in _user_config_files():
            config += _read_config(f)
        config += _read_config(os.path.join(common_dir, "config"))
        if _bool(_get(config, "extensions", "worktreeconfig")):
            config += _read_config(os.path.join(git_dir, "config.worktree"))
        self.hash_len = 32 if (_get(config, "extensions", "objectformat") or b"").lower() == b"sha256" else 20
        self.excludes_file = _excludes_file(config, top)
        self.ignore_case = _bool(_get(config, "core", "ignorecase"))
        self._tracked: list[bytes] | None = None

    def base_layers(self) -> list[RuleList]:
        """core.excludesFile, then info/exclude (both relative to the top)."""
        layers = []
        if self.excludes_file:
            rules = read_ignore_file(self.excludes_file, follow=True, fold=self.ignore_case)
            if rules is not None:
                layers.append(rules)
        rules = read_ignore_file(os.path.join(self.common_dir, "info", "exclude"), follow=True, fold=self.ignore_case)
        if rules is not None:
            layers.append(rules)
        return layers

    @property
    def tracked(self) -> list[bytes]:
        """The index's paths as they are looked up, sorted: with core.ignoreCase
        folded to lower case (ASCII), as git's index_file_exists(.., icase) compares."""
        if self._tracked is None:
            paths = read_index(os.path.join(self.git_dir, "index"), self.hash_len) or []
            self._tracked = sorted(p.lower() for p in paths) if self.ignore_case else paths
        return self._tracked

    def is_tracked(self, path: bytes) -> bool:
        t = self.tracked
        key = path.lower() if self.ignore_case else path
        k = bisect_left(t, key)
        return k < len(t) and t[k] == key

    def has_tracked_below(self, dir_path: bytes) -> bool:
        """Some tracked path lies below dir_path (relative to the top, no trailing '/')."""
        t = self.tracked
        prefix = (dir_path.lower() if self.ignore_case else dir_path) + b"/"
        k = bisect_left(t, prefix)
        return k < len(t) and t[k].startswith(prefix)


def repo_at(directory: str) -> Repo | None:
    """The work tree whose top is `directory`, if `directory/.git` is a repository
    (a directory, or a file `gitdir: PATH`, as for worktrees and submodules)."""
    dot_git = os.path.join(directory, ".git")
    try:
        st = os.stat(dot_git)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        git_dir = dot_git
    elif stat.S_ISREG(st.st_mode):
        content = _read_small(dot_git) or b""
        if not content.startswith(b"gitdir:"):
            return None
        git_dir = os.path.join(directory, os.fsdecode(content[7:].strip()))
    else:
        return None
    common = _is_git_dir(git_dir)
    return Repo(directory, git_dir, common) if common is not None else None


def find_work_tree(start: str) -> Repo | None:
    """The work tree holding directory `start` (a real path), as git discovers it:
    the nearest directory upwards with a repository in `.git`, not crossing a
    file-system boundary (unless GIT_DISCOVERY_ACROSS_FILESYSTEM)."""
    d = start
    try:
        dev = os.stat(d).st_dev
    except OSError:
        return None
    across = _env_true("GIT_DISCOVERY_ACROSS_FILESYSTEM")
    while True:
        repo = repo_at(d)
        if repo is not None:
            return repo
        parent = os.path.dirname(d)
        if parent == d:
            return None
        if not across:
            try:
                if os.stat(parent).st_dev != dev:
                    return None
            except OSError:
                return None
        d = parent


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    c = data[pos]
    pos += 1
    value = c & 127
    while c & 128:
        value += 1
        c = data[pos]
        pos += 1
        value = (value << 7) + (c & 127)
    return value, pos


def read_index(path: str, hash_len: int = 20) -> list[bytes] | None:
    """The sorted paths of a git index file (docs: git's index-format), stage 0
    to 3, gitlinks (submodules) left out; None when it is missing or not in a
    form read here (a split index, an unknown version, a damaged file)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        if len(data) < 12 or data[:4] != b"DIRC":
            return None
        version = int.from_bytes(data[4:8], "big")
        count = int.from_bytes(data[8:12], "big")
        if version not in (2, 3, 4):
            return None
        pos = 12
        names: list[bytes] = []
        prev = b""
        fixed = 40 + hash_len
        end_of_entries = len(data) - hash_len
        for _ in range(count):
            if pos + fixed + 2 > end_of_entries:
                return None
            mode = int.from_bytes(data[pos + 24:pos + 28], "big")
            flags = int.from_bytes(data[pos + fixed:pos + fixed + 2], "big")
            p = pos + fixed + 2
            if flags & 0x4000:
                if version < 3:
                    return None
                p += 2
            if version == 4:
                strip, p = _varint(data, p)
                end = data.index(b"\0", p)
                if strip > len(prev):
                    return None
                name = prev[:len(prev) - strip] + data[p:end]
                pos = end + 1
            else:
                end = data.index(b"\0", p)
                name = data[p:end]
                pos += (p - pos + len(name) + 8) & ~7
            prev = name
            if mode & 0o170000 != 0o160000:
                names.append(name)
        ext = pos
        while ext + 8 <= end_of_entries:                 # extensions: a split index cannot be read here
            sig = data[ext:ext + 4]
            size = int.from_bytes(data[ext + 4:ext + 8], "big")
            if sig == b"link":
                return None
            ext += 8 + size
    except (IndexError, ValueError):
        return None
    names.sort()
    return names
