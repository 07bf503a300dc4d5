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
mod tests;
