"""The LLVM IR text builder the region compiler uses: what it writes parses,
and runs with the meaning of each operation."""

import ctypes

import llvmlite.binding as llvm
import pytest

from dbt.backend.irtext import I1, I8, I32, I64, Builder, Function, const, function_type
from dbt.backend.llvm import NativeTarget


def compiled(function: Function, intrinsics: set[str], signature):  # noqa: ANN001, ANN201
    target = NativeTarget.get()
    text = "\n\n".join([*sorted(intrinsics), function.text()])
    module = llvm.parse_assembly(text)
    module.verify()
    target.engine.add_module(module)
    target.engine.finalize_object()
    return signature(target.engine.get_function_address(function.name))


BINARY = ("add", "sub", "mul", "and_", "or_", "xor", "shl", "lshr", "ashr", "udiv", "urem", "sdiv", "srem")


@pytest.mark.parametrize("op", BINARY)
def test_binary_operations_match_their_32_bit_meaning(op: str) -> None:
    intrinsics: set[str] = set()
    function = Function(f"irtext_{op}", function_type(I32, [I32, I32]))
    b = Builder(function, function.append_basic_block("entry"), intrinsics)
    b.ret(getattr(b, op)(*function.args))
    run = compiled(function, intrinsics, ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32))

    def signed(value: int) -> int:
        return value - (1 << 32) if value & 0x80000000 else value

    expected = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "and_": lambda a, b: a & b, "or_": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
        "shl": lambda a, b: a << b, "lshr": lambda a, b: a >> b, "ashr": lambda a, b: signed(a) >> b,
        "udiv": lambda a, b: a // b, "urem": lambda a, b: a % b,
        "sdiv": lambda a, b: int(signed(a) / signed(b)),
        "srem": lambda a, b: signed(a) - int(signed(a) / signed(b)) * signed(b),
    }[op]
    for a, b_value in ((7, 3), (0xFFFFFFF0, 5), (0x80000000, 31), (123456789, 1)):
        assert run(a, b_value) == expected(a, b_value) & 0xFFFFFFFF, (op, a, b_value)


def test_control_flow_memory_and_intrinsics() -> None:
    """A loop (phis), a switch, a select, loads and stores through a
    pointer argument, and ctpop: sum of popcounts of ``count`` words, plus a
    switch-chosen bonus."""
    intrinsics: set[str] = set()
    function = Function("irtext_loop", function_type(I32, [I32.as_pointer(), I32, I32]))
    words, count, selector = function.args
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    bonus_one = function.append_basic_block("bonus")
    bonus_two = function.append_basic_block("bonus")  # the same name: made unique
    finish = function.append_basic_block("finish")
    b = Builder(function, entry, intrinsics)
    b.cbranch(b.icmp_unsigned("==", count, const(I32, 0)), done, loop)
    b.position_at_end(loop)
    index, total = b.phi(I32, "index"), b.phi(I32, "index")
    word = b.load(b.gep(words, [b.zext(index, I64)]))
    new_total = b.add(total, b.ctpop(word))
    b.store(b.xor(word, const(I32, -1)), b.gep(words, [b.zext(index, I64)]))  # complement each word in place
    next_index = b.add(index, const(I32, 1))
    index.add_incoming(const(I32, 0), entry)
    index.add_incoming(next_index, loop)
    total.add_incoming(const(I32, 0), entry)
    total.add_incoming(new_total, loop)
    b.cbranch(b.icmp_signed("<", next_index, count), loop, done)
    b.position_at_end(done)
    summed = b.phi(I32)
    summed.add_incoming(const(I32, 0), entry)
    summed.add_incoming(new_total, loop)
    switch = b.switch(selector, finish)
    switch.add_case(1, bonus_one)
    switch.add_case(const(I32, 2), bonus_two)
    results = []
    for block, value in ((bonus_one, 100), (bonus_two, 200)):
        b.position_at_end(block)
        results.append((b.add(summed, const(I32, value)), block))
        b.branch(finish)
    b.position_at_end(finish)
    result = b.phi(I32)
    result.add_incoming(summed, done)
    for value, block in results:
        result.add_incoming(value, block)
    low_byte = b.trunc(result, I8)
    is_big = b.icmp_unsigned(">", b.zext(low_byte, I32), const(I32, 0x7F))
    b.ret(b.select(is_big, b.sext(low_byte, I32), result))
    assert [block.name for block in function.blocks].count("bonus.1") == 1
    run = compiled(function, intrinsics, ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(ctypes.c_uint32),
                                                          ctypes.c_uint32, ctypes.c_uint32))
    data = (ctypes.c_uint32 * 3)(0xFF, 0x1, 0xF0F0F0F0)
    assert run(data, 3, 0) == 8 + 1 + 16
    assert list(data) == [0xFFFFFF00, 0xFFFFFFFE, 0x0F0F0F0F]
    assert run(data, 0, 2) == 200 - 256  # low byte 0xC8 is above 0x7F: sign-extended
    assert run(data, 1, 1) == 124  # ctpop(0xFFFFFF00) = 24, plus 100
    assert I1.width == 1


def test_pointer_bitcasts_emit_nothing() -> None:
    function = Function("irtext_cast", function_type(I32, [I8.as_pointer()]))
    b = Builder(function, function.append_basic_block("entry"))
    as_words = b.bitcast(function.args[0], I32.as_pointer())
    assert as_words.ref == function.args[0].ref and as_words.type.pointee is I32
    b.ret(b.load(as_words, align=1))
    assert sum(1 for line in function.text().splitlines() if "=" in line) == 1
