"""The loop guard: spot a trajectory that has fallen into a repetition loop while it is generated.

A small teacher at temperature 0.6 often ends up repeating a few tokens (`\\equiv d + d \\equiv d + d
...`) until the length cap, and `tpt validate` then rejects the trajectory: every token after the loop
began was paid for and thrown away. The guard watches the stream and says stop as soon as the recent
text is degenerate, and where the loop began, so the backend frees the slot (or closes the request)
at once.

The statistic: over the last `window` tokens, the share of positions whose n-gram (the `ngram` tokens
ending there) also occurs earlier in the window, i.e. 1 - distinct n-grams / window. Prose and even
symbol-heavy technical text (equations, code, tables) repeat some n-grams; a loop of period p leaves only
about p distinct ones, whatever the window. The guard fires when the share reaches `threshold`. Before
the window has filled, the same share over the n-grams so far is judged once there are `min_fill` of them
(MIN_FILL_NGRAMS x ngram, at most the window), so a loop under a cap shorter than the window is stopped
too. The cost per token is O(1): one tuple, a few dict operations and a deque push/pop (the window's n-gram
counts and the position of each one's latest occurrence are kept as they move).

Where the loop began: at the firing, the newest n-gram repeats one a period p back; the guard walks
back over the window while n-grams repeat the one p back (a stretch of 2 x ngram others in a row
ends the walk), and the earliest of them points at its earlier occurrence: the loop's first copy. `loop_start` is the offset (in tokens fed)
of that first copy's first token: the text before it is what a "keep the prefix" policy keeps.

`LoopGuard` takes any hashable tokens (token ids of an in-process teacher); `TextLoopGuard` takes text
as it streams from a server, cut into word and symbol pieces (`TEXT_PIECE`), which are about as fine as
a BPE tokenizer's on technical text, and reports the loop's start as a character offset too.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass

from tpt.core.errors import ConfigError

FINISH_REPETITION = "repetition"
"""The finish_reason of a trajectory the guard stopped."""
MIN_FILL_NGRAMS = 6
"""A partly filled window is judged once it holds this many x ngram n-grams (48 by default). Measured on
real text read as thinking from 16,950 starting points (the sample corpus and the MATH-500 solutions,
every 16th token, both tokenizations; docs/loop-guard.md): no start fires at any fill from 16 n-grams on,
and the highest share a partial window reaches falls as the fill grows until 48 (token ids 0.667 at 16
and 24, 0.613 from 32; text pieces 0.595 up to 32, 0.571 from 48), then stays; 48 keeps both under the
full windows' margin (0.05 under the threshold) while a loop from the first token stops by token 55."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LoopGuardOptions:
    """When the guard fires. The defaults are tuned in docs/loop-guard.md: no firing on the bundled
    corpus or the MATH-500 solutions read as thinking (with the margins stated there), and a stop
    within about a window of a loop's start."""

    enabled: bool = True
    ngram: int = 8
    """Tokens per n-gram: a repeat of this many tokens in a row counts."""
    window: int = 256
    """Tokens looked back over. A window not yet full is judged over the n-grams so far once it holds
    `min_fill` of them (MIN_FILL_NGRAMS x ngram, at most the window)."""
    threshold: float = 0.7
    """Share of the window's n-grams that already occurred in it, at or above which it fires."""

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ConfigError(f"--loop-ngram must be >= 1, got {self.ngram}")
        if self.window < 2 * self.ngram:
            raise ConfigError(
                f"--loop-window must be at least twice --loop-ngram ({2 * self.ngram}), got {self.window}"
            )
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"--loop-threshold must be in (0, 1], got {self.threshold}")

    def as_dict(self) -> dict[str, bool | int | float]:
        return asdict(self)

    @property
    def min_fill(self) -> int:
        """The fewest n-grams a partly filled window is judged on (the fewest tokens: + ngram - 1)."""
        return min(self.window, MIN_FILL_NGRAMS * self.ngram)

    def guard(self) -> LoopGuard | None:
        """A fresh guard for one trajectory, or None when the guard is off."""
        return LoopGuard(self) if self.enabled else None


