//! Reading execution state written before the token machine (orderflow 0.1): tokens with a
//! status and flags instead of a phase, executions without a plan fingerprint. Stores call
//! [`OrderState::from_json`](super::OrderState::from_json) on JSON rows, which reads both.

use semver::Version;
use serde::Deserialize;

use super::{
    Accepted, Execution, ExecutionId, Frame, JoinState, OrderState, Outcome, Phase, Position,
    Resume, Selection, TimelineEntry, Token,
};
use crate::clock::Timestamp;
use crate::document::Order;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Position1 {
    Node(u32),
    Arrive { join: u32, branch: u32 },
    Merged(u32),
    End,
}

#[derive(Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Status1 {
    Ready,
    Waiting,
    Running,
    Failed,
    Retrying,
}

#[derive(Deserialize)]
struct Token1 {
    id: u32,
    at: Position1,
    status: Status1,
    #[serde(default)]
    records: Selection,
    last: Option<Outcome>,
    #[serde(default)]
    trigger: Option<u64>,
    #[serde(default)]
    admitted: bool,
    #[serde(default)]
    waited: bool,
    #[serde(default)]
    took: Option<u64>,
    #[serde(default)]
    frames: Vec<Frame>,
    #[serde(default)]
    absorbed: Vec<Self>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default = "one")]
    attempt: u32,
    #[serde(default)]
    calls: u32,
    #[serde(default)]
    wake_at: Option<Timestamp>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct Execution1 {
    id: ExecutionId,
    flow: String,
    version: Version,
    trigger: u64,
    round: u32,
    tokens: Vec<Token1>,
    joins: Vec<JoinState>,
    #[serde(default)]
    consumed: Vec<u64>,
    #[serde(default)]
    accepted: Vec<Accepted>,
    next_token: u32,
    steps: u32,
    started: Timestamp,
    ended: Option<Timestamp>,
    #[serde(default)]
    cancelled: Option<Timestamp>,
}

#[derive(Deserialize)]
pub(super) struct OrderState1 {
    order: Order,
    revision: u64,
    timeline: Vec<TimelineEntry>,
    executions: Vec<Execution1>,
    #[serde(default)]
    resume_at: Option<Timestamp>,
}

impl From<Token1> for Token {
    fn from(t: Token1) -> Self {
        // Where in its step the token was, from the flags 0.1 kept.
        let resume = if !t.admitted {
            Resume::Arrived
        } else if !t.waited && t.took.is_none() {
            Resume::Awaiting
        } else {
            Resume::Admitted
        };
        let phase = match t.status {
            Status1::Ready => match resume {
                Resume::Arrived => Phase::Arrived,
                Resume::Awaiting => Phase::Awaiting,
                Resume::Admitted => Phase::Admitted,
            },
            Status1::Waiting => Phase::Parked,
            Status1::Running => Phase::Calling,
            Status1::Retrying => Phase::Retrying {
                at: t.wake_at.unwrap_or_default(),
            },
            Status1::Failed => Phase::Failed {
                error: t.error.clone().unwrap_or_default(),
                resume,
            },
        };
        Self {
            id: t.id,
            at: match t.at {
                Position1::Node(n) => Position::Node(n),
                Position1::Arrive { join, branch } => Position::Arrive { join, branch },
                Position1::Merged(j) => Position::Merged(j),
                Position1::End => Position::End,
            },
            records: t.records,
            last: t.last,
            trigger: t.trigger,
            took: t.took,
            attempt: t.attempt,
            calls: t.calls,
            earlier: match t.status {
                Status1::Failed => None,
                _ => t.error,
            },
            phase,
            frames: t.frames,
            absorbed: t.absorbed.into_iter().map(Self::from).collect(),
        }
    }
}

impl From<OrderState1> for OrderState {
    fn from(s: OrderState1) -> Self {
        Self {
            order: std::sync::Arc::new(s.order),
            revision: s.revision,
            timeline: s.timeline,
            executions: s
                .executions
                .into_iter()
                .map(|x| Execution {
                    id: x.id,
                    flow: x.flow,
                    version: x.version,
                    // Started before plans had fingerprints: taken as laid out as now.
                    plan: 0,
                    trigger: x.trigger,
                    round: x.round,
                    tokens: x.tokens.into_iter().map(Token::from).collect(),
                    joins: x.joins,
                    consumed: x.consumed,
                    accepted: x.accepted,
                    next_token: x.next_token,
                    steps: x.steps,
                    started: x.started,
                    ended: x.ended,
                    cancelled: x.cancelled,
                })
                .collect(),
            resume_at: s.resume_at,
        }
    }
}

impl OrderState {
    /// A state from its JSON form, as this version writes it or as orderflow 0.1 wrote it
    /// (tokens with a status and flags), for stores that kept JSON rows.
    ///
    /// # Errors
    ///
    /// The text is neither form; the message names what did not parse.
    pub fn from_json(text: &str) -> Result<Self, String> {
        match serde_json::from_str::<Self>(text) {
            Ok(state) => Ok(state),
            Err(current) => serde_json::from_str::<OrderState1>(text)
                .map(Self::from)
                .map_err(|_| current.to_string()),
        }
    }
}
