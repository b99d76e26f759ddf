//! How a supervisor learns that a child died, including by panic. actix drops an actor whose handler
//! panicked without calling `stopped`, so each child carries a guard whose `Drop` reports the exit; only an
//! orderly stop marks it clean. The panic message is captured by a process-wide hook, per thread.

use std::cell::RefCell;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use relayd_messages::{ActorKind, ChildExited};

use crate::meter::MeteredRecipient;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();
#[cfg(feature = "fault-injection")]
static FAULTS: AtomicBool = AtomicBool::new(false);
/// How every injected panic's message begins.
const INJECTED: &str = "injected panic in ";

/// Installs the panic hook that records panic messages for exit reports (keeps the previous hook's output).
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            // A drill's panic is expected: one line says where it hit, without a backtrace burying the
            // output that matters.
            let drill = fault_injection_enabled() && message.starts_with(INJECTED);
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            if drill {
                eprintln!("{message}{at} (fault injection)");
            } else {
                previous(info);
            }
        }));
    });
}

/// Allows [`relayd_messages::InjectPanic`] to take effect (tests and drills only: only with the
/// `fault-injection` feature, which the shipped binary does not enable).
#[cfg(feature = "fault-injection")]
pub fn enable_fault_injection(on: bool) {
    FAULTS.store(on, Ordering::SeqCst);
}

/// Whether injected panics take effect (never without the `fault-injection` feature).
pub fn fault_injection_enabled() -> bool {
    #[cfg(feature = "fault-injection")]
    {
        FAULTS.load(Ordering::SeqCst)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        false
    }
}

/// Panics if fault injection is enabled; called by every actor's `InjectPanic` handler (whose location the
/// panic reports).
#[track_caller]
pub fn injected_panic(kind: ActorKind) {
    if fault_injection_enabled() {
        panic!("{INJECTED}{kind:?}");
    }
    tracing::warn!(
        ?kind,
        "ignored an injected panic: fault injection is disabled"
    );
}

/// Reports its actor's exit to the supervisor when dropped.
pub struct ExitGuard {
    kind: ActorKind,
    generation: u64,
    notify: Option<MeteredRecipient<ChildExited>>,
    clean: bool,
}

impl ExitGuard {
    /// A guard for the `generation`-th incarnation of a `kind` child, reporting to `notify`.
    pub fn new(
        kind: ActorKind,
        generation: u64,
        notify: impl Into<MeteredRecipient<ChildExited>>,
    ) -> Self {
        install_panic_hook();
        Self {
            kind,
            generation,
            notify: Some(notify.into()),
            clean: false,
        }
    }

    /// Marks the exit as orderly (call from `Actor::stopped`). actix also runs `stopped` while it drops the
    /// context of an actor whose handler panicked; the panic recorded on this thread tells the two apart.
    pub fn stopped_cleanly(&mut self) {
        self.clean = LAST_PANIC.with(|p| p.borrow().is_none());
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = if self.clean {
            None
        } else {
            Some(
                LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "stopped without an orderly shutdown".to_owned()),
            )
        };
        if let Some(notify) = self.notify.take() {
            // An exit must never be dropped for a full mailbox, so this bypasses the mailbox limit; exits are
            // rare. If the supervisor is itself gone (shutdown), there is no one to tell.
            notify.do_send(ChildExited {
                kind: self.kind,
                generation: self.generation,
                clean: self.clean,
                reason,
            });
        }
    }
}

/// Takes exit reports and drops them: the supervisor of an actor a test drives on its own.
#[cfg(test)]
struct DropExits;

#[cfg(test)]
impl actix::Actor for DropExits {
    type Context = actix::Context<Self>;
}

#[cfg(test)]
impl actix::Handler<ChildExited> for DropExits {
    type Result = ();
    fn handle(&mut self, _: ChildExited, _: &mut Self::Context) {}
}

#[cfg(test)]
impl ExitGuard {
    /// A first-generation guard for a `kind` actor whose exit nobody watches (call inside an actix system).
    pub(crate) fn unwatched(kind: ActorKind) -> Self {
        use actix::Actor;
        Self::new(kind, 1, DropExits.start().recipient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, ActorContext, Context, Handler, Message};
    use tokio::sync::mpsc;

    /// Forwards exit reports to the test.
    struct Collector(mpsc::UnboundedSender<ChildExited>);
    impl Actor for Collector {
        type Context = Context<Self>;
    }
    impl Handler<ChildExited> for Collector {
        type Result = ();
        fn handle(&mut self, msg: ChildExited, _: &mut Self::Context) {
            let _ = self.0.send(msg);
        }
    }

    struct Child(ExitGuard);
    impl Actor for Child {
        type Context = Context<Self>;
        fn stopped(&mut self, _: &mut Self::Context) {
            self.0.stopped_cleanly();
        }
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    enum Do {
        Panic,
        Stop,
    }
    impl Handler<Do> for Child {
        type Result = ();
        fn handle(&mut self, msg: Do, ctx: &mut Self::Context) {
            match msg {
                Do::Panic => panic!("child broke its invariant"),
                Do::Stop => ctx.stop(),
            }
        }
    }

    #[actix_rt::test]
    async fn a_panic_is_reported_as_a_failure_with_its_message_and_a_stop_as_clean() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let collector = Collector(tx).start().recipient();

        let child = Child(ExitGuard::new(ActorKind::Querier, 1, collector.clone())).start();
        child.do_send(Do::Panic);
        let exit = rx.recv().await.expect("the panicked child reports");
        assert_eq!((exit.kind, exit.generation), (ActorKind::Querier, 1));
        assert!(!exit.clean, "a panic is not an orderly stop");
        let reason = exit.reason.expect("a reason");
        assert!(reason.contains("child broke its invariant"), "{reason}");

        let child = Child(ExitGuard::new(ActorKind::Querier, 2, collector)).start();
        child.do_send(Do::Stop);
        let exit = rx.recv().await.expect("the stopped child reports");
        assert_eq!(exit.generation, 2);
        assert!(exit.clean && exit.reason.is_none(), "{exit:?}");
    }
}
