//! The names of a flow's steps by their index in the compiled plan, for reading journeys.
//!
//! A journey row names its step by index (compact, and stable for a published version:
//! the plan's fingerprint is kept with every execution). [`StepNames::of`] numbers a flow's
//! steps exactly as the engine's plan compiler does — each sequence's steps take
//! consecutive indexes, then the nested sequences of each, in order; merges in the order
//! their elements are met — so a tool with only the flow document (the CLI reading a store)
//! resolves the same names as the engine.

use super::{Flow, Sequence, Step};

/// What kind of element a plan node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NodeElement {
    Action,
    Condition,
    Splitter,
}

/// One plan node's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeNames {
    pub(crate) name: String,
    pub(crate) element: NodeElement,
    /// A splitter's branches.
    pub(crate) branches: Vec<String>,
    /// An action's filter policy.
    pub(crate) filter: Option<String>,
}

/// One merge's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergeNames {
    pub(crate) name: String,
    pub(crate) branches: Vec<String>,
}

/// The names of a flow's steps and merges by plan index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepNames {
    pub(crate) nodes: Vec<NodeNames>,
    pub(crate) merges: Vec<MergeNames>,
}

impl StepNames {
    /// Numbers `flow`'s steps as the plan compiler does.
    pub fn of(flow: &Flow) -> Self {
        let mut names = Self::default();
        names.sequence(&flow.steps);
        names
    }

    fn sequence(&mut self, steps: &Sequence) {
        for step in steps {
            let (element, branches, filter) = match step {
                Step::Action(a) => (NodeElement::Action, Vec::new(), a.filter.clone()),
                Step::Condition(_) | Step::ConditionMerge(_) => {
                    (NodeElement::Condition, Vec::new(), None)
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => (
                    NodeElement::Splitter,
                    s.branches.keys().cloned().collect(),
                    None,
                ),
            };
            self.nodes.push(NodeNames {
                name: step.name().to_owned(),
                element,
                branches,
                filter,
            });
        }
        for step in steps {
            match step {
                Step::Action(_) => {}
                Step::Condition(c) => {
                    self.sequence(&c.yes);
                    self.sequence(&c.no);
                }
                Step::ConditionMerge(c) => {
                    self.merges.push(MergeNames {
                        name: c.name.clone(),
                        branches: vec!["yes".into(), "no".into()],
                    });
                    self.sequence(&c.yes);
                    self.sequence(&c.no);
                }
                Step::Splitter(s) => {
                    for seq in s.branches.values() {
                        self.sequence(seq);
                    }
                }
                Step::SplitterMerge(s) => {
                    self.merges.push(MergeNames {
                        name: s.name.clone(),
                        branches: s.branches.keys().cloned().collect(),
                    });
                    for seq in s.branches.values() {
                        self.sequence(seq);
                    }
                }
            }
        }
    }

    /// The name of plan node `n`.
    pub(crate) fn node(&self, n: u32) -> Option<&NodeNames> {
        self.nodes.get(n as usize)
    }

    /// The names of merge `j`.
    pub(crate) fn merge(&self, j: u32) -> Option<&MergeNames> {
        self.merges.get(j as usize)
    }
}
