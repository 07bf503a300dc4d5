//! A provider scripted per call, with a ledger of calls and effects.
//!
//! [`ScriptedProvider`] stands in for an external system in tests. Each call consumes the
//! next [`Behavior`] of its script (answer, fail retryably or fatally, answer late, hang,
//! panic, or succeed and lose the reply); when the script runs out it behaves by default.
//! Like a real provider it applies the effect of a request at most once per idempotency key:
//! a repeated key records no new effect and gets the first answer again.
//!
//! The ledger is what tests assert on: every raw call ([`calls`](ScriptedProvider::calls),
//! [`duplicate_calls`](ScriptedProvider::duplicate_calls)) and every applied effect
//! ([`effects`](ScriptedProvider::effects), [`effects_per_key`](ScriptedProvider::effects_per_key),
//! [`effects_for`](ScriptedProvider::effects_for)). Delays and hangs wait on the injected
//! [`Clock`], so on a [`ManualClock`](crate::clock::ManualClock) they run in virtual time.
//!
//! Clones share the script and the ledger: register one with the engine and keep another for
//! scripting and assertions.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use orderflow::clock::{ManualClock, Timestamp};
//! use orderflow::document::{Order, OrderLine, RecordId};
//! use orderflow::engine::Config;
//! use orderflow::flow::{ActionStep, Flow, RetryPolicy};
//! use orderflow::provider::RequestKind;
//! use orderflow::testing::provider::{Behavior, ScriptedProvider};
//! use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore, Outcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = ManualClock::new(Timestamp::from_millis(0));
//! // Billing applies the first invoice but its reply is lost; the retry must not bill twice.
//! let billing = ScriptedProvider::new("Billing", clock.clone())
//!     .offering(&[RequestKind::SendInvoice])
//!     .then(Behavior::LostReply);
//! let engine = Engine::builder()
//!     .store(MemoryStore::new())
//!     .clock(clock.clone())
//!     .provider(billing.clone())
//!     .config(Config::default().with_retry(RetryPolicy::new(3, Duration::from_millis(1_000))))
//!     .build()
//!     .await?;
//!
//! let flow = Flow::builder("Bill")
//!     .steps(|s| {
//!         s.action(
//!             ActionStep::new("Invoice", ActionKind::SendToInvoice)
//!                 .input_event(EventKind::NEW_ORDER)
//!                 .provider("Billing"),
//!         )
//!     })
//!     .build()?;
//! engine.create_flow(flow).await?;
//! engine.publish("Bill").await?;
//!
//! let order = Order::new("SO-1").with_line(OrderLine::new("1", "Surface Pen", 1));
//! engine.submit(Event::new_order(order)).await?;
//! assert_eq!(billing.effects().len(), 1, "billed, though the engine saw a failure");
//!
//! // The retry waits out its backoff in virtual time, then calls again with the same key.
//! clock.advance(Duration::from_secs(1));
//! engine.run_due().await?;
//!
//! let journey = engine.journey("SO-1").await?;
//! assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
//! let calls = billing.calls();
//! assert_eq!(calls.len(), 2);
//! assert_eq!(calls[0].behavior, Behavior::LostReply);
//! assert_eq!(calls[1].behavior, Behavior::Ok);
//! assert_eq!(calls[1].at, Timestamp::from_millis(1_000));
//! assert_eq!(billing.duplicate_calls(), 1, "the retry reused the key");
//! assert_eq!(billing.effects().len(), 1, "billed once");
//! assert!(billing.effects_per_key().values().all(|&n| n == 1));
//! assert_eq!(billing.effects_for("SO-1", RequestKind::SendInvoice, &RecordId::Order), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, Timestamp};
use crate::document::{Order, RecordId};
use crate::provider::{
    Allocation, CallContext, FulfillmentPlan, PlannedLine, Provider, ProviderError, Reply, Request,
    RequestKind,
};

