//! Every integration test in one crate: one binary to build and link instead of one per file (issue 30).
//! Each module is one concern; `common` holds what they share.

mod after_replication_mocks;
mod after_replication_moto;
mod after_replication_sim;
mod cargo_lambda;
mod common;
mod copy_events_sim;
mod copy_rules_sim;
mod cross_account_moto;
mod cross_account_sim;
mod ctl;
mod disable_with_source_sim;
mod docs;
mod edited_messages;
mod end_to_end_moto;
mod error_mapping;
mod events_files;
mod fault_schedules;
mod forged_tags;
mod hostile_input;
mod leases_mocks;
mod leases_moto;
mod lifecycle_sim;
mod metrics_sim;
mod outputs_moto;
mod outputs_sim;
mod pipeline_sim;
mod published_samples;
mod routing_moto;
mod rules_moto;
mod rules_sim;
mod status_moto;
mod status_sim;
mod sweep_sim;
mod templates;
mod time_based_sim;
