"""The Bitcoin-family canonical verdict on scripted node answers: what counts as proof, and
answers of the wrong shape refused (the real-node cases are in the integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chaingate.adapters.chains.bitcoin.canonical import canonical_on_node
from chaingate.adapters.chains.bitcoin.rpc import BadNodeAnswer, RpcError
from chaingate.domain.chain import BlockRef, Canonical

OURS = BlockRef(100, "aa" * 32, "99" * 32, datetime(2026, 1, 1, tzinfo=UTC))


class ScriptedNode:
    label = "scripted"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def call(self, method: str, params: list[Any]) -> Any:
        self.asked.append(method)
        answer = self.answers[method]
        if callable(answer):
            answer = answer(params)
        if isinstance(answer, RpcError):
            raise answer
        return answer


def header(confirmations: int, work: str = "c8", **changes: Any) -> dict[str, Any]:
    return {
        "hash": OURS.hash,
        "height": 100,
        "confirmations": confirmations,
        "chainwork": work,
        **changes,
    }


async def verdict(**answers: Any) -> Canonical:
    return await canonical_on_node(ScriptedNode(answers), OURS)


async def test_in_the_best_chain_is_yes_and_an_unknown_hash_is_unknown() -> None:
    assert await verdict(getblockheader=header(3)) is Canonical.YES
    missing = RpcError(-5, "Block not found")
    assert await verdict(getblockheader=missing) is Canonical.UNKNOWN


async def test_off_the_best_chain_is_proof_only_with_enough_work_or_an_invalid_branch() -> None:
    off = header(-1, work="c8")
    assert await verdict(getblockheader=off, getblockchaininfo={"chainwork": "c8"}) is Canonical.NO
    lighter = {"getblockheader": off, "getblockchaininfo": {"chainwork": "c6"}}
    assert await verdict(**lighter, getchaintips=[]) is Canonical.UNKNOWN  # downloading
    downloading = [{"height": 101, "hash": "bb" * 32, "branchlen": 2, "status": "headers-only"}]
    assert await verdict(**lighter, getchaintips=downloading) is Canonical.UNKNOWN

    def walk(params: list[Any]) -> dict[str, Any]:
        if params[0] == OURS.hash:
            return off
        return {"hash": "bb" * 32, "height": 101, "previousblockhash": OURS.hash}

    invalid = [{"height": 101, "hash": "bb" * 32, "branchlen": 2, "status": "invalid"}]
    answers = {**lighter, "getblockheader": walk, "getchaintips": invalid}
    assert await verdict(**answers) is Canonical.NO
    elsewhere = [{"height": 101, "hash": "bb" * 32, "branchlen": 1, "status": "invalid"}]
    assert await verdict(**{**answers, "getchaintips": elsewhere}) is Canonical.UNKNOWN


@pytest.mark.parametrize(
    "answer",
    [
        header(3, hash="cc" * 32),  # another block than asked
        header(3, height=99),  # our hash at another height
        header(0),  # Core never answers 0
        header(-2),
        header(-1, work="not hex"),
        ["not", "an", "object"],
    ],
)
async def test_answers_of_the_wrong_shape_are_refused(answer: object) -> None:
    with pytest.raises(BadNodeAnswer):
        await verdict(getblockheader=answer, getblockchaininfo={"chainwork": "ff"})
