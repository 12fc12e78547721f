//! What a message may ask for: only a narrowing of the operator's configuration. Work items and continuations
//! travel the same queue, which anyone allowed to send to it can write: no field of a message can add a
//! region, an account or a key, or turn off encryption the operator asked for. Pure.

use super::ids::{AccountId, Place, Region};
use super::job::Job;

/// The configuration a message is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// TARGET_REGIONS.
    pub target_regions: &'a [Region],
    /// TARGET_ACCOUNTS.
    pub target_accounts: &'a [AccountId],
    /// ENCRYPT_COPIES.
    pub encrypt_copies: bool,
}

impl Policy<'_> {
    /// A work item's `target_regions` must all be in TARGET_REGIONS; one that is not refuses the whole item, so
    /// that a typo never silently becomes a narrower replication.
    pub fn check_targets(&self, requested: Option<&[Region]>) -> Result<(), String> {
        let outside: Vec<&str> = requested
            .unwrap_or_default()
            .iter()
            .filter(|r| !self.target_regions.contains(r))
            .map(Region::as_str)
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        Err(format!(
            "target_regions {} not in TARGET_REGIONS ({}): a work item may only narrow the configured regions; \
             the item is refused whole and nothing was copied",
            outside.join(", "),
            self.target_regions.iter().map(Region::as_str).collect::<Vec<_>>().join(", ")
        ))
    }

    /// `"encrypted": false` cannot turn off ENCRYPT_COPIES.
    pub fn check_encryption(&self, requested: Option<bool>) -> Result<(), String> {
        if self.encrypt_copies && requested == Some(false) {
            return Err("\"encrypted\": false is refused: ENCRYPT_COPIES requires every copy to be encrypted".into());
        }
        Ok(())
    }

    /// A continuation's job must name a place the configuration has: this account in a TARGET_REGIONS region,
    /// or a TARGET_ACCOUNTS account there or in the job's source region.
    pub fn check_job(&self, job: &Job) -> Result<(), String> {
        self.check_encryption(job.encrypt)?;
        self.check_place(&job.place(), &job.source_region).map_err(|e| format!("{e}; the job is refused"))
    }

    /// Whether the configuration gives a source in `source_region` a copy at `place`: a configured target
    /// account (in a destination region or the source region), or this account in a destination region.
    pub fn check_place(&self, place: &Place, source_region: &Region) -> Result<(), String> {
        match &place.account {
            Some(account) if !self.target_accounts.contains(account) => {
                Err(format!("account {account} is not in TARGET_ACCOUNTS"))
            }
            Some(_) if &place.region == source_region => Ok(()),
            _ if self.target_regions.contains(&place.region) => Ok(()),
            _ => Err(format!("region {} is not in TARGET_REGIONS", place.region)),
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
