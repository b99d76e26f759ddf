//! The ICS-20 fungible token transfer application backed by the real bank (escrow, unescrow, voucher mint and
//! burn, refunds), and the IBC router that sends port `transfer` to it.

use ibc::apps::transfer::context::{TokenTransferExecutionContext, TokenTransferValidationContext};
use ibc::apps::transfer::module as ics20;
use ibc::apps::transfer::types::error::TokenTransferError;
use ibc::apps::transfer::types::{Memo, PrefixedCoin, PrefixedDenom, MODULE_ID_STR, VERSION};
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
use ibc::cosmos_host::utils::cosmos_adr028_escrow_address;
use sha2::{Digest, Sha256};

use super::auth::{address_of, validate_address};
use super::bank::Bank;
use super::ping::{self, PingModule};

/// The bank denomination of an ICS-20 denom: the base denom when it has no trace, else `ibc/{SHA256(path)}` in
/// upper-case hex, as ibc-go names vouchers.
pub fn bank_denom(denom: &PrefixedDenom) -> String {
    if denom.trace_path.is_empty() {
        denom.base_denom.to_string()
    } else {
        format!("ibc/{}", denom_hash(denom))
    }
}

fn denom_hash(denom: &PrefixedDenom) -> String {
    hex::encode_upper(Sha256::digest(denom.to_string().as_bytes()))
}

/// The bech32 escrow account of a transfer channel (ADR-028, as ibc-go derives it).
pub fn escrow_address(port_id: &PortId, channel_id: &ChannelId) -> String {
    address_of(&cosmos_adr028_escrow_address(port_id, channel_id))
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

/// ICS-20 over the chain's bank.
#[derive(Clone, Debug)]
pub struct TransferModule {
    bank: Bank,
}

impl TransferModule {
    /// A transfer module moving coins in `bank`.
    pub fn new(bank: Bank) -> Self {
        Self { bank }
    }
}

impl TokenTransferValidationContext for TransferModule {
    type AccountId = String;

    fn sender_account(&self, sender: &Signer) -> Result<String, HostError> {
        validate_address(sender.as_ref()).map_err(host_err)?;
        Ok(sender.as_ref().to_owned())
    }

    fn receiver_account(&self, receiver: &Signer) -> Result<String, HostError> {
        validate_address(receiver.as_ref()).map_err(host_err)?;
        Ok(receiver.as_ref().to_owned())
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
        from_account: &String,
        _port_id: &PortId,
        _channel_id: &ChannelId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.bank
            .check_spendable(from_account, &bank_denom(&coin.denom), amount_of(coin)?)
            .map_err(host_err)
    }

    fn unescrow_coins_validate(
        &self,
        _to_account: &String,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.bank
            .check_spendable(
                &escrow_address(port_id, channel_id),
                &bank_denom(&coin.denom),
                amount_of(coin)?,
            )
            .map_err(host_err)
    }

    fn mint_coins_validate(&self, account: &String, coin: &PrefixedCoin) -> Result<(), HostError> {
        let amount = amount_of(coin)?;
        self.bank
            .balance(account, &bank_denom(&coin.denom))
            .checked_add(amount)
            .map(|_| ())
            .ok_or_else(|| host_err("voucher balance overflow"))
    }

    fn burn_coins_validate(
        &self,
        account: &String,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.bank
            .check_spendable(account, &bank_denom(&coin.denom), amount_of(coin)?)
            .map_err(host_err)
    }

    fn denom_hash_string(&self, denom: &PrefixedDenom) -> Option<String> {
        (!denom.trace_path.is_empty()).then(|| denom_hash(denom))
    }
}

impl TokenTransferExecutionContext for TransferModule {
    fn escrow_coins_execute(
        &mut self,
        from_account: &String,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.bank
            .send(
                from_account,
                &escrow_address(port_id, channel_id),
                &bank_denom(&coin.denom),
                amount_of(coin)?,
            )
            .map_err(host_err)
    }

    fn unescrow_coins_execute(
        &mut self,
        to_account: &String,
        port_id: &PortId,
        channel_id: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.bank
            .send(
                &escrow_address(port_id, channel_id),
                to_account,
                &bank_denom(&coin.denom),
                amount_of(coin)?,
            )
            .map_err(host_err)
    }

    fn mint_coins_execute(
        &mut self,
        account: &String,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        let denom = bank_denom(&coin.denom);
        if let Some(hash) = denom.strip_prefix("ibc/") {
            self.bank.set_denom_trace(hash, &coin.denom.to_string());
        }
        self.bank
            .mint(account, &denom, amount_of(coin)?)
            .map_err(host_err)
    }

    fn burn_coins_execute(
        &mut self,
        account: &String,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.bank
            .burn(account, &bank_denom(&coin.denom), amount_of(coin)?)
            .map_err(host_err)
    }
}

impl Module for TransferModule {
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

/// ICS-26 routing: port `transfer` to ICS-20, port `ping` to the ping application.
#[derive(Debug)]
pub struct AppRouter {
    /// The ICS-20 module.
    pub transfer: TransferModule,
    /// The ping application (ordered channels, closable channels).
    pub ping: PingModule,
}

impl Router for AppRouter {
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