/// What a [`ScriptedProvider`] does on one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Behavior {
    /// Applies the effect and answers.
    Ok,
    /// Applies nothing; fails with a retryable
    /// [`Unavailable`](crate::provider::ProviderErrorKind::Unavailable) error.
    Retryable(String),
    /// Applies nothing; fails with a permanent
    /// [`Rejected`](crate::provider::ProviderErrorKind::Rejected) error.
    Fatal(String),
    /// Waits this long on the clock, then behaves as [`Ok`](Self::Ok). A call abandoned
    /// while waiting applies nothing.
    Delay(Duration),
    /// Applies the effect at once, waits this long on the clock, then answers: a timeout
    /// whose request succeeded anyway.
    Late(Duration),
    /// Never answers and applies nothing.
    Hang,
    /// Panics inside the call with this message, applying nothing.
    Panic(String),
    /// Applies the effect, then fails with a retryable
    /// [`Unavailable`](crate::provider::ProviderErrorKind::Unavailable) error: a success
    /// whose reply was lost.
    LostReply,
}

/// One call a [`ScriptedProvider`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// The idempotency key.
    pub idempotency_key: String,
    /// The attempt number, 1 for the first.
    pub attempt: u32,
    /// The request kind.
    pub kind: RequestKind,
    /// The order.
    pub order: String,
    /// The fulfillment order for [`RequestKind::SendFulfillmentOrder`], the order otherwise.
    pub record: RecordId,
    /// What the provider did.
    pub behavior: Behavior,
    /// When the call started, on the provider's clock.
    pub at: Timestamp,
}

/// An effect a [`ScriptedProvider`] applied: the first successful application of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Effect {
    /// The idempotency key.
    pub idempotency_key: String,
    /// The request kind.
    pub kind: RequestKind,
    /// The order.
    pub order: String,
    /// The fulfillment order for [`RequestKind::SendFulfillmentOrder`], the order otherwise.
    pub record: RecordId,
    /// When it was applied, on the provider's clock.
    pub at: Timestamp,
}

type Planner = Arc<dyn Fn(&Order) -> FulfillmentPlan + Send + Sync>;

