//! Mailbox meters: actix does not tell how many messages wait in an actor's mailbox, so relayd counts them
//! itself, at the senders of an actor's work (each message put in the mailbox) and in its handlers (each message
//! taken out), for the admin API's `/actors` and the `relayd_actor_mailbox_depth` gauge.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::dev::{SendError, ToEnvelope};
use actix::{Actor, Addr, Handler, MailboxError, Message, Recipient};
use relayd_messages::ActorLoad;

#[derive(Debug, Default)]
struct Counts {
    queued: AtomicU64,
    taken: AtomicU64,
    handled: AtomicU64,
    waiting: AtomicU64,
}

/// One actor's counters, shared by its senders, its handlers and whoever reports them. Clones count together.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Counts>);

impl Meter {
    /// A meter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sender put a message in the actor's mailbox.
    pub fn queued(&self) {
        self.0.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// A message counted by [`Meter::queued`] never reached the actor (its mailbox was closed, or a forwarder had
    /// no actor to give it to).
    pub fn unqueued(&self) {
        self.0.taken.fetch_add(1, Ordering::Relaxed);
    }

    /// A handler took a message its sender counted.
    pub fn took(&self) {
        self.0.taken.fetch_add(1, Ordering::Relaxed);
        self.0.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// A handler took a message nobody counted when sending: a request answered at once (the admin API's, an
    /// embedding host's), which is handled but never counted as waiting.
    pub fn handled(&self) {
        self.0.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// Work waiting for the actor outside its mailbox (a monitor's blocks read from the node), added to the
    /// depth as it stands now.
    pub fn set_waiting(&self, n: u64) {
        self.0.waiting.store(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn load(&self) -> ActorLoad {
        let queued = self.0.queued.load(Ordering::Relaxed);
        let taken = self.0.taken.load(Ordering::Relaxed);
        ActorLoad {
            mailbox_depth: queued.saturating_sub(taken) + self.0.waiting.load(Ordering::Relaxed),
            messages_handled: self.0.handled.load(Ordering::Relaxed),
        }
    }
}

/// A recipient whose sends count on its actor's meter; the actor's handler of `M` calls [`Meter::took`].
pub struct MeteredRecipient<M: Message + Send>
where
    M::Result: Send,
{
    inner: Recipient<M>,
    meter: Meter,
}

impl<M: Message + Send> Clone for MeteredRecipient<M>
where
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl<M: Message + Send + 'static> From<Recipient<M>> for MeteredRecipient<M>
where
    M::Result: Send,
{
    /// A recipient counted on a meter of its own (an actor nobody reports on, as in tests).
    fn from(inner: Recipient<M>) -> Self {
        Self::new(inner, Meter::new())
    }
}

impl<M: Message + Send + 'static> MeteredRecipient<M>
where
    M::Result: Send,
{
    /// `inner`, counted on `meter`.
    pub fn new(inner: Recipient<M>, meter: Meter) -> Self {
        Self { inner, meter }
    }

    /// Sends past the mailbox limit, as [`Recipient::do_send`].
    pub fn do_send(&self, msg: M) {
        if self.inner.connected() {
            self.meter.queued();
            self.inner.do_send(msg);
        }
    }

    /// Sends unless the mailbox is full or closed, as [`Recipient::try_send`].
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        self.inner.try_send(msg)?;
        self.meter.queued();
        Ok(())
    }

    /// Sends and waits for the answer, as [`Recipient::send`].
    pub fn send(&self, msg: M) -> impl Future<Output = Result<M::Result, MailboxError>> + 'static {
        self.meter.queued();
        let meter = self.meter.clone();
        let request = self.inner.send(msg);
        async move {
            let answer = request.await;
            if matches!(answer, Err(MailboxError::Closed)) {
                meter.unqueued();
            }
            answer
        }
    }

    /// Whether the actor is still there.
    pub fn connected(&self) -> bool {
        self.inner.connected()
    }
}

/// An actor's address whose sends count on its meter (the coordinator's handle on its builders).
pub struct MeteredAddr<A: Actor> {
    addr: Addr<A>,
    meter: Meter,
}

impl<A: Actor> Clone for MeteredAddr<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl<A: Actor> MeteredAddr<A> {
    /// `addr`, counted on `meter`.
    pub fn new(addr: Addr<A>, meter: Meter) -> Self {
        Self { addr, meter }
    }

    /// The actor's meter.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Sends past the mailbox limit, as [`Addr::do_send`].
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        if self.addr.connected() {
            self.meter.queued();
            self.addr.do_send(msg);
        }
    }

    /// Sends unless the mailbox is full or closed, as [`Addr::try_send`].
    pub fn try_send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.addr.try_send(msg)?;
        self.meter.queued();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use actix::{Actor, Context, Handler, Message};

    use super::{Meter, MeteredAddr, MeteredRecipient};

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Work;

    #[derive(Message)]
    #[rtype(result = "u64")]
    struct Ask;

    /// Holds every `Work` until asked, so the mailbox fills while the test looks.
    struct Slow {
        meter: Meter,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    }

    impl Actor for Slow {
        type Context = Context<Self>;
    }

    impl Handler<Work> for Slow {
        type Result = ();

        fn handle(&mut self, _: Work, _: &mut Self::Context) {
            self.meter.took();
            if let Some(gate) = self.gate.take() {
                // Blocks the actor's thread on purpose: the messages behind it stay in the mailbox.
                let _ = gate.recv();
            }
        }
    }

    impl Handler<Ask> for Slow {
        type Result = u64;

        fn handle(&mut self, _: Ask, _: &mut Self::Context) -> u64 {
            self.meter.handled();
            self.meter.load().messages_handled
        }
    }

    #[test]
    fn depth_is_what_was_sent_and_not_taken() {
        let meter = Meter::new();
        for _ in 0..5 {
            meter.queued();
        }
        meter.took();
        meter.took();
        meter.handled();
        meter.set_waiting(4);
        let load = meter.load();
        assert_eq!((load.mailbox_depth, load.messages_handled), (7, 3));
        meter.set_waiting(0);
        assert_eq!(meter.load().mailbox_depth, 3);
    }

    #[test]
    fn a_live_actor_s_mailbox_is_counted_until_it_drains() {
        let system = actix::System::new();
        system.block_on(async {
            let (open, gate) = std::sync::mpsc::channel();
            let arbiter = actix::Arbiter::new();
            let meter = Meter::new();
            let m = meter.clone();
            let addr = Slow::start_in_arbiter(&arbiter.handle(), move |_| Slow {
                meter: m,
                gate: Some(gate),
            });
            let metered = MeteredAddr::new(addr.clone(), meter.clone());
            let recipient = MeteredRecipient::new(addr.clone().recipient::<Work>(), meter.clone());
            for _ in 0..3 {
                metered.try_send(Work).unwrap();
            }
            metered.do_send(Work);
            recipient.do_send(Work);
            // The first is taken and blocks its handler; four wait behind it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while meter.load().messages_handled < 1 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(meter.load().mailbox_depth, 4);
            open.send(()).unwrap();
            let handled = addr.send(Ask).await.unwrap();
            assert_eq!(handled, 6);
            assert_eq!(meter.load().mailbox_depth, 0);
            arbiter.stop();
        });
    }
}
