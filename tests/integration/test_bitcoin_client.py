"""BitcoinChainClient against a real litecoind regtest node: the shared ChainClient contract,
outputs and coinbase flags, MWEB blocks, the mempool view, fee estimates, failover, a wrong
genesis, and a lying node (behind a rewriting proxy) refused as NodeUnavailable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient, ChainMismatch
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.bitcoin.pow import pow_error
from chaingate.domain.chain import NodeUnavailable
from chaingate.ports import ChainClient
from tests.support.chain_contract import ChainClientContract, WatchList
from tests.support.litecoind import LitecoindNode
from tests.support.litecoind_proxy import LyingProxy, Rewrite
from tests.support.net import free_port

pytestmark = pytest.mark.litecoind

# A merchant wallet litecoind knows nothing about: the addresses come from our own derivation.
MERCHANT_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
PARAMS = BUILT_IN[("litecoin", "regtest")]
MERCHANT_KEY = account_key_from_mnemonic(MERCHANT_MNEMONIC, PARAMS)
DERIVER = BitcoinAddressDeriver(PARAMS)


class TestLitecoindChainClientContract(ChainClientContract):
    """The shared ChainClient contract on litecoind. The payer is litecoind's own "payer"
    wallet (sendtoaddress), an independent client; addresses are the merchant's derived ones."""

    native_asset = "LTC"
    payment_amount = 1_234_567  # satoshis

    @pytest.fixture(autouse=True)
    def _on_litecoind(self, litecoind: LitecoindNode) -> None:
        self.node = litecoind

    async def make_client(self) -> ChainClient:
        return BitcoinChainClient(self.node.network())

    async def pay(self, address: str, amount: int) -> str:
        return await self.node.pay(address, amount)

    async def mine(self, blocks: int) -> None:
        await self.node.mine(blocks)

    async def new_watched_address(self) -> str:
        return await self.node.new_address("miner")


# ----- helpers ---------------------------------------------------------------------------


_next_index = iter(range(1000, 10**6))


def merchant_address() -> str:
    return DERIVER.derive(MERCHANT_KEY, next(_next_index))


async def scan_tip(client: BitcoinChainClient, blocks: int, watch: WatchList) -> Any:
    tip = await client.tip_height()
    parent = await client.block_at(tip - blocks)
    return await client.scan(tip - blocks + 1, tip, parent, watch)


# ----- outputs ---------------------------------------------------------------------------


async def test_outputs_to_derived_addresses_each_count_with_their_vout(
    litecoind: LitecoindNode,
) -> None:
    first, second, stranger = merchant_address(), merchant_address(), merchant_address()
    txid = await litecoind.rpc(
        "sendmany", "", {first: "0.5", second: "0.0001", stranger: "1"}, wallet="payer"
    )
    await litecoind.mine(1)
    client = BitcoinChainClient(litecoind.network())
    try:
        watch = WatchList({first, second})
        result = await scan_tip(client, 1, watch)
    finally:
        await client.close()
    raw = await litecoind.rpc("getrawtransaction", txid, True, result.blocks[0].hash)
    vouts = {
        o["scriptPubKey"]["addresses"][0]: o["n"]
        for o in raw["vout"]
        if "addresses" in o.get("scriptPubKey", {})
    }
    found = {(t.to_address, t.position, t.amount) for t in result.transfers}
    assert found == {(first, str(vouts[first]), 50_000_000), (second, str(vouts[second]), 10_000)}
    assert all(t.txid == txid and not t.coinbase and t.asset == "LTC" for t in result.transfers)
    assert watch.questions[0] >= {first, second, stranger}


async def test_coinbase_outputs_are_flagged(litecoind: LitecoindNode) -> None:
    reward_to = merchant_address()
    await litecoind.mine(1, reward_to)
    client = BitcoinChainClient(litecoind.network())
    try:
        result = await scan_tip(client, 1, WatchList({reward_to}))
    finally:
        await client.close()
    [reward] = result.transfers
    assert reward.coinbase and reward.position == "0" and reward.amount > 0


