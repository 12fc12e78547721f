//! The pure core: what to copy where, the state of a work item, and what errors mean. It knows no SDK.

pub mod admission;
pub mod emf;
pub mod errors;
pub mod facts;
pub mod finish;
pub mod ids;
pub mod image;
pub mod job;
pub mod launch_templates;
pub mod lifecycle;
pub mod messages;
pub mod parameters;
pub mod plan;
pub mod policy;
pub mod protection;
pub mod provenance;
pub mod region;
pub mod retention;
pub mod rules;
pub mod ruleset;
pub mod share;
pub mod status;
pub mod step;
pub mod sweep;
pub mod time;
pub mod waiting;
