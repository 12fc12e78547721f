//! The pure core: what to copy where, the state of a work item, and what errors mean. It knows no SDK.

pub mod admission;
pub mod copy_rules;
pub mod emf;
pub mod errors;
pub mod facts;
pub mod ids;
pub mod image;
pub mod job;
pub mod launch_templates;
pub mod lifecycle;
pub mod messages;
pub mod parameters;
pub mod place_step;
pub mod plan;
pub mod protection;
pub mod provenance;
pub mod replication_rules;
pub mod retention;
pub mod share;
pub mod status;
pub mod step;
pub mod sweep;
pub mod time;
pub mod trust;
pub mod waiting;
pub mod watch;
