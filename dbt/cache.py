"""The translation cache: translated blocks, their links, and invalidation.

Blocks are keyed by their EIP, the physical address of their first byte
and the flags word of the translation environment (``dbt.lift.env``); the
EIP is part of the key because a translation embeds EIP values (return
addresses, branch targets).  In front of that table sits a jump cache keyed
by EIP and flags word only, flushed whenever the mapping from EIP to
physical address changes (CR3 loads, paging switched, a new CS base).

A block's direct exits are link slots: after the first time an exit is
taken, it is linked to the successor block and the execution loop follows
the link without any look-up.  Each block keeps the list of links that
point at it, so invalidating a block unlinks exactly those.

The cache also tracks which physical bytes hold translated code: a store
that changes them invalidates the blocks concerned (self-modifying code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dbt.backend.python import Exit
from dbt.memory.physical import PAGE_SHIFT


@dataclass(eq=False, slots=True)
class TranslatedBlock:
    pc: int  # guest EIP of the first instruction
    physical: int  # physical address of the first byte
    flags: int  # translation environment
    function: Callable[[], int]
    exits: list[Exit]
    insn_count: int
    # Physical byte ranges [start, end) the block's code occupies (one per page).
    ranges: list[tuple[int, int]]
    links: list[TranslatedBlock | None] = field(default_factory=list)
    incoming: list[tuple[TranslatedBlock, int]] = field(default_factory=list)
    exit_insns: tuple[int, ...] = ()
    exit_targets: tuple[int | None, ...] = ()
    valid: bool = True
    executions: int = 0
    invalidations: int = 0
    # What the dump commands show: lifted IR, decoded instructions, sources.
    artifacts: dict[str, Any] = field(default_factory=dict)
    # The pages of EIP space the code lies in (one or two): what INVLPG of
    # a page must make the look-ups by EIP forget.
    eip_pages: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.links = [None] * len(self.exits)
        self.exit_insns = tuple(e.insns for e in self.exits)
        self.exit_targets = tuple(e.target for e in self.exits)
        size = sum(stop - start for start, stop in self.ranges)
        first = self.pc >> PAGE_SHIFT
        last = ((self.pc + max(size, 1) - 1) & 0xFFFFFFFF) >> PAGE_SHIFT
        self.eip_pages = (first,) if first == last else (first, last)

    @property
    def pages(self) -> list[int]:
        return sorted({start >> PAGE_SHIFT for start, _ in self.ranges})


@dataclass
class CacheStats:
    translated: int = 0
    lookups: int = 0  # look-ups by address (jump cache, then table)
    jump_cache_hits: int = 0
    table_hits: int = 0
    links_made: int = 0
    invalidations: int = 0
    flushes: int = 0
    code_writes: int = 0  # stores that changed translated code
    dropped_executions: int = 0  # executions of blocks since invalidated

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class TranslationCache:
    def __init__(self, capacity_blocks: int = 65536) -> None:
        self.capacity_blocks = capacity_blocks
        self.table: dict[tuple[int, int, int], TranslatedBlock] = {}
        self.jump_cache: dict[tuple[int, int], TranslatedBlock] = {}
        # The jump cache's keys by the EIP pages their blocks occupy (INVLPG
        # drops one page's; stale keys are harmless).
        self.jump_pages: dict[int, set[tuple[int, int]]] = {}
        self.page_blocks: dict[int, list[TranslatedBlock]] = {}
        # Per code page, how many blocks cover each byte: a store checks its
        # bytes here before looking for the blocks themselves.
        self.page_bytes: dict[int, list[int]] = {}
        self.stats = CacheStats()
        self.on_page_protected: Callable[[int], None] = lambda page: None
        self.on_page_released: Callable[[int], None] = lambda page: None
        # The hot tier drops native code with the blocks it was compiled from.
        self.on_invalidated: Callable[[TranslatedBlock], None] = lambda block: None
        self.on_forget_virtual: Callable[[int | None], None] = lambda keep_page: None
        self.on_forget_pages: Callable[[tuple[int, ...]], None] = lambda pages: None

    def __len__(self) -> int:
        return len(self.table)

    def blocks(self) -> list[TranslatedBlock]:
        return list(self.table.values())

    # -- look-up --------------------------------------------------------------------
    def find(self, pc: int, flags: int, physical: Callable[[], int]) -> TranslatedBlock | None:
        """The block for ``pc`` under ``flags``; ``physical`` gives the code's
        physical address if the jump cache misses (it may raise a fault)."""
        self.stats.lookups += 1
        block = self.jump_cache.get((pc, flags))
        if block is not None:
            self.stats.jump_cache_hits += 1
            return block
        block = self.table.get((pc, physical(), flags))
        if block is not None:
            self.stats.table_hits += 1
            self._remember(block)
        return block

    def _remember(self, block: TranslatedBlock) -> None:
        key = (block.pc, block.flags)
        self.jump_cache[key] = block
        for page in block.eip_pages:
            self.jump_pages.setdefault(page, set()).add(key)

    def insert(self, block: TranslatedBlock) -> None:
        if len(self.table) >= self.capacity_blocks:
            self.flush()
        self.stats.translated += 1
        self.table[(block.pc, block.physical, block.flags)] = block
        self._remember(block)
        for page in block.pages:
            on_page = self.page_blocks.setdefault(page, [])
            if not on_page:
                self.page_bytes[page] = [0] * (1 << PAGE_SHIFT)
                self.on_page_protected(page)
            on_page.append(block)
        self._count_bytes(block, 1)

    def _count_bytes(self, block: TranslatedBlock, delta: int) -> None:
        mask = (1 << PAGE_SHIFT) - 1
        for start, stop in block.ranges:
            counts = self.page_bytes.get(start >> PAGE_SHIFT)
            if counts is None:
                continue
            for offset in range(start & mask, ((stop - 1) & mask) + 1):
                counts[offset] += delta

    def link(self, source: TranslatedBlock, exit_index: int, target: TranslatedBlock) -> None:
        if source.valid and target.valid:
            source.links[exit_index] = target
            target.incoming.append((source, exit_index))
            self.stats.links_made += 1

    def forget_virtual(self, keep_page: int | None = None) -> None:
        """EIP-to-physical mappings changed (CR3, paging on or off, CS base);
        those of the EIP page ``keep_page``, if given, did not (a block that
        lies on another page too is forgotten with that page)."""
        if keep_page in self.jump_pages:
            if len(self.jump_pages) > 1:
                self._forget_jumps([page for page in self.jump_pages if page != keep_page])
        else:
            self.jump_cache.clear()
            self.jump_pages.clear()
        self.on_forget_virtual(keep_page)

    def forget_pages(self, eip_pages: tuple[int, ...]) -> None:
        """The mapping of the code at these EIP pages may have changed
        (INVLPG): blocks there are found again by their physical address."""
        self._forget_jumps(eip_pages)
        self.on_forget_pages(eip_pages)

    def _forget_jumps(self, eip_pages: Iterable[int]) -> None:
        for page in eip_pages:
            for key in self.jump_pages.pop(page, ()):
                self.jump_cache.pop(key, None)

    # -- invalidation ------------------------------------------------------------------
    def invalidate(self, block: TranslatedBlock) -> None:
        if not block.valid:
            return
        block.valid = False
        block.invalidations += 1
        self.stats.invalidations += 1
        self.stats.dropped_executions += block.executions
        self.on_invalidated(block)
        for source, exit_index in block.incoming:
            if source.links[exit_index] is block:
                source.links[exit_index] = None
        block.incoming.clear()
        for index, target in enumerate(block.links):
            if target is not None:
                target.incoming = [(s, k) for s, k in target.incoming if s is not block]
                block.links[index] = None
        key = (block.pc, block.physical, block.flags)
        if self.table.get(key) is block:
            del self.table[key]
        if self.jump_cache.get((block.pc, block.flags)) is block:
            del self.jump_cache[(block.pc, block.flags)]
        self._count_bytes(block, -1)
        for page in block.pages:
            on_page = self.page_blocks.get(page)
            if on_page is not None and block in on_page:
                on_page.remove(block)
                if not on_page:
                    del self.page_blocks[page]
                    del self.page_bytes[page]
                    self.on_page_released(page)

    def overlapping(self, physical: int, size_bytes: int) -> list[TranslatedBlock]:
        end = physical + size_bytes
        found = []
        for page in range(physical >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1):
            for block in self.page_blocks.get(page, ()):
                if any(start < end and physical < stop for start, stop in block.ranges):
                    found.append(block)
        return found

    def code_write(self, physical: int, size_bytes: int) -> bool:
        """Whether a store to these bytes would change translated code."""
        mask = (1 << PAGE_SHIFT) - 1
        for address in range(physical, physical + size_bytes):
            counts = self.page_bytes.get(address >> PAGE_SHIFT)
            if counts is not None and counts[address & mask]:
                return True
        return False

    def invalidate_range(self, physical: int, size_bytes: int) -> None:
        blocks = self.overlapping(physical, size_bytes)
        if blocks:
            self.stats.code_writes += 1
        for block in blocks:
            self.invalidate(block)

    def flush(self) -> None:
        """Drop every translation (capacity reached, or a global change)."""
        self.stats.flushes += 1
        for block in list(self.table.values()):
            self.invalidate(block)
        self.table.clear()
        self.jump_cache.clear()
        self.jump_pages.clear()