async def test_mweb_blocks_with_pegins_and_hogex_scan_cleanly(litecoind: LitecoindNode) -> None:
    # The fixture's chain is past MWEB activation: every block carries a HogEx transaction.
    mweb = await litecoind.rpc("getnewaddress", "", "mweb", wallet="payer")
    await litecoind.rpc("sendtoaddress", mweb, "0.1", wallet="payer")
    paid = merchant_address()
    await litecoind.pay(paid, 777_000)
    await litecoind.mine(1)
    body = await litecoind.rpc("getblock", await litecoind.rpc("getbestblockhash"), 2)
    assert "mweb" in body
    client = BitcoinChainClient(litecoind.network())
    try:
        result = await scan_tip(client, 1, WatchList({paid}))
    finally:
        await client.close()
    assert [t.amount for t in result.transfers] == [777_000]


async def test_real_regtest_headers_carry_scrypt_proof_of_work(litecoind: LitecoindNode) -> None:
    await litecoind.mine(3)
    tip = await litecoind.tip()
    for height in range(tip - 9, tip + 1):
        block_hash = await litecoind.rpc("getblockhash", height)
        raw = bytes.fromhex(await litecoind.rpc("getblockheader", block_hash, False))
        assert pow_error(raw, "scrypt", PARAMS.pow_limit) is None
        assert PARAMS.pow_hash == "scrypt"
    client = BitcoinChainClient(litecoind.network())
    try:
        result = await scan_tip(client, 10, WatchList(set()))  # every header checked on the way
    finally:
        await client.close()
    assert len(result.blocks) == 10


async def test_mempool_pegins_are_skipped_on_litecoin_refused_without_mweb(
    litecoind: LitecoindNode,
) -> None:
    # A peg-in waiting in the mempool lists its MWEB outputs (`ismweb`, no `n`): Litecoin's
    # parameters skip them; a chain configured without MWEB calls that a bad answer.
    mweb = await litecoind.rpc("getnewaddress", "", "mweb", wallet="payer")
    await litecoind.rpc("sendtoaddress", mweb, "0.1", wallet="payer")
    paid = merchant_address()
    await litecoind.pay(paid, 444_000)
    honest = BitcoinChainClient(litecoind.network())
    denied = BitcoinChainClient(litecoind.network(chain_params={"mweb": False}))
    try:
        view = await honest.mempool(WatchList({paid}))
        assert [t.amount for t in view.transfers if t.to_address == paid] == [444_000]
        with pytest.raises(NodeUnavailable, match="MWEB"):
            await denied.mempool(WatchList({paid}))
    finally:
        await honest.close()
        await denied.close()
        await litecoind.mine(1)


# ----- mempool and fees ------------------------------------------------------------------


async def test_mempool_view_then_mined(litecoind: LitecoindNode) -> None:
    address = merchant_address()
    client = BitcoinChainClient(litecoind.network())
    try:
        txid = await litecoind.pay(address, 2_000_000)
        watch = WatchList({address})
        view = await client.mempool(watch)
        [seen] = [t for t in view.transfers if t.to_address == address]
        assert (seen.txid, seen.amount, seen.block) == (txid, 2_000_000, None)
        assert txid in view.txids
        again = await client.mempool(watch)
        assert seen in again.transfers
        assert all(address not in q for q in watch.questions[1:]), "looked up once when new"
        await litecoind.mine(1)
        after = await client.mempool(watch)
        assert txid not in after.txids
        assert all(t.txid != txid for t in after.transfers)
    finally:
        await client.close()


async def test_mempool_memory_is_txids_and_watched_transfers_only(
    litecoind: LitecoindNode,
) -> None:
    # What the client keeps between polls grows with the mempool only by one txid per
    # transaction; outputs are kept only where they pay a watched address.
    address = merchant_address()
    client = BitcoinChainClient(litecoind.network())
    try:
        paid = await litecoind.pay(address, 600_000)
        other = await litecoind.pay(merchant_address(), 700_000)
        view = await client.mempool(WatchList({address}))
        assert {paid, other} <= view.txids
        assert client._mempool_seen == set(view.txids)
        assert set(client._mempool_watched) == {paid}
        assert [t.amount for t in client._mempool_watched[paid]] == [600_000]
    finally:
        await client.close()
        await litecoind.mine(1)


async def test_fee_rate_in_sat_per_vbyte(litecoind: LitecoindNode) -> None:
    client = BitcoinChainClient(litecoind.network())
    try:
        rate = await client.fee_rate(2)
        assert rate is None or rate >= 1
        with pytest.raises(ValueError, match="target_blocks"):
            await client.fee_rate(0)
    finally:
        await client.close()


