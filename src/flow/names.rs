//! The names of a flow's steps by their index in the compiled plan, for reading journeys.
//!
//! A journey row names its step by index (compact, and stable for a published version:
//! the plan's fingerprint is kept with every execution). [`StepNames::of`] numbers a flow's
//! steps exactly as the engine's plan compiler does — each sequence's steps take
//! consecutive indexes, then the nested sequences of each, in order; merges in the order
//! their elements are met — so a tool with only the flow document (the CLI reading a store)
//! resolves the same names as the engine. The table itself ([`StepNames`]) belongs to the
//! journey module, which reads it.

use super::{Flow, Sequence, Step};
use crate::journey::{MergeNames, NodeElement, NodeNames, StepNames};

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
}
