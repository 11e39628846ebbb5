"""Event payload bytes are pinned: merchants parse them, so the typed payload models must
render exactly what the gateway sent before they existed (strings captured from that code).

One model (services/payloads.py) serves the API answer and the event `data`; these tests pin the
bytes of the invoice document and of the `payment` object of payment events, per family.
Changed on purpose once since: `checkout_url` after `payment_uri` (absolute from public_url, or
null when the gateway does not know its address).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.config import TokenConfig
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Invoice, Payment
from chaingate.services.payloads import InvoicePayload, invoice_document, payment_document

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 3, 9, 5, 123456, tzinfo=UTC)
USDT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
EVM_ADDRESS = "0x" + "12" * 20
BTC_ADDRESS = "rltc1qcr8te4kr609gcawutmrza0j4xv80jy8z4mwqe0"
PUBLIC = "https://pay.shop.example"
ETH = EvmNetworkConfig(
    name="eth",
    chain_id=31337,
    rpc_urls=["http://x"],
    tokens=[TokenConfig(symbol="USDT", contract=USDT, decimals=6)],
)
LTC = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://x"]
)


def invoice(network: str, asset: str, address: str, due: int, paid: int, **status: Any) -> Invoice:
    return Invoice(
        id="inv_01jgz0000000000000000000ab",
        merchant_id="mer_1",
        network=network,
        asset=asset,
        amount_due=due,
        amount_paid=paid,
        status=status["status"],
        additional_status=status["extra"],
        address=address,
        wallet_id="wal_1",
        derivation_index=7,
        order_id="order-7",
        metadata={"cart": [1, 2.5, None], "note": "\u00fc"},
        required_confirmations=2,
        tolerance_bps=50,
        expires_at=T1,
        watch_until=T1,
        created_at=T0,
        updated_at=T1,
        redirect_url="https://shop.example/thanks",
    )


def payment(
    network: str, txid: str, position: str, address: str, asset: str, **more: Any
) -> Payment:
    contract, block = more.get("contract"), more.get("block")
    evm = contract is not None or position == "native"
    return Payment(
        id="pay_" + position,
        invoice_id="inv_01jgz0000000000000000000ab",
        network=network,
        txid=txid,
        position=position,
        address=address,
        asset=asset,
        token_contract=contract,
        from_address="0x" + "ab" * 20 if evm else None,
        amount=more["amount"],
        block_number=block,
        block_hash=None if block is None else "0x" + "cd" * 32,
        paid_at=T0,
        confirmations=0 if block is None else 1,
        status=more["status"],
        reached_confirmations=False,
        created_at=T0,
        updated_at=T1,
    )


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), allow_nan=False)  # as services.events


EVM_INVOICE = invoice(
    "eth", "USDT", EVM_ADDRESS, 12_500_000, 5_000_000,
    status=InvoiceStatus.NEW, extra=AdditionalStatus.UNDERPAID,
)  # fmt: skip
EVM_PAYMENTS = [
    payment(
        "eth", "0x" + "ef" * 32, "3", EVM_ADDRESS, "USDT",
        contract=USDT, amount=5_000_000, block=100, status=PaymentStatus.PENDING,
    ),
    payment(
        "eth", "0x" + "ee" * 32, "native", EVM_ADDRESS, "ETH",
        amount=10**15, block=101, status=PaymentStatus.WRONG_ASSET,
    ),
]  # fmt: skip
BTC_INVOICE = invoice(
    "ltc", "LTC", BTC_ADDRESS, 150_000_000, 150_000_000,
    status=InvoiceStatus.PROCESSING, extra=AdditionalStatus.NONE,
)  # fmt: skip
BTC_PAYMENTS = [
    payment(
        "ltc", "aa" * 32, "1", BTC_ADDRESS, "LTC", amount=150_000_000, status=PaymentStatus.PENDING
    )
]

EVM_DATA = (
    '{"id":"inv_01jgz0000000000000000000ab","object":"invoice","status":"new","additional_s'
    'tatus":"underpaid","amount":"12.5","amount_due":"7.5","amount_paid":"5","currency":"US'
    'DT","network":"eth","chain_id":31337,"address":"0x121212121212121212121212121212121212'
    '1212","payment_uri":"ethereum:0x5fbdb2315678afecb367f032d93f642f64180aa3@31337/transfe'
    'r?address=0x1212121212121212121212121212121212121212&uint256=7500000",'
    '"checkout_url":"https://pay.shop.example/i/inv_01jgz0000000000000000000ab","required_confir'
    'mations":2,"payment_tolerance":"0.5","order_id":"order-7","metadata":{"cart":[1,2.5,nu'
    'll],"note":"\\u00fc"},"redirect_url":"https://shop.example/thanks","expires_at":"2026-0'
    '1-02T03:09:05.123456Z","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03'
    ':09:05.123456Z","payments":[{"id":"pay_3","txid":"0xefefefefefefefefefefefefefefefefef'
    'efefefefefefefefefefefefefefef","log_index":3,"output":null,"amount":"5","currency":"U'
    'SDT","token_contract":"0x5fbdb2315678afecb367f032d93f642f64180aa3","from":"0xababababa'
    'bababababababababababababababab","block_number":100,"block_hash":"0xcdcdcdcdcdcdcdcdcd'
    'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","confirmations":1,"status":"pending","'
    'paid_at":"2026-01-02T03:04:05Z","created_at":"2026-01-02T03:04:05Z"},{"id":"pay_native'
    '","txid":"0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","log_ind'
    'ex":null,"output":"native","amount":"0.001","currency":"ETH","token_contract":null,"fr'
    'om":"0xabababababababababababababababababababab","block_number":101,"block_hash":"0xcd'
    'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","confirmations":1,"sta'
    'tus":"wrong_asset","paid_at":"2026-01-02T03:04:05Z","created_at":"2026-01-02T03:04:05Z'
    '"}]}'
)
EVM_PAYMENT = (
    '{"id":"pay_3","txid":"0xefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef'
    'ef","log_index":3,"output":null,"amount":"5","currency":"USDT","token_contract":"0x5fb'
    'db2315678afecb367f032d93f642f64180aa3","from":"0xababababababababababababababababababa'
    'bab","block_number":100,"block_hash":"0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd'
    'cdcdcdcdcdcdcdcdcd","confirmations":1,"status":"pending","paid_at":"2026-01-02T03:04:0'
    '5Z","created_at":"2026-01-02T03:04:05Z"}'
)
BTC_DATA = (
    '{"id":"inv_01jgz0000000000000000000ab","object":"invoice","status":"processing","addit'
    'ional_status":"none","amount":"1.5","amount_due":"0","amount_paid":"1.5","currency":"L'
    'TC","network":"ltc","chain_id":null,"address":"rltc1qcr8te4kr609gcawutmrza0j4xv80jy8z4'
    'mwqe0","payment_uri":"litecoin:rltc1qcr8te4kr609gcawutmrza0j4xv80jy8z4mwqe0?amount=1.5'
    '","checkout_url":null,"required_confirmations":2,"payment_tolerance":"0.5","order_id":"o'
    'rder-7","metadata"'
    ':{"cart":[1,2.5,null],"note":"\\u00fc"},"redirect_url":"https://shop.example/thanks","e'
    'xpires_at":"2026-01-02T03:09:05.123456Z","created_at":"2026-01-02T03:04:05Z","updated_'
    'at":"2026-01-02T03:09:05.123456Z","payments":[{"id":"pay_1","txid":"aaaaaaaaaaaaaaaaaa'
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","log_index":null,"output":"1","amount"'
    ':"1.5","currency":"LTC","token_contract":null,"from":null,"block_number":null,"block_h'
    'ash":null,"confirmations":0,"status":"pending","paid_at":"2026-01-02T03:04:05Z","creat'
    'ed_at":"2026-01-02T03:04:05Z"}]}'
)
BTC_PAYMENT = (
    '{"id":"pay_1","txid":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    '","log_index":null,"output":"1","amount":"1.5","currency":"LTC","token_contract":null,'
    '"from":null,"block_number":null,"block_hash":null,"confirmations":0,"status":"pending"'
    ',"paid_at":"2026-01-02T03:04:05Z","created_at":"2026-01-02T03:04:05Z"}'
)


def test_evm_invoice_and_payment_bytes_are_unchanged() -> None:
    document = invoice_document(EVM_INVOICE, EVM_PAYMENTS, ETH, EvmFamily(), checkout_base=PUBLIC)
    assert dumps(document) == EVM_DATA
    assert dumps(payment_document(EVM_PAYMENTS[0], ETH, EvmFamily())) == EVM_PAYMENT


def test_bitcoin_invoice_and_payment_bytes_are_unchanged() -> None:
    document = invoice_document(BTC_INVOICE, BTC_PAYMENTS, LTC, BitcoinFamily(), checkout_base=None)
    assert dumps(document) == BTC_DATA
    assert dumps(payment_document(BTC_PAYMENTS[0], LTC, BitcoinFamily())) == BTC_PAYMENT


def test_the_api_model_reads_back_what_events_carry() -> None:
    document = invoice_document(EVM_INVOICE, EVM_PAYMENTS, ETH, EvmFamily(), checkout_base=PUBLIC)
    again = InvoicePayload.model_validate(document).model_dump(mode="json", by_alias=True)
    assert dumps(again) == EVM_DATA
    schema = InvoicePayload.model_json_schema()
    statuses = schema["$defs"]["InvoiceStatus"]["enum"]
    assert statuses == ["new", "processing", "settled", "expired", "invalid"]
    assert "from" in schema["$defs"]["PaymentPayload"]["properties"]