async def test_wait_for_new_head_returns_after_a_block(litecoind: LitecoindNode) -> None:
    client = BitcoinChainClient(litecoind.network(), head_poll_seconds=0.05)
    try:
        await client.wait_for_new_head(0.01)  # learns the current head
        await litecoind.mine(1)
        tip = await client.tip_height()
        await client.wait_for_new_head(60)
        assert await client.tip_height() == tip
    finally:
        await client.close()


# ----- node trust ------------------------------------------------------------------------


async def test_verify_chain_accepts_litecoin_regtest(litecoind: LitecoindNode) -> None:
    client = BitcoinChainClient(litecoind.network())
    try:
        await client.verify_chain()
    finally:
        await client.close()


async def test_verify_chain_refuses_a_node_of_another_chain(litecoind: LitecoindNode) -> None:
    client = BitcoinChainClient(litecoind.network(chain="bitcoin", chain_network="regtest"))
    try:
        with pytest.raises(ChainMismatch, match="genesis"):
            await client.verify_chain()
    finally:
        await client.close()


async def test_failover_from_a_dead_node(litecoind: LitecoindNode) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    network = litecoind.network(rpc_urls=[dead, litecoind.rpc_url])
    client = BitcoinChainClient(network)
    try:
        assert await client.tip_height() == await litecoind.tip()
        await client.verify_chain()
    finally:
        await client.close()


async def test_wrong_password_and_all_dead_are_node_unavailable(litecoind: LitecoindNode) -> None:
    client = BitcoinChainClient(litecoind.network(rpc_password="wrong"))
    try:
        with pytest.raises(NodeUnavailable, match="401"):
            await client.tip_height()
    finally:
        await client.close()


async def test_cookie_auth(litecoind: LitecoindNode, tmp_path: Any) -> None:
    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{litecoind.rpc_user}:{litecoind.rpc_password}")
    network = litecoind.network(rpc_user=None, rpc_password=None, rpc_cookie_file=cookie)
    client = BitcoinChainClient(network)
    try:
        assert await client.tip_height() == await litecoind.tip()
    finally:
        await client.close()


@pytest.fixture
def lying(litecoind: LitecoindNode) -> Iterator[Callable[[Rewrite], LyingProxy]]:
    proxies: list[LyingProxy] = []

    def make(rewrite: Rewrite) -> LyingProxy:
        proxy = LyingProxy(litecoind.rpc_url, (litecoind.rpc_user, litecoind.rpc_password), rewrite)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def _inflated_amounts(method: str, result: Any) -> Any:
    if method == "getblock" and isinstance(result, dict):
        for tx in result["tx"][1:]:
            for out in tx["vout"]:
                out["value"] = Decimal(out["value"]) + 1
    return result


def _redirected_output(method: str, result: Any) -> Any:
    # A careful liar: a real payment to someone else, shown as paying the watched address.
    if method == "getblock" and isinstance(result, dict):
        for tx in result["tx"][1:]:
            for out in tx["vout"]:
                if "addresses" in out.get("scriptPubKey", {}):
                    out["scriptPubKey"]["addresses"] = [LIE_TARGET]
    return result


LIE_TARGET = DERIVER.derive(MERCHANT_KEY, 999_999)


def _fractional_satoshi(method: str, result: Any) -> Any:
    if method == "getblock" and isinstance(result, dict):
        result["tx"][0]["vout"][0]["value"] = Decimal("0.000000001")
    return result


def _forged_txid(method: str, result: Any) -> Any:
    if method == "getblock" and isinstance(result, dict):
        result["tx"][-1]["txid"] = "ab" * 32
    return result


def _wrong_header(method: str, result: Any) -> Any:
    if method == "getblockheader" and isinstance(result, str):
        return result[:-2] + ("00" if result[-2:] != "00" else "01")
    return result


def _not_a_hash(method: str, result: Any) -> Any:
    return "0xZZ" if method == "getblockhash" else result


def _wrong_types(method: str, result: Any) -> Any:
    if method == "getblockcount":
        return "12"
    if method == "getrawmempool":
        return {"txid": 1}
    return result


