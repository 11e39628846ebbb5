"""ETH moved by contracts: the value transfers inside a transaction, from the node's tracer.

A Safe multisig, a smart-contract wallet or an exchange's batch payout pays with an internal
CALL: no transaction names the recipient and no log is written, so only a trace shows it.
Two tracers are read: geth's `callTracer` (debug_traceBlockByHash; nested `calls`) and the
parity-style `trace_block` (a flat list with `traceAddress`). Both come to the same list.

A transfer's key within its transaction is its ordinal among the frames below the top one
that move value (CALL, CREATE, CREATE2, SELFDESTRUCT with value > 0), counted depth-first in
execution order, reverted ones included: `trace:<ordinal>`. It never collides with "native"
or a log index, does not change when a frame elsewhere reverts, and is the same under both
tracers (a path of child indexes would also count value-less frames, such as calls to
precompiles, which tracers list differently).

A trace is the node's word, committed to by nothing in the header: callers credit a transfer
only when its transaction is proven and succeeded (scanner.py), and may ask a second node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.parse import BadNodeAnswer

Tracer = Literal["call_tracer", "parity"]
TRACE_POSITION_PREFIX = "trace:"
_MOVES_VALUE = frozenset({"CALL", "CREATE", "CREATE2", "SELFDESTRUCT"})
_CALL_TYPES = frozenset({"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", *_MOVES_VALUE})
_MAX_FRAMES = 1_000_000  # per block; a real block holds far fewer


@dataclass(frozen=True, slots=True)
class InternalTransfer:
    ordinal: int
    from_address: str
    to_address: str | None  # None: a CREATE that failed (no address came of it)
    amount: int
    reverted: bool  # the frame or one of its callers failed: nothing moved

    @property
    def position(self) -> str:
        return f"{TRACE_POSITION_PREFIX}{self.ordinal}"


@dataclass(frozen=True, slots=True)
class TransactionTrace:
    """What the tracer says one transaction did."""

    txid: str
    from_address: str
    to_address: str | None  # the callee, or the created contract
    value: int
    failed: bool
    transfers: tuple[InternalTransfer, ...]


@dataclass(frozen=True, slots=True)
class _Frame:
    kind: str  # upper-case EVM operation
    from_address: str
    to_address: str | None
    value: int
    failed: bool
    path: tuple[int, ...]


def trace_request(tracer: Tracer, block_hash: str, number: int) -> tuple[str, list[Any]]:
    """The JSON-RPC call that traces a whole block."""
    if tracer == "call_tracer":
        return "debug_traceBlockByHash", [block_hash, {"tracer": "callTracer"}]
    return "trace_block", [hex(number)]


def transaction_trace_request(tracer: Tracer, txid: str) -> tuple[str, list[Any]]:
    """The JSON-RPC call that traces one transaction."""
    if tracer == "call_tracer":
        return "debug_traceTransaction", [txid, {"tracer": "callTracer"}]
    return "trace_transaction", [txid]


def block_traces(
    tracer: Tracer, answer: object, txids: Sequence[str], block_hash: str
) -> tuple[TransactionTrace, ...]:
    """One TransactionTrace per transaction of the block, in order. Raises BadNodeAnswer when
    the answer is malformed or does not trace exactly these transactions."""
    if tracer == "call_tracer":
        if not isinstance(answer, list) or len(answer) != len(txids):
            raise BadNodeAnswer("callTracer: expected one trace per transaction of the block")
        return tuple(
            _call_tracer_item(item, txid) for item, txid in zip(answer, txids, strict=True)
        )
    by_tx = _parity_by_transaction(answer, block_hash)
    if set(by_tx) - set(range(len(txids))):
        raise BadNodeAnswer("trace_block: a trace names a position outside the block")
    return tuple(_parity_transaction(by_tx.get(i, []), txid) for i, txid in enumerate(txids))


def transaction_trace(tracer: Tracer, answer: object, txid: str) -> TransactionTrace:
    """The answer of transaction_trace_request, checked to trace `txid`."""
    if tracer == "call_tracer":
        return _to_trace(txid, _call_frames(answer))
    if not isinstance(answer, list):
        raise BadNodeAnswer("trace_transaction: expected a list")
    for item in answer:
        named = parse.hash32(_object(item, "trace").get("transactionHash"), "transactionHash")
        if named != txid:
            raise BadNodeAnswer("trace_transaction: a trace names another transaction")
    return _parity_transaction(answer, txid)


def _call_tracer_item(item: object, txid: str) -> TransactionTrace:
    obj = _object(item, "callTracer item")
    named = obj.get("txHash")
    # Older geth leaves txHash out; the position in the list then says which it is.
    if named is not None and parse.hash32(named, "callTracer.txHash") != txid:
        raise BadNodeAnswer("callTracer: traces are not in the block's transaction order")
    if "error" in obj and "result" not in obj:
        raise BadNodeAnswer(f"callTracer: tracing {txid} failed on the node")
    return _to_trace(txid, _call_frames(obj.get("result")))


def _call_frames(top: object) -> list[_Frame]:
    """Depth-first frames of a callTracer result (iterative: a hostile nesting is not recursion)."""
    frames: list[_Frame] = []
    stack: list[tuple[object, tuple[int, ...]]] = [(top, ())]
    while stack:
        value, path = stack.pop()
        obj = _object(value, "callTracer frame")
        kind = obj.get("type")
        if not isinstance(kind, str) or kind.upper() not in _CALL_TYPES:
            raise BadNodeAnswer(f"callTracer: unknown frame type {str(kind)[:20]!r}")
        to_raw = obj.get("to")
        raw_value = obj.get("value")
        frames.append(
            _Frame(
                kind=kind.upper(),
                from_address=parse.address(obj.get("from"), "callTracer.from"),
                to_address=None if to_raw is None else parse.address(to_raw, "callTracer.to"),
                value=0 if raw_value is None else parse.quantity(raw_value, "callTracer.value"),
                failed="error" in obj,
                path=path,
            )
        )
        if len(frames) > _MAX_FRAMES:
            raise BadNodeAnswer("callTracer: implausibly many frames")
        calls = obj.get("calls", [])
        if not isinstance(calls, list):
            raise BadNodeAnswer("callTracer.calls: expected a list")
        # Reversed onto the stack, so they come off in execution order.
        stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(calls))))
    return frames


def _parity_by_transaction(answer: object, block_hash: str) -> dict[int, list[Any]]:
    if not isinstance(answer, list) or len(answer) > _MAX_FRAMES:
        raise BadNodeAnswer("trace_block: expected a list")
    by_tx: dict[int, list[Any]] = {}
    for item in answer:
        obj = _object(item, "trace")
        if obj.get("type") == "reward" or obj.get("transactionHash") is None:
            continue  # block and uncle rewards (pre-merge): no transaction, no payment
        if parse.hash32(obj.get("blockHash"), "trace.blockHash") != block_hash:
            raise BadNodeAnswer("trace_block: a trace names another block")
        position = obj.get("transactionPosition")
        if type(position) is not int or position < 0:
            raise BadNodeAnswer("trace_block: transactionPosition is not a position")
        by_tx.setdefault(position, []).append(obj)
    return by_tx


def _parity_transaction(items: list[Any], txid: str) -> TransactionTrace:
    frames: list[_Frame] = []
    for item in items:
        obj = _object(item, "trace")
        named = parse.hash32(obj.get("transactionHash"), "trace.transactionHash")
        if named != txid:
            raise BadNodeAnswer("trace_block: traces are not in the block's transaction order")
        frames.append(_parity_frame(obj))
    frames.sort(key=lambda f: f.path)  # depth-first pre-order is lexicographic path order
    if not frames or len({f.path for f in frames}) != len(frames):
        raise BadNodeAnswer(f"trace_block: the traces of {txid} are no call tree")
    return _to_trace(txid, frames)


def _parity_frame(obj: Mapping[str, Any]) -> _Frame:
    action = _object(obj.get("action"), "trace.action")
    result = obj.get("result")
    path_raw = obj.get("traceAddress")
    if not isinstance(path_raw, list) or not all(type(i) is int and i >= 0 for i in path_raw):
        raise BadNodeAnswer("trace.traceAddress: expected a list of positions")
    kind_raw = obj.get("type")
    failed = obj.get("error") is not None
    if kind_raw == "call":
        call_type = action.get("callType")
        kind = str(call_type).upper()
        if kind not in _CALL_TYPES:
            raise BadNodeAnswer(f"trace: unknown call type {str(call_type)[:20]!r}")
        sender = parse.address(action.get("from"), "trace.action.from")
        recipient: str | None = parse.address(action.get("to"), "trace.action.to")
        value = parse.quantity(action.get("value"), "trace.action.value")
    elif kind_raw == "create":
        kind = "CREATE2" if action.get("creationMethod") == "create2" else "CREATE"
        sender = parse.address(action.get("from"), "trace.action.from")
        created = _object(result, "trace.result").get("address") if result else None
        recipient = None if created is None else parse.address(created, "trace.result.address")
        value = parse.quantity(action.get("value"), "trace.action.value")
    elif kind_raw in ("suicide", "selfdestruct"):
        kind = "SELFDESTRUCT"
        sender = parse.address(action.get("address"), "trace.action.address")
        recipient = parse.address(action.get("refundAddress"), "trace.action.refundAddress")
        value = parse.quantity(action.get("balance"), "trace.action.balance")
    else:
        raise BadNodeAnswer(f"trace: unknown trace type {str(kind_raw)[:20]!r}")
    return _Frame(kind, sender, recipient, value, failed, tuple(path_raw))


def _to_trace(txid: str, frames: list[_Frame]) -> TransactionTrace:
    """Frames in depth-first order (the top first) to the transaction's value transfers."""
    if not frames or frames[0].path != ():
        raise BadNodeAnswer(f"trace of {txid} has no top call")
    failed_paths: set[tuple[int, ...]] = set()
    transfers: list[InternalTransfer] = []
    seen: set[tuple[int, ...]] = set()
    for frame in frames:
        if frame.path and frame.path[:-1] not in seen:
            raise BadNodeAnswer(f"trace of {txid}: a call without its caller")
        seen.add(frame.path)
        # Parents come before their children: a failed caller is already known.
        undone = frame.failed or (bool(frame.path) and frame.path[:-1] in failed_paths)
        if undone:
            failed_paths.add(frame.path)
        if frame.path and frame.kind in _MOVES_VALUE and frame.value > 0:
            transfers.append(
                InternalTransfer(
                    ordinal=len(transfers),
                    from_address=frame.from_address,
                    to_address=frame.to_address,
                    amount=frame.value,
                    reverted=undone,
                )
            )
    top = frames[0]
    return TransactionTrace(
        txid=txid,
        from_address=top.from_address,
        to_address=top.to_address,
        value=top.value,
        failed=top.failed,
        transfers=tuple(transfers),
    )


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadNodeAnswer(f"{what}: expected an object")
    return value
