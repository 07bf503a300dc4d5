//! What a filter policy admits, as far as its rules let the analysis read it, and whether
//! two filters can take the same record.

use super::{Verdict, WarningKind};
use crate::document::{Entity, Value};
use crate::rules::{Condition, Operand, Operator, PolicyDocument, fields};

/// Field → the values a filter admits on it.
type FieldSets<'p> = Vec<(&'p str, Vec<&'p Value>)>;

/// What a filter admits, as far as the analysis can read it.
#[derive(Debug)]
pub(super) enum Admits<'p> {
    /// Every record.
    All,
    /// Records of `entity` whose fields hold one of the listed values, and which pass the
    /// conditions the analysis does not read (`extra`).
    Sets {
        entity: Entity,
        /// Field → the values admitted (already intersected when a field is tested twice).
        fields: FieldSets<'p>,
        /// Whether other conditions restrict further.
        extra: bool,
    },
    /// A code policy, or rules the analysis does not read.
    Opaque,
}

/// Reads a filter policy: admitted when every rule's condition holds.
pub(super) fn admits(doc: &PolicyDocument, max: usize) -> Admits<'_> {
    let mut sets: FieldSets<'_> = Vec::new();
    let mut extra = false;
    for rule in &doc.rules {
        if let Some(c) = &rule.condition {
            conjuncts(c, doc.entity, &mut sets, &mut extra, max, 1);
        }
    }
    if sets.is_empty() && !extra {
        return Admits::All;
    }
    Admits::Sets {
        entity: doc.entity,
        fields: sets,
        extra,
    }
}

/// Adds the `equals`/`in` rows of a conjunction to `sets`; anything else sets `extra`.
fn conjuncts<'p>(
    c: &'p Condition,
    entity: Entity,
    sets: &mut FieldSets<'p>,
    extra: &mut bool,
    max: usize,
    depth: usize,
) {
    if depth > max {
        *extra = true;
        return;
    }
    match c {
        Condition::And(items) => {
            for item in items {
                conjuncts(item, entity, sets, extra, max, depth + 1);
            }
        }
        Condition::Row(row) => {
            let values: Vec<&Value> = match (row.operator, &row.value) {
                (Operator::Equals | Operator::In, Some(Operand::One(v))) => vec![v],
                (Operator::In, Some(Operand::Many(vs))) => vs.iter().collect(),
                _ => {
                    *extra = true;
                    return;
                }
            };
            if values.iter().any(|v| matches!(v, Value::Null)) {
                *extra = true;
                return;
            }
            let options = options(entity, &row.field);
            let values = values.into_iter().filter(|v| {
                options.is_empty() || matches!(v, Value::Text(t) if options.contains(&t.as_str()))
            });
            match sets.iter_mut().find(|(f, _)| *f == row.field) {
                Some((_, have)) => {
                    let values: Vec<&Value> = values.collect();
                    have.retain(|v| values.contains(v));
                }
                None => {
                    let mut unique: Vec<&Value> = Vec::new();
                    for v in values {
                        if !unique.contains(&v) {
                            unique.push(v);
                        }
                    }
                    sets.push((&row.field, unique));
                }
            }
        }
        Condition::Or(_) | Condition::AnyLine(_) | Condition::AllLines(_) => *extra = true,
    }
}

/// The options of an option field of `entity` (empty for any value).
fn options(entity: Entity, field: &str) -> &'static [&'static str] {
    fields()
        .find(|f| f.entity == entity && f.name == field)
        .map_or(&[], |f| f.options)
}

/// Whether the values of a field can be exhausted by listing them: an option field that is
/// never empty, whose options are all in `values`.
fn covers(entity: Entity, field: &str, values: &[&Value]) -> bool {
    fields()
        .find(|f| f.entity == entity && f.name == field)
        .is_some_and(|f| {
            !f.options.is_empty()
                && !f.nullable
                && f.options
                    .iter()
                    .all(|o| values.iter().any(|v| matches!(v, Value::Text(t) if t == o)))
        })
}

/// Whether one record can pass both filters.
pub(super) fn overlap(a: &Admits<'_>, b: &Admits<'_>) -> Verdict {
    let empty = |x: &Admits<'_>| matches!(x, Admits::Sets { fields, .. } if fields.iter().any(|(_, v)| v.is_empty()));
    if empty(a) || empty(b) {
        return Verdict::No;
    }
    match (a, b) {
        (Admits::All, _) | (_, Admits::All) => Verdict::Yes,
        (
            Admits::Sets {
                entity: ea,
                fields: fa,
                extra: xa,
            },
            Admits::Sets {
                entity: eb,
                fields: fb,
                extra: xb,
            },
        ) if ea == eb => {
            let mut shared = false;
            for (field, va) in fa {
                if let Some((_, vb)) = fb.iter().find(|(f, _)| f == field) {
                    shared = true;
                    if !va.iter().any(|v| vb.contains(v)) {
                        return Verdict::No;
                    }
                }
            }
            if shared && !xa && !xb {
                Verdict::Yes
            } else {
                Verdict::CannotTell
            }
        }
        _ => Verdict::CannotTell,
    }
}

/// Whether some record passes no branch's filter; `None` when every record takes one.
pub(super) fn unrouted<'x, 'p: 'x>(
    branches: impl Iterator<Item = &'x Admits<'p>>,
) -> Option<WarningKind> {
    let cannot_tell = WarningKind::UnroutedRecords {
        verdict: Verdict::CannotTell,
        entity: None,
        field: None,
        values: Vec::new(),
    };
    let mut all: Vec<(&FieldSets<'_>, bool)> = Vec::new();
    let mut entity = None;
    let mut opaque = false;
    for b in branches {
        match b {
            Admits::All => return None,
            Admits::Opaque => opaque = true,
            Admits::Sets {
                entity: e,
                fields,
                extra,
            } => {
                if entity.is_some_and(|seen| seen != *e) {
                    opaque = true;
                }
                entity = Some(*e);
                all.push((fields, *extra));
            }
        }
    }
    if opaque {
        return Some(cannot_tell);
    }
    let (Some(entity), Some((first, _))) = (entity, all.first()) else {
        return None;
    };
    // A field every branch tests: a value none of them lists passes no branch.
    let mut covered_single = None;
    for (field, _) in first.iter() {
        let mut union: Vec<&Value> = Vec::new();
        let mut everywhere = true;
        for (fields, _) in &all {
            match fields.iter().find(|(f, _)| f == field) {
                Some((_, vs)) => {
                    for v in vs {
                        if !union.contains(v) {
                            union.push(v);
                        }
                    }
                }
                None => everywhere = false,
            }
        }
        if !everywhere {
            continue;
        }
        if !covers(entity, field, &union) {
            return Some(WarningKind::UnroutedRecords {
                verdict: Verdict::Yes,
                entity: Some(entity),
                field: Some((*field).to_owned()),
                values: union.iter().map(|v| show(v)).collect(),
            });
        }
        covered_single = Some(*field);
    }
    // Every branch tests only that one field, and together they list all its options.
    let decided = covered_single.is_some_and(|field| {
        all.iter()
            .all(|(fields, extra)| !extra && fields.len() == 1 && fields[0].0 == field)
    });
    if decided { None } else { Some(cannot_tell) }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Text(t) => t.clone(),
    }
}