@pytest.mark.parametrize("rewrite", [_inflated_amounts, _redirected_output])
async def test_forged_outputs_are_caught_by_the_raw_transaction(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy], rewrite: Rewrite
) -> None:
    address = merchant_address()
    await litecoind.pay(address, 100_000)
    await litecoind.pay(merchant_address(), 100_000)  # someone else's payment
    await litecoind.mine(1)
    tip = await litecoind.tip()
    honest = BitcoinChainClient(litecoind.network())
    proxy = lying(rewrite)
    lied_to = BitcoinChainClient(litecoind.network(rpc_urls=[proxy.url]))
    try:
        truth = await honest.scan(tip, tip, None, WatchList({address, LIE_TARGET}))
        assert [t.amount for t in truth.transfers] == [100_000]
        with pytest.raises(NodeUnavailable, match="raw transaction"):
            await lied_to.scan(tip, tip, None, WatchList({address, LIE_TARGET}))
    finally:
        await honest.close()
        await lied_to.close()


def _inflated_mempool_tx(method: str, result: Any) -> Any:
    if method == "getrawtransaction" and isinstance(result, dict):
        for out in result["vout"]:
            out["value"] = Decimal(out["value"]) * 2
    return result


async def test_forged_mempool_amounts_are_refused(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    address = merchant_address()
    await litecoind.pay(address, 300_000)
    proxy = lying(_inflated_mempool_tx)
    lied_to = BitcoinChainClient(litecoind.network(rpc_urls=[proxy.url]))
    honest = BitcoinChainClient(litecoind.network())
    try:
        with pytest.raises(NodeUnavailable, match="raw transaction"):
            await lied_to.mempool(WatchList({address}))
        view = await honest.mempool(WatchList({address}))
        assert [t.amount for t in view.transfers if t.to_address == address] == [300_000]
    finally:
        await lied_to.close()
        await honest.close()
        await litecoind.mine(1)


def _mempool_still_loading(method: str, result: Any) -> Any:
    if method == "getmempoolinfo":
        return {**result, "loaded": False}
    return result


async def test_a_mempool_still_loading_proves_nothing(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    address = merchant_address()
    txid = await litecoind.pay(address, 250_000)
    proxy = lying(_mempool_still_loading)
    loading = BitcoinChainClient(litecoind.network(rpc_urls=[proxy.url]))
    honest = BitcoinChainClient(litecoind.network())
    try:
        view = await loading.mempool(WatchList({address}))
        assert (view.loaded, view.transfers, view.txids) == (False, (), frozenset())
        ready = await honest.mempool(WatchList({address}))
        assert ready.loaded and txid in ready.txids
    finally:
        await loading.close()
        await honest.close()
        await litecoind.mine(1)


async def test_failover_from_a_lying_node_to_an_honest_one(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    address = merchant_address()
    await litecoind.pay(address, 250_000)
    await litecoind.mine(1)
    tip = await litecoind.tip()
    proxy = lying(_wrong_header)
    client = BitcoinChainClient(litecoind.network(rpc_urls=[proxy.url, litecoind.rpc_url]))
    try:
        result = await client.scan(tip, tip, None, WatchList({address}))
    finally:
        await client.close()
    assert [t.amount for t in result.transfers] == [250_000]


@pytest.mark.parametrize(
    "rewrite",
    [_fractional_satoshi, _forged_txid, _wrong_header, _not_a_hash, _wrong_types],
)
async def test_malformed_answers_are_node_unavailable(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy], rewrite: Rewrite
) -> None:
    await litecoind.pay(merchant_address(), 100_000)
    await litecoind.mine(1)
    proxy = lying(rewrite)
    client = BitcoinChainClient(litecoind.network(rpc_urls=[proxy.url]))
    try:
        tip = await litecoind.tip()
        with pytest.raises(NodeUnavailable):
            await client.scan(tip, tip, None, WatchList(set()))
        if rewrite is _wrong_types:
            with pytest.raises(NodeUnavailable):
                await client.mempool(WatchList(set()))
    finally:
        await client.close()


# ----- an MWEB flag cannot switch the raw-transaction check off --------------------------

# A "raw transaction" whose flag byte claims MWEB and which holds nothing else (7 bytes).
MWEB_BLOB = "01000000" + "0008" + "00"


def _blob_for(txid: str, *, verbose: bool) -> Rewrite:
    """The payment `txid` shown as 1 LTC, its raw bytes answered with MWEB_BLOB."""

    def rewrite(method: str, result: Any) -> Any:
        if method == "getblock" and isinstance(result, dict):
            for tx in result["tx"]:
                if tx["txid"] == txid:
                    _inflate_to_one_coin(tx)
        if method == "getrawtransaction" and not verbose and isinstance(result, str):
            return MWEB_BLOB
        shown_verbose = verbose and isinstance(result, dict) and result.get("txid") == txid
        if method == "getrawtransaction" and shown_verbose:
            _inflate_to_one_coin(result)
            result["hex"] = MWEB_BLOB
        return result

    return rewrite


def _inflate_to_one_coin(tx: dict[str, Any]) -> None:
    for out in tx["vout"]:
        if "addresses" in out.get("scriptPubKey", {}):
            out["value"] = Decimal(1)


async def test_an_mweb_flagged_blob_cannot_vouch_for_a_block_payment(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    address = merchant_address()
    txid = await litecoind.pay(address, 100_000)  # 0.001 LTC, shown as 1 LTC
    await litecoind.mine(1)
    tip = await litecoind.tip()
    lied_to = BitcoinChainClient(
        litecoind.network(rpc_urls=[lying(_blob_for(txid, verbose=False)).url])
    )
    honest = BitcoinChainClient(litecoind.network())
    try:
        with pytest.raises(NodeUnavailable, match="raw transaction does not parse"):
            await lied_to.scan(tip, tip, None, WatchList({address}))
        truth = await honest.scan(tip, tip, None, WatchList({address}))
        assert [(t.txid, t.amount) for t in truth.transfers] == [(txid, 100_000)]
    finally:
        await lied_to.close()
        await honest.close()


async def test_an_mweb_flagged_blob_cannot_vouch_for_a_mempool_payment(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    address = merchant_address()
    txid = await litecoind.pay(address, 200_000)
    lied_to = BitcoinChainClient(
        litecoind.network(rpc_urls=[lying(_blob_for(txid, verbose=True)).url])
    )
    honest = BitcoinChainClient(litecoind.network())
    try:
        with pytest.raises(NodeUnavailable, match="raw transaction does not parse"):
            await lied_to.mempool(WatchList({address}))
        view = await honest.mempool(WatchList({address}))
        assert [(t.txid, t.amount) for t in view.transfers if t.to_address == address] == [
            (txid, 200_000)
        ]
    finally:
        await lied_to.close()
        await honest.close()
        await litecoind.mine(1)


def _inflated_block_outputs(method: str, result: Any) -> Any:
    if method == "getblock" and isinstance(result, dict):
        for tx in result["tx"]:
            for out in tx["vout"]:
                out["value"] = Decimal(out["value"]) * 2
    return result


async def test_an_mweb_transaction_proves_the_canonical_outputs_it_credits(
    litecoind: LitecoindNode, lying: Callable[[Rewrite], LyingProxy]
) -> None:
    # A peg-out from MWEB to the merchant is paid by the block's HogEx transaction: a canonical
    # output of an MWEB-flagged serialization, whose txid covers the canonical part only.
    wallets = await litecoind.rpc("listwallets")
    if "mweb-only" not in wallets:
        await litecoind.rpc("createwallet", "mweb-only", False, False, "", False, False)
    mweb = await litecoind.rpc("getnewaddress", "", "mweb", wallet="mweb-only")
    await litecoind.rpc("sendtoaddress", mweb, "1", wallet="payer")
    await litecoind.mine(1)
    paid = merchant_address()
    await litecoind.rpc("sendtoaddress", paid, "0.3", wallet="mweb-only")
    await litecoind.mine(1)
    tip = await litecoind.tip()
    block = await litecoind.rpc("getblock", await litecoind.rpc("getblockhash", tip), 2)
    [hogex] = [tx for tx in block["tx"] if tx["hex"][8:12] in ("0008", "0009")]
    assert any(paid in o["scriptPubKey"].get("addresses", []) for o in hogex["vout"])
    honest = BitcoinChainClient(litecoind.network())
    inflated = BitcoinChainClient(litecoind.network(rpc_urls=[lying(_inflated_block_outputs).url]))
    try:
        result = await honest.scan(tip, tip, None, WatchList({paid}))
        assert [(t.txid, t.amount) for t in result.transfers] == [(hogex["txid"], 30_000_000)]
        with pytest.raises(NodeUnavailable, match="differs from the raw transaction"):
            await inflated.scan(tip, tip, None, WatchList({paid}))
    finally:
        await honest.close()
        await inflated.close()
