"""Set / revoke / read the Velocity User account's delegate (``update_user_delegate``, signed by
the owner; the default pubkey removes the delegate). Same rules as Drift: a delegate places,
cancels and modifies orders; it cannot withdraw or change the delegate (docs/DELEGATION.md)."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from execution.anchor_idl.codec import CodecError
from execution.signers.base import Signer
from execution.solana_send.landing import Submission
from execution.solana_send.rpc import RpcError
from execution.solana_send.sender import TxSender
from execution.solana_send.tx import SignedTx
from execution.velocity.chain import ChainError, VelocityChain
from execution.velocity.instructions import update_user_delegate
from execution.velocity.program import codec

NO_DELEGATE = Pubkey.default()


class DelegationError(Exception):
    pass


@dataclass(frozen=True)
class DelegateStatus:
    user: str
    authority: str
    delegate: str
    sub_account_id: int
    slot: int

    def to_json(self) -> dict[str, object]:
        return {
            "venue": "velocity",
            "user": self.user,
            "authority": self.authority,
            "delegate": "" if self.delegate == str(NO_DELEGATE) else self.delegate,
            "sub_account_id": self.sub_account_id,
            "slot": self.slot,
        }


async def delegate_status(chain: VelocityChain) -> DelegateStatus:
    slot, raw = await chain.rpc.get_account(chain.user_pubkey)
    if raw is None:
        raise ChainError(f"User account {chain.user_pubkey} not found (program {chain.program_id})")
    try:
        user = codec().decode_account_as("User", raw)
    except CodecError as e:
        raise ChainError(f"cannot decode User account {chain.user_pubkey}: {e}") from None
    return DelegateStatus(
        str(chain.user_pubkey),
        str(user["authority"]),
        str(user["delegate"]),
        int(user["sub_account_id"]),
        slot,
    )


async def set_delegate(chain: VelocityChain, sender: TxSender, owner: Signer, delegate: Pubkey) -> Submission:
    """Make ``delegate`` the account's delegate (``NO_DELEGATE`` revokes), signed by the owner, and
    follow it on the shared send path until the chain decides (never re-signed before proof)."""
    if owner.pubkey() != chain.authority:
        raise DelegationError(f"the delegate is changed by the owner {chain.authority}, not {owner.pubkey()}")
    ix = update_user_delegate(chain.program_id, chain.authority, chain.sub_account_id, delegate)
    fee = await sender.builder.priority_fee([chain.user_pubkey])

    async def sign() -> SignedTx:
        return await sender.builder.build([ix], owner, fee)

    async def probe() -> bool | None:
        try:
            return (await delegate_status(chain)).delegate == str(delegate)
        except (RpcError, ChainError):
            return None

    sub = sender.submit(await sign(), kind="delegate", market="-", refs=[str(delegate)], resign=sign,
                        probe=probe, address=chain.user_pubkey)
    return await sender.wait(sub)