class LoopGuard:
    """The detector for one trajectory: `feed(token)` per generated token returns True once looping."""

    __slots__ = (
        "_n",
        "_window",
        "_need",
        "_min_fill",
        "_recent",
        "_entries",
        "_last",
        "_counts",
        "threshold",
        "tokens",
        "fired",
        "loop_start",
        "peak_share",
    )

    def __init__(self, options: LoopGuardOptions | None = None) -> None:
        options = options or LoopGuardOptions()
        self._n, self._window, self.threshold = options.ngram, options.window, options.threshold
        self._need = options.threshold * options.window
        self._min_fill = options.min_fill
        self._recent: deque[Hashable] = deque(maxlen=options.ngram)
        # One entry per position with a full n-gram, the latest `window` of them: (n-gram, the
        # position of its previous occurrence in the window or -1).
        self._entries: deque[tuple[tuple, int]] = deque()
        self._last: dict[tuple, int] = {}  # n-gram -> position of its latest occurrence in the window
        self._counts: dict[tuple, int] = {}  # n-gram -> its occurrences in the window
        self.tokens = 0
        """Tokens fed so far."""
        self.fired = False
        self.loop_start: int | None = None
        """Once fired: the offset of the token where the loop began (0-based, in tokens fed)."""
        self.peak_share = 0.0
        """The highest share of repeated n-grams any window the guard judged held so far (a full one,
        or a partly filled one of at least min_fill n-grams): the firing statistic's peak."""

    def feed(self, token: Hashable) -> bool:
        """Take the next token; True when the trajectory is looping (and from then on)."""
        if self.fired:
            return True
        pos = self.tokens
        self.tokens += 1
        recent = self._recent
        recent.append(token)
        if len(recent) < self._n:
            return False
        gram = tuple(recent)
        last = self._last
        prev = last.get(gram, -1)
        last[gram] = pos
        entries = self._entries
        entries.append((gram, prev))
        counts = self._counts
        counts[gram] = counts.get(gram, 0) + 1
        filled = len(entries)
        if filled > self._window:
            old, _ = entries.popleft()
            if counts[old] == 1:  # its only occurrence in the window leaves it
                del counts[old], last[old]
            else:
                counts[old] -= 1
            filled = self._window
        if filled < self._window:  # a partly filled window: judged over its n-grams once it has enough
            if filled < self._min_fill:
                return False
            need = self.threshold * filled
        else:
            need = self._need
        repeated = filled - len(counts)
        if repeated > self.peak_share * filled:
            self.peak_share = repeated / filled
        if repeated >= need:
            self.fired = True
            self.loop_start = self._find_start()
            return True
        return False

    def feed_many(self, tokens: Iterable[Hashable]) -> bool:
        """Feed tokens in order until the guard fires; True if it did."""
        for token in tokens:
            if self.feed(token):
                return True
        return False

    def _find_start(self) -> int:
        # The newest n-gram repeats the one a period p back. Walk back over the window while the
        # n-grams repeat the one p back (in a loop each n-gram's latest earlier occurrence is in the
        # copy before; text that merely reuses a phrase repeats at other distances); a stretch of
        # 2 x ngram others in a row ends the loop (one changed token in a copy breaks at most ngram
        # of them). The earliest such repeat points at the first copy.
        pos = self.tokens - 1
        period = max(1, pos - self._entries[-1][1])
        start, other = pos, 0
        for _gram, prev in reversed(self._entries):
            if prev >= 0 and pos - prev == period:
                start, other = prev, 0
            else:
                other += 1
                if other >= 2 * self._n:
                    break
            pos -= 1
        # `start` is where the first copy's n-gram ends: the copy starts n - 1 tokens earlier.
        return max(0, start - self._n + 1)


TEXT_PIECE = re.compile(r"\\?\w+|[^\w\s]+")
"""What `TextLoopGuard` counts as one token: a run of word characters (with a leading backslash: a
LaTeX command), or a run of other non-space characters (so `\\equiv d + d` is 4 pieces). About as
fine as a BPE tokenizer on technical text: on the bundled texts its window shares stay below the
token ids' (docs/loop-guard.md)."""


class TextLoopGuard:
    """The guard over streamed text (an OpenAI-compatible server's deltas): `feed_text(delta)`.

    A piece that touches the end of the text so far is held back until more text (or `finish`)
    shows it is complete, so the pieces are the same however the server chunks the stream.
    """

    def __init__(self, options: LoopGuardOptions | None = None) -> None:
        self.guard = LoopGuard(options)
        self._text = ""  # the text not yet cut into pieces (a held-back piece at most, or a delta)
        self._offset = 0  # characters of the stream before _text
        # Character offsets of the latest pieces: enough to reach back to any loop start.
        self._starts: deque[int] = deque(maxlen=self.guard._window + self.guard._n + 1)
        self.loop_start_char: int | None = None
        """Once fired: the character offset (in the text fed) where the loop began."""

    @property
    def fired(self) -> bool:
        return self.guard.fired

    @property
    def loop_start(self) -> int | None:
        return self.guard.loop_start

    @property
    def tokens(self) -> int:
        return self.guard.tokens

    def feed_text(self, delta: str) -> bool:
        """Take the next piece of streamed text; True when the trajectory is looping."""
        if self.guard.fired:
            return True
        self._text += delta
        return self._scan(final=False)

    def finish(self) -> bool:
        """The stream ended: count the held-back last piece."""
        return self.guard.fired or self._scan(final=True)

    def _scan(self, *, final: bool) -> bool:
        text, done = self._text, 0
        for match in TEXT_PIECE.finditer(text):
            if match.end() == len(text) and not final:
                break  # may continue in the next delta
            done = match.end()
            self._starts.append(self._offset + match.start())
            if self.guard.feed(match.group()):
                start = self.guard.loop_start
                assert start is not None
                first = self.guard.tokens - len(self._starts)  # the piece _starts[0] is
                self.loop_start_char = self._starts[max(0, start - first)]
                return True
        self._text, self._offset = text[done:], self._offset + done
        return False
