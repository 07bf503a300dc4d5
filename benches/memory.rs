//! Memory: heap bytes per execution parked on an input event. 100,000 orders each start the
//! reference lab's first step (header validation on "New Order"), which passes, and then
//! wait at a step that takes "Shipped" (`support::waiting`); the engine keeps them on the
//! memory store. Measured
//! with a counting global allocator (`allocation-counter`) as the bytes still allocated after
//! the submits, on one thread. The baseline, measured the same way in the same run, is the
//! bare order documents held in a `Vec`; the figure is the difference per execution (goal:
//! at most 512 B beyond the order document). A plain `main`, not criterion: it prints its
//! figures.
//!
//! ```text
//! cargo bench --bench memory
//! ```

mod support;

use orderflow::Event;
use orderflow::document::{Order, OrderLine};

const EXECUTIONS: u64 = 100_000;

fn main() {
    // `cargo bench` passes criterion's flags (`--bench`, `--quick`); this bench takes none.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let engine = rt.block_on(support::waiting::engine());
    // Warm the runtime and the engine's maps so their one-time allocations are not counted.
    rt.block_on(engine.submit(Event::new_order(support::one_line_order(u64::MAX))))
        .expect("submitted");

    let start = std::time::Instant::now();
    let mut documents: Vec<Order> = Vec::new();
    let baseline = allocation_counter::measure(|| {
        documents = (0..EXECUTIONS).map(support::one_line_order).collect();
    });
    drop(documents);

    let engine_bytes = allocation_counter::measure(|| {
        rt.block_on(async {
            for i in 0..EXECUTIONS {
                engine
                    .submit(Event::new_order(support::one_line_order(i)))
                    .await
                    .expect("submitted");
            }
        });
    });
    let waiting = rt
        .block_on(engine.order_state("SO-0"))
        .expect("loads")
        .expect("stored")
        .executions()[0]
        .status();
    assert_eq!(waiting, orderflow::execution::ExecutionStatus::Waiting);

    let per_document = baseline.bytes_current as f64 / EXECUTIONS as f64;
    let per_execution = engine_bytes.bytes_current as f64 / EXECUTIONS as f64;
    println!("memory/parked_executions: {EXECUTIONS} executions waiting for an event");
    println!("  baseline (order documents in a Vec): {per_document:>8.0} bytes per order");
    println!("  engine (documents and executions):   {per_execution:>8.0} bytes per order");
    println!(
        "  per waiting execution beyond the document: {:.0} bytes (goal: at most 512)",
        per_execution - per_document
    );
    println!("  took {:.1} s", start.elapsed().as_secs_f64());

    // Allocator traffic of one reference-lab order, for profiling the hot path.
    let lab = rt.block_on(support::lab_engine());
    rt.block_on(lab.submit(Event::new_order(support::lab_order(u64::MAX))))
        .expect("submitted");
    const LAB_ORDERS: u64 = 1_000;
    let events: Vec<Event> = (0..LAB_ORDERS)
        .map(|i| Event::new_order(support::lab_order(i)))
        .collect();
    let traffic = allocation_counter::measure(|| {
        rt.block_on(async {
            for event in events {
                lab.submit(event).await.expect("submitted");
            }
        });
    });
    println!(
        "memory/reference_lab: {:.0} allocations, {:.0} bytes allocated per order",
        traffic.count_total as f64 / LAB_ORDERS as f64,
        traffic.bytes_total as f64 / LAB_ORDERS as f64
    );
    if std::env::var_os("ORDERFLOW_SIZES").is_some() {
        use std::mem::size_of;
        println!(
            "  sizes: Order {} OrderLine {} OrderState {} Execution {} TimelineEntry {} StepRow {}",
            size_of::<Order>(),
            size_of::<OrderLine>(),
            size_of::<orderflow::execution::OrderState>(),
            size_of::<orderflow::execution::Execution>(),
            size_of::<orderflow::journey::TimelineEntry>(),
            size_of::<orderflow::journey::StepRow>(),
        );
    }
}
