//! Target `flow`: a flow document from bytes, parsed, drawn, validated and, when valid,
//! published (and run once) on an engine that registers whatever the flow names.

use std::collections::BTreeSet;

use futures::executor::block_on;
use orderflow::document::{Entity, Order, OrderLine, RecordRef};
use orderflow::flow::{Flow, Step, validate};
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::render;
use orderflow::{Config, Engine, Event, ManualClock, MemoryProvider, MemoryStore, Timestamp};

/// Provider, custom action, filter and execution policy names a flow refers to.
#[derive(Debug, Default)]
struct Names {
    providers: BTreeSet<String>,
    actions: BTreeSet<String>,
    filters: BTreeSet<String>,
    executions: BTreeSet<String>,
}

fn names(steps: &[Step]) -> Names {
    let mut n = Names::default();
    let mut stack: Vec<&[Step]> = vec![steps];
    while let Some(steps) = stack.pop() {
        for step in steps {
            match step {
                Step::Action(a) => {
                    n.providers.extend(a.provider.clone());
                    n.actions.extend(a.custom_action.clone());
                    n.filters.extend(a.filter.clone());
                    n.executions.extend(a.execution_policies.iter().cloned());
                }
                Step::Condition(c) | Step::ConditionMerge(c) => {
                    stack.push(&c.yes);
                    stack.push(&c.no);
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => {
                    stack.extend(s.branches.values().map(Vec::as_slice));
                }
                _ => {}
            }
        }
    }
    n
}

/// An entity chosen by the name, so placeholder policies cover every entity.
fn entity_for(name: &str) -> Entity {
    match name.bytes().fold(0u8, |a, b| a.wrapping_add(b)) % 4 {
        0 => Entity::Order,
        1 => Entity::OrderLine,
        2 => Entity::FulfillmentOrder,
        _ => Entity::FulfillmentOrderLine,
    }
}

/// The `flow` target. Never panics on any input; errors are expected.
pub fn flow(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let flow = match Flow::from_json(text) {
        Ok(f) => f,
        Err(e) => return trace!("flow: parse: {e}"),
    };
    // The JSON form is the flow's storage form: it must read back as the same flow.
    let again = Flow::from_json(&flow.to_json());
    assert!(
        again.as_ref().is_ok_and(|a| a == &flow),
        "flow JSON round trip changed the flow:\n  read back: {again:?}\n  original:  {flow:?}"
    );
    // Drawing works on any parsed flow, valid or not.
    let _ = render::mermaid(&flow);
    let _ = render::dot(&flow);
    if let Err(e) = validate(&flow) {
        return trace!("flow: validate: {e}");
    }
    block_on(publish(flow));
}

async fn publish(flow: Flow) {
    let n = names(&flow.steps);
    let clock = ManualClock::new(Timestamp(1_000_000));
    let mut builder = Engine::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .config(
            Config::default()
                .with_max_steps_per_turn(500)
                .with_max_journey(200),
        );
    for p in &n.providers {
        builder = builder.provider(MemoryProvider::new(p.clone()));
    }
    for a in &n.actions {
        builder = builder.action(
            a.clone(),
            orderflow::action_fn(|_cx| Box::pin(async { Ok(()) })),
        );
    }
    for f in &n.filters {
        // Admits what a real filter might: records with something in them.
        builder = builder.policy(filter_fn(f.clone(), entity_for(f), |r| match r {
            RecordRef::Order(o) => o.ship_to.country.is_some(),
            RecordRef::Line(_, l) => l.quantity >= orderflow::Decimal::from(5),
            _ => true,
        }));
    }
    for e in n.executions.difference(&n.filters) {
        let criticality = if e.len() % 2 == 0 {
            Criticality::Critical
        } else {
            Criticality::Information
        };
        builder = builder.policy(execution_fn(e.clone(), entity_for(e), criticality, |_| {
            Check::Passed
        }));
    }
    let engine = builder
        .build()
        .await
        .expect("an engine on a memory store with distinct names builds");
    if let Err(e) = engine.create_flow(flow.clone()).await {
        return trace!("flow: create: {e}");
    }
    if let Err(e) = engine.publish(&flow.name).await {
        return trace!("flow: publish: {e}");
    }
    trace!("flow: published '{}'", flow.name);
    let _ = engine.analyze(&flow, &[]);
    let order = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_order_source("BigCommerce")
        .with_line(OrderLine::new("1", "Surface Pen", 150))
        .with_line(OrderLine::new("2", "Surface Pen", 3));
    let _ = engine.simulate(&flow, &order).await;
    let receipt = engine.submit(Event::new_order(order)).await;
    trace!("flow: submit: {receipt:?}");
    if receipt.is_ok() {
        engine
            .journey("SO-1")
            .await
            .expect("the journey of an accepted order is readable");
    }
}
