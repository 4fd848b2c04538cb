//! Who owns `org.freedesktop.login1`: the unique name logind's signals are matched on.

use futures_util::StreamExt;
use zbus::message::Type;
use zbus::names::OwnedUniqueName;
use zbus::{Connection, MatchRule, MessageStream};

use super::api::LOGIN1;

/// The bus daemon's own name: only it sends as `org.freedesktop.DBus` (it writes every other
/// sender's unique name into the messages it routes).
const BUS: &str = "org.freedesktop.DBus";

/// Who owns `org.freedesktop.login1`, kept current by NameOwnerChanged.
pub(super) struct Owner {
    changes: MessageStream,
    /// logind's unique name, while it is on the bus.
    pub(super) name: Option<OwnedUniqueName>,
}

impl Owner {
    /// Subscribe first, then ask: an owner that appears in between is not missed.
    pub(super) async fn watch(conn: &Connection) -> zbus::Result<Owner> {
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .sender(BUS)
            .path("/org/freedesktop/DBus")
            .interface(BUS)
            .member("NameOwnerChanged")
            .add_arg(LOGIN1)
            .build()?;
        let changes = MessageStream::for_match_rule(rule, conn, None).await?;
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let name = match dbus.get_name_owner(LOGIN1.try_into()?).await {
            Ok(n) => Some(n),
            Err(zbus::fdo::Error::NameHasNoOwner(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Owner { changes, name })
    }

    /// Wait for the next change of owner; `None` when the bus connection is gone. A copy
    /// another peer sent straight to the agent (any peer may send any signal) carries that
    /// peer's unique name as sender: zbus's match already drops it (`org.freedesktop.DBus`
    /// is the bus's unique name), and it is checked again here, since taking a forger for
    /// logind would mute logind.
    pub(super) async fn changed(&mut self) -> Option<()> {
        loop {
            let Ok(msg) = self.changes.next().await? else {
                continue;
            };
            if msg.header().sender().map(|s| s.as_str()) != Some(BUS) {
                continue;
            }
            let Some(change) = zbus::fdo::NameOwnerChanged::from_message(msg) else {
                continue;
            };
            let Ok(args) = change.args() else { continue };
            self.name = args.new_owner().as_ref().map(|n| n.to_owned().into());
            return Some(());
        }
    }
}
