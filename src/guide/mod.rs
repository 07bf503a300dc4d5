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
//! - [`testing`]: testing host flows, actions and stores with the testkit.

#[doc = include_str!("rules.md")]
pub mod rules {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("diagrams.md")]
pub mod diagrams {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("limits.md")]
pub mod limits {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("semantics.md")]
pub mod semantics {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("postgres.md")]
pub mod postgres {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("metrics.md")]
pub mod metrics {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("guarantees.md")]
pub mod guarantees {
    #[allow(unused_imports)]
    use crate::*;
}

#[doc = include_str!("performance.md")]
pub mod performance {
    #[allow(unused_imports)]
    use crate::*;
}

pub mod testing;
