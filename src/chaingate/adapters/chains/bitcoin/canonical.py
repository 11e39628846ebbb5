"""Is our block still in a Bitcoin Core node's best chain? Proof even from a shorter chain.

`getblockheader <hash>` answers `confirmations: -1` for a block the node knows but does not
have in its active chain. That alone is NOT proof of a reorg: a node still syncing knows the
headers of blocks it has not connected yet (headers-first download) and answers -1 for them
too. It is proof when
- the node's active chain has at least the block's chain work: the node preferred another
  branch (the usual reorg, even onto a chain with fewer blocks), or
- the block sits on a branch the node marked invalid (`getchaintips` status "invalid":
  `invalidateblock`, or a block that broke consensus), whatever the work.
Everything else, including a block the node never saw, is UNKNOWN.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from chaingate.adapters.chains.bitcoin import parse
from chaingate.adapters.chains.bitcoin.rpc import BadNodeAnswer, RpcError
from chaingate.domain.chain import BlockRef, Canonical

_BLOCK_NOT_FOUND = -5
_CHAIN_WORK = re.compile(r"[0-9a-f]{1,64}")
# Invalid branches are walked back header by header to our height; a longer walk proves
# nothing we need (a reorg deeper than the tracker's window stops it anyway).
MAX_INVALID_BRANCH_WALK = 1_000


class Node(Protocol):
    label: str

    async def call(self, method: str, params: list[Any]) -> Any: ...


async def canonical_on_node(node: Node, block: BlockRef) -> Canonical:
    """The node's verdict on `block`. Raises BadNodeAnswer for an answer of the wrong shape
    (another height or hash than asked, a malformed chain work)."""
    try:
        header = await node.call("getblockheader", [block.hash, True])
    except RpcError as exc:
        if exc.code == _BLOCK_NOT_FOUND:
            return Canonical.UNKNOWN  # never saw it: lagging, or on another network's view
        raise
    what = f"{node.label}: getblockheader {block.hash}"
    header = _object(header, what)
    if header.get("hash") != block.hash:
        raise BadNodeAnswer(f"{what}: answered hash {header.get('hash')!r}")
    if parse.integer(header.get("height"), f"{what} height", high=parse.MAX_HEIGHT) != block.number:
        raise BadNodeAnswer(f"{what}: answered height {header.get('height')!r}, not {block.number}")
    confirmations = parse.integer(
        header.get("confirmations"), f"{what} confirmations", low=-1, high=parse.MAX_HEIGHT
    )
    if confirmations > 0:
        return Canonical.YES
    if confirmations == 0:
        raise BadNodeAnswer(f"{what}: 0 confirmations (Core answers -1 or at least 1)")
    work = _chain_work(header.get("chainwork"), what)
    info = _object(await node.call("getblockchaininfo", []), f"{node.label}: getblockchaininfo")
    if _chain_work(info.get("chainwork"), f"{node.label}: getblockchaininfo") >= work:
        return Canonical.NO  # the node's best chain outweighs ours and does not hold the block
    if await _on_invalid_branch(node, block):
        return Canonical.NO
    return Canonical.UNKNOWN  # more work than the node's tip: it is still downloading


async def _on_invalid_branch(node: Node, block: BlockRef) -> bool:
    """Whether `block` is on a branch whose tip the node reports as invalid."""
    tips = await node.call("getchaintips", [])
    if not isinstance(tips, list):
        raise BadNodeAnswer(f"{node.label}: getchaintips: expected a list")
    for tip in tips:
        tip = _object(tip, f"{node.label}: getchaintips entry")
        if tip.get("status") != "invalid":
            continue
        what = f"{node.label}: getchaintips"
        height = parse.integer(tip.get("height"), f"{what} height", high=parse.MAX_HEIGHT)
        branch = parse.integer(tip.get("branchlen"), f"{what} branchlen", high=parse.MAX_HEIGHT)
        steps = height - block.number
        if not 0 <= steps < branch or steps > MAX_INVALID_BRANCH_WALK:
            continue  # our height is not on this branch (or too far down it)
        current = parse.hash_hex(tip.get("hash"), f"{what} hash")
        for _ in range(steps):
            above = _object(
                await node.call("getblockheader", [current, True]), f"{what} walk {current}"
            )
            current = parse.hash_hex(above.get("previousblockhash"), f"{what} walk {current}")
        if current == block.hash:
            return True
    return False


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadNodeAnswer(f"{what}: expected an object")
    return value


def _chain_work(value: object, what: str) -> int:
    if not isinstance(value, str) or _CHAIN_WORK.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: chainwork is not hex: {value!r}"[:200])
    return int(value, 16)
