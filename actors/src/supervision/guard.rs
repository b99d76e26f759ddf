//! How a supervisor learns that a child died, including by panic. actix drops an actor whose handler
//! panicked without calling `stopped`, so each child carries a guard whose `Drop` reports the exit; only an
//! orderly stop marks it clean. The panic message is captured by a process-wide hook, per thread.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use actix::Recipient;
use relayd_messages::{ActorKind, ChildExited};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();
static FAULTS: AtomicBool = AtomicBool::new(false);

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
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// Allows [`relayd_messages::InjectPanic`] to take effect (tests and drills only).
pub fn enable_fault_injection(on: bool) {
    FAULTS.store(on, Ordering::SeqCst);
}

/// Whether injected panics take effect.
pub fn fault_injection_enabled() -> bool {
    FAULTS.load(Ordering::SeqCst)
}

/// Panics if fault injection is enabled; called by every actor's `InjectPanic` handler.
pub fn injected_panic(kind: ActorKind) {
    if fault_injection_enabled() {
        panic!("injected panic in {kind:?}");
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
    notify: Option<Recipient<ChildExited>>,
    clean: bool,
}

impl ExitGuard {
    /// A guard for the `generation`-th incarnation of a `kind` child.
    pub fn new(kind: ActorKind, generation: u64, notify: Recipient<ChildExited>) -> Self {
        install_panic_hook();
        Self {
            kind,
            generation,
            notify: Some(notify),
            clean: false,
        }
    }

    /// Marks the exit as orderly (call from `Actor::stopped`).
    pub fn stopped_cleanly(&mut self) {
        self.clean = true;
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
