//! Progressive rollouts: a split route's canary gains weight step by step
//! while its figures stay within bounds of the stable cluster's, and loses
//! it all at once when they do not.
//!
//! [`machine`] decides, without clocks or network; [`Rollouts`] keeps
//! every live rollout of the running table, feeds it the workers' figures
//! and writes the weights it decides into the next table.

mod live;
pub mod machine;

pub use self::live::{Action, ActionError, Event, RolloutFigures, Rollouts, HISTORY};
pub mod metrics;
pub mod text;
