"""The local Solana JSON-RPC server answers solana-py's AsyncClient in the real wire format."""

from __future__ import annotations

import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.types import MemcmpOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from tests.solana_rpc import LocalSolanaRpc

PROGRAM = Pubkey.new_unique()


async def test_accounts_filters_send_and_faults() -> None:
    async with LocalSolanaRpc() as rpc:
        a, b = Pubkey.new_unique(), Pubkey.new_unique()
        rpc.set_account(str(a), str(PROGRAM), b"\x01\x02" + bytes(30))
        rpc.set_account(str(b), str(PROGRAM), b"\x01\x03" + bytes(40))
        client = AsyncClient(rpc.url)
        try:
            info = await client.get_account_info(a)
            assert info.value is not None and info.value.data[:2] == b"\x01\x02"
            assert info.value.owner == PROGRAM
            multi = await client.get_multiple_accounts([a, b, Pubkey.new_unique()])
            assert [x is not None for x in multi.value] == [True, True, False]
            got = await client.get_program_accounts(
                PROGRAM, encoding="base64", filters=[MemcmpOpts(offset=1, bytes="4")]  # b58 "4" = 0x03
            )
            assert [str(x.pubkey) for x in got.value] == [str(b)]
            sized = await client.get_program_accounts(PROGRAM, encoding="base64", filters=[32])
            assert [str(x.pubkey) for x in sized.value] == [str(a)]

            payer = Keypair()
            bh = (await client.get_latest_blockhash()).value.blockhash
            ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=a, lamports=1))
            tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], bh), [payer])
            sig = (await client.send_raw_transaction(bytes(tx))).value
            assert str(sig) == str(tx.signatures[0]) == rpc.sent[0].signature
            st = (await client.get_signature_statuses([sig])).value[0]
            assert st is not None and str(st.confirmation_status) == "TransactionConfirmationStatus.Confirmed"
            assert isinstance(bh, Hash)

            rpc.confirm = "never"
            assert (await client.get_signature_statuses([sig])).value == [None]

            rpc.fault("http", 429)
            with pytest.raises(SolanaRpcException):
                await client.get_slot()
            assert (await client.get_slot()).value == rpc.slot
        finally:
            await client.close()
