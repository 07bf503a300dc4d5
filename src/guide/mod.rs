//! Guides: one page per topic, beyond the front page.
//!
//! - [`semantics`]: the execution contract and the choices the engine makes.
//! - [`rules`]: declarative rule policies.
//! - [`diagrams`]: validation, analysis, diagrams and the command-line tool.
//! - [`limits`]: limits on untrusted input, and secrets.
//! - [`guarantees`]: guarantees, and operating safely in real deployments.
//! - [`postgres`]: scale-out, TLS, host pools and migrations on PostgreSQL.
//! - [`metrics`]: the metrics the `metrics` feature records.
//! - [`performance`]: benchmarks, baselines and figures.
//! - [`testing`]: testing host flows, actions and stores with the testkit (feature
//!   `testing`).

pub mod rules {
    #![doc = include_str!("rules.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod diagrams {
    #![doc = include_str!("diagrams.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod limits {
    #![doc = include_str!("limits.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod semantics {
    #![doc = include_str!("semantics.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod postgres {
    #![doc = include_str!("postgres.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod metrics {
    #![doc = include_str!("metrics.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod guarantees {
    #![doc = include_str!("guarantees.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod performance {
    #![doc = include_str!("../../PERFORMANCE.md")]
    #[allow(unused_imports)]
    use crate::*;
}

pub mod testing {
    #![cfg_attr(feature = "testing", doc = include_str!("testing.md"))]
    #![cfg_attr(
        not(feature = "testing"),
        doc = "Testing host flows, custom actions and stores with the testkit, \
               `orderflow::testing`: this guide is in the documentation built with the \
               `testing` feature (docs.rs builds it)."
    )]
    #[allow(unused_imports)]
    use crate::*;
}
