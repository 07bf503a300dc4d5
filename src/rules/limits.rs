//! A policy document within the [`Limits`].

use super::{Condition, PolicyDocument};
use crate::limits::{LimitError, Limits};
use crate::measure::shorten;

impl PolicyDocument {
    /// Checks the document within `limits` — its name, its rules and the nesting of their conditions
    /// ([`Limits::max_nesting`]), without recursion — as an engine does when it takes
    /// a document built in code ([`Engine::create_policy`](crate::Engine::create_policy)); a
    /// document read from JSON met them as it was parsed.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), LimitError> {
        let policy = self;
        if policy.name.len() > limits.max_string_bytes {
            return Err(LimitError::new(
                "policy",
                "max_string_bytes",
                limits.max_string_bytes,
                policy.name.len(),
                "the policy's name".into(),
            ));
        }
        if policy.rules.len() > limits.max_rules {
            return Err(LimitError::new(
                "policy",
                "max_rules",
                limits.max_rules,
                policy.rules.len(),
                format!("policy '{}'", policy.name),
            ));
        }
        for rule in &policy.rules {
            let place = || format!("policy '{}', rule '{}'", policy.name, shorten(&rule.name));
            if rule.name.len() > limits.max_string_bytes {
                return Err(LimitError::new(
                    "policy",
                    "max_string_bytes",
                    limits.max_string_bytes,
                    rule.name.len(),
                    place(),
                ));
            }
            let mut stack: Vec<(&Condition, usize)> =
                rule.condition.iter().map(|c| (c, 1)).collect();
            while let Some((condition, depth)) = stack.pop() {
                if depth > limits.max_nesting {
                    return Err(LimitError::new(
                        "policy",
                        "max_nesting",
                        limits.max_nesting,
                        depth,
                        place(),
                    ));
                }
                match condition {
                    Condition::And(cs) | Condition::Or(cs) => {
                        stack.extend(cs.iter().map(|c| (c, depth + 1)));
                    }
                    Condition::AnyLine(c) | Condition::AllLines(c) => stack.push((c, depth + 1)),
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
    use crate::document::Entity;
    use crate::policy::PolicyKind;
    use crate::rules::Rule;

    #[test]
    fn rules_and_their_nesting_meet_the_limits() {
        let limits = Limits::default().with_max_rules(2).with_max_nesting(3);
        let deep = Condition::And(vec![Condition::Or(vec![Condition::And(vec![
            Condition::has_data("currency"),
        ])])]);
        let policy = PolicyDocument::new("P", PolicyKind::Filter, Entity::Order)
            .with_rule(Rule::check("deep", deep.clone()));
        let e = policy.check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_nesting", 3, 4));
        assert_eq!(e.place, "policy 'P', rule 'deep'");
        policy.check_limits(&limits.with_max_nesting(4)).unwrap();

        let many = (0..3).fold(
            PolicyDocument::new("Many", PolicyKind::Filter, Entity::Order),
            |p, i| {
                p.with_rule(Rule::check(
                    format!("r{i}"),
                    Condition::has_data("currency"),
                ))
            },
        );
        let e = many.check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.found), ("max_rules", 3));
    }

    /// A limit is the most a document may have: names exactly as long as the string limit
    /// and exactly as many rules as allowed pass; one more is refused, saying where.
    #[test]
    fn a_document_may_reach_each_limit_but_not_pass_it() {
        let limits = Limits::default().with_max_string_bytes(8).with_max_rules(2);
        let doc = |policy: &str, rules: &[&str]| {
            rules.iter().fold(
                PolicyDocument::new(policy, PolicyKind::Filter, Entity::Order),
                |p, r| p.with_rule(Rule::check(*r, Condition::has_data("currency"))),
            )
        };
        doc("12345678", &["12345678", "r"])
            .check_limits(&limits)
            .unwrap();
        let e = doc("123456789", &["r"]).check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_string_bytes", 8, 9));
        assert_eq!(e.place, "the policy's name");
        let e = doc("p", &["123456789"]).check_limits(&limits).unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_string_bytes", 8, 9));
        assert_eq!(e.place, "policy 'p', rule '123456789'");
        let e = doc("p", &["a", "b", "c"])
            .check_limits(&limits)
            .unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_rules", 2, 3));
    }

    /// A quantifier over lines is a level of nesting like a group.
    #[test]
    fn quantifiers_count_as_nesting() {
        let quantified = Condition::AnyLine(Box::new(Condition::AllLines(Box::new(
            Condition::has_data("quantity"),
        ))));
        let policy = PolicyDocument::new("Q", PolicyKind::Filter, Entity::Order)
            .with_rule(Rule::check("lines", quantified));
        let e = policy
            .check_limits(&Limits::default().with_max_nesting(2))
            .unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_nesting", 2, 3));
        policy
            .check_limits(&Limits::default().with_max_nesting(3))
            .unwrap();
    }
}