/// A fake provider scripted per call, with a ledger. See the [module docs](self).
///
/// Offers every [`RequestKind`] unless [narrowed](Self::offering). Answers
/// [`Reply::Done`], except fulfillment determination, which answers a plan sourcing every
/// line fully from one source (the provider's name unless [set](Self::sourcing_from)) or
/// the plan of a [planner](Self::planning).
///
/// Scripting methods take `&self` and return a handle to the same provider, so they chain
/// when building one and work as well on a clone kept after registering it.
#[derive(Clone)]
pub struct ScriptedProvider {
    name: String,
    offers: Vec<RequestKind>,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

struct State {
    queue: VecDeque<Behavior>,
    by_key: Vec<(String, VecDeque<Behavior>)>,
    default: Behavior,
    source: String,
    planner: Option<Planner>,
    calls: Vec<Call>,
    effects: Vec<Effect>,
    /// The first answer per applied key, repeated to later calls with that key.
    replies: HashMap<String, Reply>,
    /// Calls yield to the executor before and after applying their effect.
    yielding: bool,
}

impl State {
    /// The behaviour for a call: the first key script whose pattern the key contains and
    /// that has one left, else the global script, else the default.
    fn next(&mut self, key: &str) -> Behavior {
        for (pattern, queue) in &mut self.by_key {
            if key.contains(pattern.as_str()) {
                if let Some(behavior) = queue.pop_front() {
                    return behavior;
                }
            }
        }
        self.queue
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}

const ALL_KINDS: [RequestKind; 5] = [
    RequestKind::DetermineFulfillment,
    RequestKind::SendFulfillmentOrder,
    RequestKind::SendToErp,
    RequestKind::SendInvoice,
    RequestKind::Custom,
];

impl ScriptedProvider {
    /// A provider named `name` offering every request kind, waiting on `clock`, answering
    /// [`Behavior::Ok`] until scripted otherwise.
    ///
    /// The clock is taken as [`EngineBuilder::clock`](crate::EngineBuilder::clock) takes it:
    /// any [`Clock`], such as a [`ManualClock`](crate::clock::ManualClock) clone or the
    /// engine's own [`Engine::clock`](crate::Engine::clock) (an `Arc<dyn Clock>`).
    pub fn new(name: impl Into<String>, clock: impl Clock) -> Self {
        let name = name.into();
        Self {
            offers: ALL_KINDS.to_vec(),
            clock: Arc::new(clock),
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                by_key: Vec::new(),
                default: Behavior::Ok,
                source: name.clone(),
                planner: None,
                calls: Vec::new(),
                effects: Vec::new(),
                replies: HashMap::new(),
                yielding: false,
            })),
            name,
        }
    }

    /// Makes every call yield to the executor (return `Pending` once, waking itself) before
    /// it applies its effect and again before it answers, as a provider across a network
    /// does: two points where the engine's future can be dropped — before the effect, and
    /// after it with the reply lost.
    pub fn yielding(&self, on: bool) -> Self {
        self.lock().yielding = on;
        self.clone()
    }

    /// Offers only these request kinds (this handle and its later clones).
    pub fn offering(mut self, kinds: &[RequestKind]) -> Self {
        self.offers = kinds.to_vec();
        self
    }

    /// Fulfillment determination sources every line fully from `source`.
    pub fn sourcing_from(&self, source: impl Into<String>) -> Self {
        self.lock().source = source.into();
        self.clone()
    }

    /// Fulfillment determination answers the plan `plan` makes for the order.
    pub fn planning(
        &self,
        plan: impl Fn(&Order) -> FulfillmentPlan + Send + Sync + 'static,
    ) -> Self {
        self.lock().planner = Some(Arc::new(plan));
        self.clone()
    }

    /// Queues a behaviour for the next call not taken by a key script.
    pub fn then(&self, behavior: Behavior) -> Self {
        self.lock().queue.push_back(behavior);
        self.clone()
    }

    /// Queues behaviours, one per call in call order, after those already queued.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) -> Self {
        self.lock().queue.extend(behaviors);
        self.clone()
    }

    /// Queues behaviours for calls whose idempotency key contains `pattern` (a prefix or any
    /// part of it), one per call. Key scripts are checked before the global script, in the
    /// order they were first given; an exhausted one lets calls through to the global
    /// script.
    pub fn script_key(&self, pattern: &str, behaviors: impl IntoIterator<Item = Behavior>) -> Self {
        let mut state = self.lock();
        if let Some((_, queue)) = state.by_key.iter_mut().find(|(p, _)| p == pattern) {
            queue.extend(behaviors);
        } else {
            state
                .by_key
                .push((pattern.to_owned(), behaviors.into_iter().collect()));
        }
        drop(state);
        self.clone()
    }

    /// The behaviour when no script applies; [`Behavior::Ok`] unless set.
    pub fn by_default(&self, behavior: Behavior) -> Self {
        self.lock().default = behavior;
        self.clone()
    }

    /// Drops every queued behaviour, global and per key, and restores the default
    /// [`Behavior::Ok`]. The ledger and applied effects stay.
    pub fn reset_script(&self) {
        let mut state = self.lock();
        state.queue.clear();
        state.by_key.clear();
        state.default = Behavior::Ok;
    }

    /// How many queued behaviours, global and per key, no call has taken yet.
    pub fn remaining(&self) -> usize {
        let state = self.lock();
        state.queue.len() + state.by_key.iter().map(|(_, q)| q.len()).sum::<usize>()
    }

    /// Every call received, in order, repeats included.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every effect applied, in order: at most one per idempotency key.
    pub fn effects(&self) -> Vec<Effect> {
        self.lock().effects.clone()
    }

    /// How many effects were applied per idempotency key. Each count is 1 while
    /// de-duplication holds.
    pub fn effects_per_key(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for effect in &self.lock().effects {
            *counts.entry(effect.idempotency_key.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// How many effects were applied for one target (order, kind and record), across
    /// keys. More than one means the target was called with different keys.
    pub fn effects_for(&self, order: &str, kind: RequestKind, record: &RecordId) -> usize {
        self.lock()
            .effects
            .iter()
            .filter(|e| e.order == order && e.kind == kind && e.record == *record)
            .count()
    }

    /// How many calls came with a key an earlier call had.
    pub fn duplicate_calls(&self) -> usize {
        let state = self.lock();
        let mut seen = HashSet::new();
        state
            .calls
            .iter()
            .filter(|c| !seen.insert(c.idempotency_key.as_str()))
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the request's effect once per key and returns the key's first answer.
    fn apply(&self, request: &Request<'_>, key: &str, record: &RecordId) -> Reply {
        let (planner, source) = {
            let state = self.lock();
            if let Some(reply) = state.replies.get(key) {
                return reply.clone();
            }
            (state.planner.clone(), state.source.clone())
        };
        // The planner is user code: run it without holding the lock.
        let reply = match request {
            Request::DetermineFulfillment { order } => Reply::FulfillmentPlan(match planner {
                Some(plan) => plan(order),
                None => plan_all(order, &source),
            }),
            _ => Reply::Done,
        };
        let at = self.clock.now();
        let mut state = self.lock();
        if let Some(first) = state.replies.get(key) {
            return first.clone();
        }
        state.replies.insert(key.to_owned(), reply.clone());
        state.effects.push(Effect {
            idempotency_key: key.to_owned(),
            kind: request.kind(),
            order: request.order().id.to_string(),
            record: record.clone(),
            at,
        });
        reply
    }
}

/// A plan sourcing every line of `order` fully from `source`.
fn plan_all(order: &Order, source: &str) -> FulfillmentPlan {
    FulfillmentPlan {
        lines: order
            .lines
            .iter()
            .map(|l| PlannedLine {
                line: l.id.clone(),
                allocations: vec![Allocation {
                    source: source.to_owned(),
                    quantity: l.quantity,
                }],
            })
            .collect(),
    }
}

impl fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ScriptedProvider")
            .field("name", &self.name)
            .field("offers", &self.offers)
            .field("queued", &state.queue.len())
            .field("default", &state.default)
            .field("calls", &state.calls.len())
            .field("effects", &state.effects.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn offers(&self) -> &[RequestKind] {
        &self.offers
    }

    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let key = cx.idempotency_key;
        let record = match request {
            Request::SendFulfillmentOrder {
                fulfillment_order, ..
            } => RecordId::FulfillmentOrder(fulfillment_order.id.clone()),
            _ => RecordId::Order,
        };
        let (behavior, yielding) = {
            let mut state = self.lock();
            let behavior = state.next(key);
            state.calls.push(Call {
                idempotency_key: key.to_owned(),
                attempt: cx.attempt,
                kind: request.kind(),
                order: request.order().id.to_string(),
                record: record.clone(),
                behavior: behavior.clone(),
                at: self.clock.now(),
            });
            (behavior, state.yielding)
        };
        match behavior {
            Behavior::Ok if yielding => {
                crate::testing::store::yield_once().await;
                let reply = self.apply(&request, key, &record);
                crate::testing::store::yield_once().await;
                Ok(reply)
            }
            Behavior::Ok => Ok(self.apply(&request, key, &record)),
            Behavior::Retryable(message) => Err(ProviderError::unavailable(message)),
            Behavior::Fatal(message) => Err(ProviderError::rejected(message)),
            Behavior::Delay(wait) => {
                self.clock.sleep(wait).await;
                Ok(self.apply(&request, key, &record))
            }
            Behavior::Late(wait) => {
                let reply = self.apply(&request, key, &record);
                self.clock.sleep(wait).await;
                Ok(reply)
            }
            Behavior::Hang => futures::future::pending().await,
            Behavior::Panic(message) => panic!("{message}"),
            Behavior::LostReply => {
                self.apply(&request, key, &record);
                Err(ProviderError::unavailable(format!(
                    "{}: the reply to {key} was lost",
                    self.name
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use futures::FutureExt;

    use super::*;
    use crate::clock::ManualClock;
    use crate::document::{FulfillmentOrder, OrderLine};
    use crate::provider::ProviderErrorKind;

    fn rig() -> (ManualClock, ScriptedProvider) {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let provider = ScriptedProvider::new("Billing", clock.clone());
        (clock, provider)
    }

    fn order(id: &str) -> Order {
        Order::new(id)
            .with_line(OrderLine::new("1", "Pen", 2))
            .with_line(OrderLine::new("2", "Ink", 5))
    }

    fn cx(key: &str, attempt: u32) -> CallContext<'_> {
        CallContext {
            idempotency_key: key,
            attempt,
            deadline: Timestamp::from_millis(u64::MAX),
        }
    }

    /// Runs a call that must finish without waiting.
    fn invoice(p: &ScriptedProvider, order: &Order, key: &str) -> Result<Reply, ProviderError> {
        p.call(Request::SendInvoice { order }, &cx(key, 1))
            .now_or_never()
            .expect("answers at once")
    }

    #[test]
    fn ok_applies_once_and_answers_done() {
        let (_, p) = rig();
        let o = order("SO-1");
        assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
        let effects = p.effects();
        assert_eq!(effects.len(), 1);
        assert_eq!(effects[0].idempotency_key, "k1");
        assert_eq!(effects[0].kind, RequestKind::SendInvoice);
        assert_eq!(effects[0].order, "SO-1");
        assert_eq!(effects[0].record, RecordId::Order);
        assert_eq!(effects[0].at, Timestamp::from_millis(1_000));
        let calls = p.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].behavior, Behavior::Ok);
        assert_eq!(calls[0].attempt, 1);
    }

    #[test]
    fn retryable_and_fatal_apply_nothing_with_their_kinds() {
        let (_, p) = rig();
        p.then(Behavior::Retryable("down".into()))
            .then(Behavior::Fatal("no account".into()));
        let o = order("SO-1");
        let e = invoice(&p, &o, "k1").unwrap_err();
        assert_eq!(e.kind(), ProviderErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.message(), "down");
        let e = invoice(&p, &o, "k1").unwrap_err();
        assert_eq!(e.kind(), ProviderErrorKind::Rejected);
        assert!(!e.is_retryable());
        assert_eq!(e.message(), "no account");
        assert!(p.effects().is_empty());
        assert_eq!(p.calls().len(), 2);
        assert_eq!(
            invoice(&p, &o, "k1").unwrap(),
            Reply::Done,
            "then the default"
        );
        assert_eq!(p.effects().len(), 1);
    }

    #[test]
    fn lost_reply_applies_then_fails_retryably_and_the_retry_is_deduplicated() {
        let (_, p) = rig();
        p.then(Behavior::LostReply);
        let o = order("SO-1");
        let e = invoice(&p, &o, "k1").unwrap_err();
        assert_eq!(e.kind(), ProviderErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(p.effects().len(), 1, "applied although the reply was lost");
        assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
        assert_eq!(p.effects().len(), 1);
        assert_eq!(p.duplicate_calls(), 1);
        assert_eq!(p.effects_per_key(), BTreeMap::from([("k1".to_owned(), 1)]));
    }

    #[test]
    fn panic_panics_inside_call_and_applies_nothing() {
        let (_, p) = rig();
        p.then(Behavior::Panic("adapter bug".into()));
        let o = order("SO-1");
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| invoice(&p, &o, "k1")));
        let payload = caught.expect_err("panics");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("adapter bug")
        );
        assert!(p.effects().is_empty());
        assert_eq!(p.calls()[0].behavior, Behavior::Panic("adapter bug".into()));
        assert_eq!(
            invoice(&p, &o, "k1").unwrap(),
            Reply::Done,
            "usable after a panic"
        );
    }

    #[test]
    fn delay_answers_after_the_clock_advances_and_applies_only_then() {
        let (clock, p) = rig();
        p.then(Behavior::Delay(Duration::from_millis(500)));
        let o = order("SO-1");
        let c = cx("k1", 1);
        let mut call = p.call(Request::SendInvoice { order: &o }, &c);
        assert!((&mut call).now_or_never().is_none());
        assert!(p.effects().is_empty(), "nothing applied while waiting");
        clock.advance(Duration::from_millis(499));
        assert!((&mut call).now_or_never().is_none());
        clock.advance(Duration::from_millis(1));
        assert_eq!(call.now_or_never().unwrap().unwrap(), Reply::Done);
        assert_eq!(p.effects().len(), 1);
        assert_eq!(p.effects()[0].at, Timestamp::from_millis(1_500));
        assert_eq!(p.calls()[0].at, Timestamp::from_millis(1_000));
    }

    #[test]
    fn an_abandoned_delay_applies_nothing() {
        let (clock, p) = rig();
        p.then(Behavior::Delay(Duration::from_millis(500)));
        let o = order("SO-1");
        let c = cx("k1", 1);
        let mut call = p.call(Request::SendInvoice { order: &o }, &c);
        assert!((&mut call).now_or_never().is_none());
        drop(call);
        clock.advance(Duration::from_secs(1));
        assert!(p.effects().is_empty());
    }

    #[test]
    fn late_applies_at_once_and_answers_after_the_wait() {
        let (clock, p) = rig();
        p.then(Behavior::Late(Duration::from_millis(2_000)));
        let o = order("SO-1");
        let c = cx("k1", 1);
        let mut call = p.call(Request::SendInvoice { order: &o }, &c);
        assert!((&mut call).now_or_never().is_none());
        assert_eq!(p.effects().len(), 1, "applied before the reply");
        assert_eq!(p.effects()[0].at, Timestamp::from_millis(1_000));
        // The engine's timeout abandons the call; the effect stays and a retry reuses it.
        drop(call);
        assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
        assert_eq!(p.effects().len(), 1);

        p.then(Behavior::Late(Duration::from_millis(2_000)));
        let c = cx("k2", 1);
        let mut call = p.call(Request::SendInvoice { order: &o }, &c);
        assert!((&mut call).now_or_never().is_none());
        clock.advance(Duration::from_millis(2_000));
        assert_eq!(call.now_or_never().unwrap().unwrap(), Reply::Done);
        assert_eq!(p.effects().len(), 2);
    }

    #[test]
    fn hang_never_answers_however_far_the_clock_moves() {
        let (clock, p) = rig();
        p.then(Behavior::Hang);
        let o = order("SO-1");
        let c = cx("k1", 1);
        let mut call = p.call(Request::SendInvoice { order: &o }, &c);
        for _ in 0..3 {
            assert!((&mut call).now_or_never().is_none());
            clock.advance(Duration::from_secs(3_600));
        }
        assert!(call.now_or_never().is_none());
        assert!(p.effects().is_empty());
        assert_eq!(p.calls()[0].behavior, Behavior::Hang);
    }

    #[test]
    fn a_repeated_key_gets_the_first_plan_and_no_new_effect() {
        let (_, p) = rig();
        let p = p.sourcing_from("Seattle");
        let o = order("SO-1");
        let c = cx("plan", 1);
        let first = p
            .call(Request::DetermineFulfillment { order: &o }, &c)
            .now_or_never()
            .unwrap()
            .unwrap();
        let Reply::FulfillmentPlan(plan) = &first else {
            panic!("a plan, got {first:?}");
        };
        assert_eq!(plan.lines.len(), 2);
        assert_eq!(plan.lines[1].line.as_str(), "2");
        assert_eq!(plan.lines[1].allocations[0].source, "Seattle");
        assert_eq!(plan.lines[1].allocations[0].quantity, 5.into());

        // A repeat with the same key after the source changed still gets the first plan.
        p.sourcing_from("Paris");
        let c = cx("plan", 2);
        let again = p
            .call(Request::DetermineFulfillment { order: &o }, &c)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(p.effects().len(), 1);
        assert_eq!(p.calls().len(), 2);
        assert_eq!(p.calls()[1].attempt, 2);
        assert_eq!(p.duplicate_calls(), 1);
    }

    #[test]
    fn sources_from_its_name_by_default_or_from_a_planner() {
        let (_, p) = rig();
        let o = order("SO-1");
        let c = cx("a", 1);
        let Reply::FulfillmentPlan(plan) = p
            .call(Request::DetermineFulfillment { order: &o }, &c)
            .now_or_never()
            .unwrap()
            .unwrap()
        else {
            panic!("a plan");
        };
        assert_eq!(plan.lines[0].allocations[0].source, "Billing");

        p.planning(|order: &Order| FulfillmentPlan {
            lines: vec![PlannedLine {
                line: order.lines[0].id.clone(),
                allocations: Vec::new(),
            }],
        });
        let c = cx("b", 1);
        let Reply::FulfillmentPlan(plan) = p
            .call(Request::DetermineFulfillment { order: &o }, &c)
            .now_or_never()
            .unwrap()
            .unwrap()
        else {
            panic!("a plan");
        };
        assert_eq!(plan.lines.len(), 1);
        assert!(plan.lines[0].allocations.is_empty());
    }

    #[test]
    fn fulfillment_orders_are_their_own_records() {
        let (_, p) = rig();
        let o = order("SO-1");
        let fo = FulfillmentOrder::new("FO-1", "Seattle");
        let c = cx("ship", 1);
        let reply = p
            .call(
                Request::SendFulfillmentOrder {
                    order: &o,
                    fulfillment_order: &fo,
                },
                &c,
            )
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(reply, Reply::Done);
        let record = RecordId::FulfillmentOrder("FO-1".into());
        assert_eq!(p.calls()[0].record, record);
        assert_eq!(
            p.effects_for("SO-1", RequestKind::SendFulfillmentOrder, &record),
            1
        );
        assert_eq!(
            p.effects_for("SO-1", RequestKind::SendFulfillmentOrder, &RecordId::Order),
            0
        );
    }

    #[test]
    fn erp_and_custom_requests_answer_done() {
        let (_, p) = rig();
        let o = order("SO-1");
        let payload = serde_json::json!({"x": 1});
        let c = cx("erp", 1);
        let erp = p.call(Request::SendToErp { order: &o }, &c).now_or_never();
        assert_eq!(erp.unwrap().unwrap(), Reply::Done);
        let c = cx("custom", 1);
        let custom = p
            .call(
                Request::Custom {
                    name: "loyalty",
                    order: &o,
                    payload: &payload,
                },
                &c,
            )
            .now_or_never();
        assert_eq!(custom.unwrap().unwrap(), Reply::Done);
        let kinds: Vec<_> = p.effects().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [RequestKind::SendToErp, RequestKind::Custom]);
    }

    #[test]
    fn key_scripts_take_precedence_over_the_global_script() {
        let (_, p) = rig();
        p.script([Behavior::Fatal("global".into()), Behavior::Ok])
            .script_key("SO-2", [Behavior::Retryable("two".into())])
            .script_key("SO-2", [Behavior::Retryable("two again".into())]);
        let o1 = order("SO-1");
        let o2 = order("SO-2");
        let message = |r: Result<Reply, ProviderError>| r.err().map(|e| e.message().to_owned());
        assert_eq!(
            message(invoice(&p, &o2, "exec/SO-2/invoice")),
            Some("two".into())
        );
        assert_eq!(
            message(invoice(&p, &o1, "exec/SO-1/invoice")),
            Some("global".into())
        );
        assert_eq!(
            message(invoice(&p, &o2, "exec/SO-2/invoice")),
            Some("two again".into())
        );
        assert_eq!(p.remaining(), 1);
        // The key script is exhausted: SO-2 falls through to the global script.
        assert_eq!(message(invoice(&p, &o2, "exec/SO-2/invoice")), None);
        assert_eq!(p.remaining(), 0);
        assert_eq!(message(invoice(&p, &o1, "exec/SO-1/invoice")), None);
        assert_eq!(p.effects().len(), 2);
    }

    #[test]
    fn default_behaviour_and_reset() {
        let (_, p) = rig();
        p.by_default(Behavior::Retryable("always down".into()))
            .then(Behavior::Ok)
            .script_key("x", [Behavior::Ok]);
        let o = order("SO-1");
        assert!(invoice(&p, &o, "a").is_ok());
        assert!(invoice(&p, &o, "b").is_err());
        p.reset_script();
        assert_eq!(p.remaining(), 0);
        assert!(invoice(&p, &o, "x").is_ok(), "the default is Ok again");
        assert_eq!(p.calls().len(), 3, "the ledger stays");
    }

    #[test]
    fn ledger_counts_duplicates_and_unstable_keys() {
        let (_, p) = rig();
        let o = order("SO-1");
        for key in ["k1", "k1", "k2", "k1"] {
            invoice(&p, &o, key).unwrap();
        }
        assert_eq!(p.calls().len(), 4);
        assert_eq!(p.duplicate_calls(), 2);
        assert_eq!(
            p.effects_per_key(),
            BTreeMap::from([("k1".to_owned(), 1), ("k2".to_owned(), 1)])
        );
        // Two keys for the same invoice: the target was billed twice.
        assert_eq!(
            p.effects_for("SO-1", RequestKind::SendInvoice, &RecordId::Order),
            2
        );
        assert_eq!(
            p.effects_for("SO-9", RequestKind::SendInvoice, &RecordId::Order),
            0
        );
    }

    #[test]
    fn clones_share_script_and_ledger_and_offering_narrows() {
        let (_, p) = rig();
        assert_eq!(p.offers(), ALL_KINDS);
        let registered = p.clone().offering(&[RequestKind::SendInvoice]);
        assert_eq!(registered.offers(), [RequestKind::SendInvoice]);
        assert_eq!(registered.name(), "Billing");
        p.then(Behavior::Fatal("no".into()));
        let o = order("SO-1");
        assert!(invoice(&registered, &o, "k").is_err());
        assert!(invoice(&registered, &o, "k").is_ok());
        assert_eq!(p.calls().len(), 2);
        assert_eq!(p.effects().len(), 1);
        let debug = format!("{p:?}");
        assert!(
            debug.contains("Billing") && debug.contains("calls: 2"),
            "{debug}"
        );
    }
}
