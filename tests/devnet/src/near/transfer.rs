//! The NEAR devnet's ICS-20 application: ibc-rs's fungible token transfer over the contract's [`Ledger`]. A
//! NEAR-native denomination is escrowed on send (in the channel's escrow account) and released on the way back; a
//! voucher `transfer/{channel}/{denom}` is minted on receive and burnt on send back; a send is refunded on
//! timeout and on an error acknowledgement. The contract's router ([`NearRouter`]) sends port `transfer` here, and
//! port `ping` to the Cosmos devnet's ping application, the one application on NEAR whose channels close.

use ibc::apps::transfer::context::{TokenTransferExecutionContext, TokenTransferValidationContext};
use ibc::apps::transfer::module as ics20;
use ibc::apps::transfer::types::error::TokenTransferError;
use ibc::apps::transfer::types::{Memo, PrefixedCoin, MODULE_ID_STR, VERSION};
use ibc::core::channel::types::acknowledgement::Acknowledgement;
use ibc::core::channel::types::channel::{Counterparty, Order};
use ibc::core::channel::types::error::ChannelError;
use ibc::core::channel::types::packet::Packet;
use ibc::core::channel::types::Version;
use ibc::core::host::types::error::HostError;
use ibc::core::host::types::identifiers::{ChannelId, ConnectionId, PortId};
use ibc::core::primitives::Signer;
use ibc::core::router::module::Module;
use ibc::core::router::router::Router;
use ibc::core::router::types::module::{ModuleExtras, ModuleId};
use near_primitives::types::AccountId;

use super::ledger::{escrow_account, Ledger};
use crate::app::ping::{self, PingModule};

/// The ledger denomination of an ICS-20 coin: its full trace (`transfer/channel-0/stake`), or the base denom of a
/// NEAR-native one (`wrap.devnet`). near-ibc names vouchers by token contracts instead (see docs/devnet.md).
pub fn ledger_denom(coin: &PrefixedCoin) -> String {
    coin.denom.to_string()
}

fn amount_of(coin: &PrefixedCoin) -> Result<u128, HostError> {
    coin.amount
        .to_string()
        .parse::<u128>()
        .map_err(|_| HostError::invalid_state(format!("amount {} exceeds u128", coin.amount)))
}

fn host_err(e: impl ToString) -> HostError {
    HostError::invalid_state(e.to_string())
}

fn app_err(e: TokenTransferError) -> ChannelError {
    ChannelError::AppSpecific {
        description: e.to_string(),
    }
}

/// The NEAR account a packet names. The refusal names neither the input nor the parser's reason: ibc-rs writes an
/// error acknowledgement as `{"error":"<text>"}` without escaping, so a quote in the text would make the
/// acknowledgement unreadable on the sending chain and its refund impossible.
fn account_of(signer: &Signer) -> Result<AccountId, HostError> {
    signer
        .as_ref()
        .parse::<AccountId>()
        .map_err(|_| HostError::invalid_state("the account is not a valid NEAR account id"))
}

/// ICS-20 over the contract's ledger.
#[derive(Clone, Debug)]
pub struct NearTransfer {
    ledger: Ledger,
    contract: AccountId,
}

impl NearTransfer {
    /// The transfer application of `contract`, moving tokens in `ledger`.
    pub fn new(ledger: Ledger, contract: AccountId) -> Self {
        Self { ledger, contract }
    }

    /// The ledger it moves tokens in.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn escrow(&self, port_id: &PortId, channel_id: &ChannelId) -> String {
        escrow_account(port_id.as_str(), channel_id.as_str(), &self.contract)
    }
}

impl TokenTransferValidationContext for NearTransfer {
    type AccountId = AccountId;

    fn sender_account(&self, sender: &Signer) -> Result<AccountId, HostError> {
        account_of(sender)
    }

    fn receiver_account(&self, receiver: &Signer) -> Result<AccountId, HostError> {
        account_of(receiver)
    }

    fn get_port(&self) -> Result<PortId, HostError> {
        Ok(PortId::transfer())
    }

