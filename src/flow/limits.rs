//! A flow within the [`Limits`]: its steps, branches and element nesting, checked on the
//! typed flow (one read from JSON or built in code).

use super::{Flow, Step, StepPath};
use crate::limits::{LimitError, Limits};

impl Flow {
    /// Checks the flow within `limits` — its name, and its steps, branches and element
    /// nesting, without recursion — as an engine does when it takes a flow built in code
    /// ([`Engine::create_flow`](crate::Engine::create_flow)); a flow read from JSON met them
    /// as it was parsed.
    ///
    /// ```
    /// use orderflow::flow::{ActionStep, Flow};
    /// use orderflow::limits::Limits;
    /// use orderflow::{ActionKind, EventKind};
    ///
    /// let flow = Flow::builder("Three steps")
    ///     .steps(|s| {
    ///         s.action(ActionStep::new("A", ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER))
    ///             .action(ActionStep::new("B", ActionKind::ValidateOrderLine))
    ///             .action(ActionStep::new("C", ActionKind::ValidateOrderHeader))
    ///     })
    ///     .build()?;
    /// flow.check_limits(&Limits::default())?;
    /// let err = flow.check_limits(&Limits::default().with_max_steps(2)).unwrap_err();
    /// assert_eq!((err.limit, err.found), ("max_steps", 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_limits(&self, limits: &Limits) -> Result<(), LimitError> {
        let flow = self;
        let long = |s: &str| s.len() > limits.max_string_bytes;
        if long(&flow.name) {
            return Err(LimitError::new(
                "flow",
                "max_string_bytes",
                limits.max_string_bytes,
                flow.name.len(),
                "the flow's name".into(),
            ));
        }
        let mut steps = 0usize;
        // (sequence, its place, element nesting)
        let mut stack: Vec<(&[Step], StepPath, usize)> =
            vec![(&flow.steps, StepPath::default(), 0)];
        while let Some((sequence, path, depth)) = stack.pop() {
            for step in sequence {
                steps += 1;
                let here = path.child(step.name());
                if steps > limits.max_steps {
                    return Err(LimitError::new(
                        "flow",
                        "max_steps",
                        limits.max_steps,
                        steps,
                        here.to_string(),
                    ));
                }
                if long(step.name()) {
                    return Err(LimitError::new(
                        "flow",
                        "max_string_bytes",
                        limits.max_string_bytes,
                        step.name().len(),
                        path.to_string(),
                    ));
                }
                let nested = depth + 1;
                // An element opens paths one level deeper than its own sequence.
                if !matches!(step, Step::Action(_)) && nested > limits.max_nesting {
                    return Err(LimitError::new(
                        "flow",
                        "max_nesting",
                        limits.max_nesting,
                        nested,
                        here.to_string(),
                    ));
                }
                match step {
                    Step::Condition(c) | Step::ConditionMerge(c) => {
                        stack.push((&c.no, here.child("no"), nested));
                        stack.push((&c.yes, here.child("yes"), nested));
                    }
                    Step::Splitter(s) | Step::SplitterMerge(s) => {
                        if s.branches.len() > limits.max_branches {
                            return Err(LimitError::new(
                                "flow",
                                "max_branches",
                                limits.max_branches,
                                s.branches.len(),
                                here.to_string(),
                            ));
                        }
                        for (name, branch) in s.branches.iter().rev() {
                            if long(name) {
                                return Err(LimitError::new(
                                    "flow",
                                    "max_string_bytes",
                                    limits.max_string_bytes,
                                    name.len(),
                                    here.to_string(),
                                ));
                            }
                            stack.push((branch, here.child(name), nested));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ActionStep, ConditionStep};
    use crate::orchestration::ActionKind;

    fn action(name: &str) -> Step {
        Step::Action(ActionStep::new(name, ActionKind::ValidateOrderHeader))
    }

    /// A flow built in code with `depth` Conditions inside each other.
    fn nested(depth: usize) -> Flow {
        let mut inner = vec![action("leaf")];
        for d in 0..depth {
            inner = vec![
                action(&format!("before {d}")),
                Step::Condition(ConditionStep {
                    name: format!("c{d}"),
                    yes: inner,
                    no: Vec::new(),
                }),
            ];
        }
        let mut flow: Flow =
            serde_json::from_value(serde_json::json!({ "name": "Deep", "steps": [] })).unwrap();
        flow.steps = inner;
        flow
    }

    #[test]
    fn flows_built_in_code_meet_the_structural_limits() {
        let limits = Limits::default();
        nested(16).check_limits(&limits).unwrap();
        let e = nested(17).check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_nesting", 16, 17));
        assert!(e.place.starts_with("c16 / yes / c15"), "{}", e.place);
        assert!(e.place.ends_with("/ c0"), "{}", e.place);

        let many = {
            let mut flow = nested(0);
            flow.steps = (0..1_001).map(|i| action(&format!("s{i}"))).collect();
            flow
        };
        let e = many.check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.found), ("max_steps", 1_001));
        many.check_limits(&limits.with_max_steps(2_000)).unwrap();
    }
}
