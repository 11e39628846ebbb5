"""An account's balance and nonce, proven against a verified header's stateRoot (eth_getProof).

A trace is committed to by nothing in the header, so a lying tracer could claim that a proven,
successful contract call also paid a watched address. The state trie does commit to every
balance: if the address signed nothing in the block (same nonce before and after) and has no
code, its balance can only have grown by what it received, so the ETH credited to it in that
block may not exceed the proven growth.

Nodes keep the state of recent blocks only (geth: 128) unless they are archive nodes; without
it the proof is unavailable and the caller needs other evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from trie.exceptions import BadTrieProof, ValidationError
from trie.hexary import HexaryTrie

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.rpc import NodeEndpoint

EMPTY_CODE_HASH = keccak(b"")
_MAX_PROOF_NODES = 64  # a state trie is at most 64 nibbles deep


@dataclass(frozen=True, slots=True)
class Account:
    nonce: int
    balance: int
    code_hash: bytes


def account_request(address: str, number: int) -> tuple[str, list[object]]:
    return "eth_getProof", [address, [], hex(number)]


def proven_account(answer: object, address: str, state_root: str, label: str) -> Account:
    """The account an eth_getProof answer proves under `state_root` (an absent account is an
    empty one). Raises BadNodeAnswer when the proof does not hold."""
    if not isinstance(answer, dict):
        raise BadNodeAnswer(f"{label}: eth_getProof: expected an object")
    nodes = answer.get("accountProof")
    if not isinstance(nodes, list) or len(nodes) > _MAX_PROOF_NODES:
        raise BadNodeAnswer(f"{label}: eth_getProof.accountProof: expected a list of nodes")
    try:
        decoded = [rlp.decode(parse.data(n, "accountProof[]")) for n in nodes]
        leaf: bytes = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
            bytes.fromhex(state_root[2:]), keccak(bytes.fromhex(address[2:])), decoded
        )
        if not leaf:
            return Account(nonce=0, balance=0, code_hash=EMPTY_CODE_HASH)
        nonce, balance, _storage_root, code_hash = rlp.decode(leaf)
    except (BadTrieProof, ValidationError, rlp.DecodingError, ValueError, TypeError) as exc:
        raise BadNodeAnswer(f"{label}: the state proof of {address} does not hold") from exc
    return Account(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), bytes(code_hash))


async def received_in_block(
    node: NodeEndpoint, address: str, number: int, roots: tuple[str, str]
) -> int | None:
    """What `address` provably received in block `number`, given the stateRoots of its parent
    and itself; None when that cannot be told (it signed a transaction or has code)."""
    before, after = await node.batch(
        [account_request(address, number - 1), account_request(address, number)]
    )
    old = proven_account(before, address, roots[0], node.label)
    new = proven_account(after, address, roots[1], node.label)
    if old.nonce != new.nonce or old.code_hash != EMPTY_CODE_HASH:
        return None
    if new.code_hash != EMPTY_CODE_HASH:
        return None
    return new.balance - old.balance