    fn can_send_coins(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn can_receive_coins(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn escrow_coins_validate(
        &self,
        from_account: &AccountId,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        let (denom, amount) = (ledger_denom(coin), amount_of(coin)?);
        self.ledger
            .check_spendable(from_account.as_str(), &denom, amount)
            .and_then(|()| {
                self.ledger
                    .check_creditable(&self.escrow(port_id, channel_id), &denom, amount)
            })
            .map_err(host_err)
    }

    fn unescrow_coins_validate(
        &self,
        to_account: &AccountId,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        let (denom, amount) = (ledger_denom(coin), amount_of(coin)?);
        self.ledger
            .check_spendable(&self.escrow(port_id, channel_id), &denom, amount)
            .and_then(|()| {
                self.ledger
                    .check_creditable(to_account.as_str(), &denom, amount)
            })
            .map_err(host_err)
    }

    fn mint_coins_validate(
        &self,
        account: &AccountId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.ledger
            .check_creditable(account.as_str(), &ledger_denom(coin), amount_of(coin)?)
            .map_err(host_err)
    }

    fn burn_coins_validate(
        &self,
        account: &AccountId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.ledger
            .check_spendable(account.as_str(), &ledger_denom(coin), amount_of(coin)?)
            .map_err(host_err)
    }
}

impl TokenTransferExecutionContext for NearTransfer {
    fn escrow_coins_execute(
        &mut self,
        from_account: &AccountId,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.ledger
            .send(
                from_account.as_str(),
                &self.escrow(port_id, channel_id),
                &ledger_denom(coin),
                amount_of(coin)?,
            )
            .map_err(host_err)
    }

    fn unescrow_coins_execute(
        &mut self,
        to_account: &AccountId,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.ledger
            .send(
                &self.escrow(port_id, channel_id),
                to_account.as_str(),
                &ledger_denom(coin),
                amount_of(coin)?,
            )
            .map_err(host_err)
    }

    fn mint_coins_execute(
        &mut self,
        account: &AccountId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.ledger
            .mint(account.as_str(), &ledger_denom(coin), amount_of(coin)?)
            .map_err(host_err)
    }

    fn burn_coins_execute(
        &mut self,
        account: &AccountId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.ledger
            .burn(account.as_str(), &ledger_denom(coin), amount_of(coin)?)
            .map_err(host_err)
    }
}

impl Module for NearTransfer {
    fn on_chan_open_init_validate(
        &self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        version: &Version,
    ) -> Result<Version, ChannelError> {
        ics20::on_chan_open_init_validate(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            version,
        )
        .map_err(app_err)?;
        Ok(Version::new(VERSION.to_owned()))
    }

    fn on_chan_open_init_execute(
        &mut self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        ics20::on_chan_open_init_execute(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            version,
        )
        .map_err(app_err)
    }

    fn on_chan_open_try_validate(
        &self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<Version, ChannelError> {
        ics20::on_chan_open_try_validate(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            counterparty_version,
        )
        .map_err(app_err)?;
        Ok(Version::new(VERSION.to_owned()))
    }

    fn on_chan_open_try_execute(
        &mut self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        ics20::on_chan_open_try_execute(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            counterparty_version,
        )
        .map_err(app_err)
    }

    fn on_chan_open_ack_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty_version: &Version,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_open_ack_validate(self, port_id, channel_id, counterparty_version)
            .map_err(app_err)
    }

    fn on_chan_open_ack_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty_version: &Version,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_open_ack_execute(self, port_id, channel_id, counterparty_version)
            .map_err(app_err)
    }

    fn on_chan_open_confirm_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_open_confirm_validate(self, port_id, channel_id).map_err(app_err)
    }

    fn on_chan_open_confirm_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_open_confirm_execute(self, port_id, channel_id).map_err(app_err)
    }

    fn on_chan_close_init_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_close_init_validate(self, port_id, channel_id).map_err(app_err)
    }

    fn on_chan_close_init_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_close_init_execute(self, port_id, channel_id).map_err(app_err)
    }

    fn on_chan_close_confirm_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_close_confirm_validate(self, port_id, channel_id).map_err(app_err)
    }

    fn on_chan_close_confirm_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_close_confirm_execute(self, port_id, channel_id).map_err(app_err)
    }

    fn on_recv_packet_execute(
        &mut self,
        packet: &Packet,
        _relayer: &Signer,
    ) -> (ModuleExtras, Option<Acknowledgement>) {
        let (extras, ack) = ics20::on_recv_packet_execute(self, packet);
        (extras, Some(ack))
    }

    fn on_acknowledgement_packet_validate(
        &self,
        packet: &Packet,
        acknowledgement: &Acknowledgement,
        relayer: &Signer,
    ) -> Result<(), ChannelError> {
        ics20::on_acknowledgement_packet_validate(self, packet, acknowledgement, relayer)
            .map_err(app_err)
    }

    fn on_acknowledgement_packet_execute(
        &mut self,
        packet: &Packet,
        acknowledgement: &Acknowledgement,
        relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        let (extras, res) =
            ics20::on_acknowledgement_packet_execute(self, packet, acknowledgement, relayer);
        (extras, res.map_err(app_err))
    }

    fn on_timeout_packet_validate(
        &self,
        packet: &Packet,
        relayer: &Signer,
    ) -> Result<(), ChannelError> {
        ics20::on_timeout_packet_validate(self, packet, relayer).map_err(app_err)
    }

    fn on_timeout_packet_execute(
        &mut self,
        packet: &Packet,
        relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        let (extras, res) = ics20::on_timeout_packet_execute(self, packet, relayer);
        (extras, res.map_err(app_err))
    }
}

/// The contract's IBC applications: port `transfer` to [`NearTransfer`], port `ping` to [`PingModule`].
#[derive(Debug)]
pub struct NearRouter {
    /// The ICS-20 application.
    pub transfer: NearTransfer,
    /// The ping application (version `ping-1`), shared with the Cosmos devnet so a ping channel opens between
    /// them; unlike ICS-20 it lets either end close its channels.
    pub ping: PingModule,
}

impl Router for NearRouter {
    fn get_route(&self, module_id: &ModuleId) -> Option<&dyn Module> {
        if *module_id == ModuleId::new(MODULE_ID_STR.to_owned()) {
            Some(&self.transfer as &dyn Module)
        } else if *module_id == ModuleId::new(ping::MODULE_ID.to_owned()) {
            Some(&self.ping as &dyn Module)
        } else {
            None
        }
    }

    fn get_route_mut(&mut self, module_id: &ModuleId) -> Option<&mut dyn Module> {
        if *module_id == ModuleId::new(MODULE_ID_STR.to_owned()) {
            Some(&mut self.transfer as &mut dyn Module)
        } else if *module_id == ModuleId::new(ping::MODULE_ID.to_owned()) {
            Some(&mut self.ping as &mut dyn Module)
        } else {
            None
        }
    }

    fn lookup_module(&self, port_id: &PortId) -> Option<ModuleId> {
        if port_id == &PortId::transfer() {
            Some(ModuleId::new(MODULE_ID_STR.to_owned()))
        } else if port_id.as_str() == ping::PORT {
            Some(ModuleId::new(ping::MODULE_ID.to_owned()))
        } else {
            None
        }
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
