//! What every simulated EC2 call goes through: the time it takes, the faults and refusals of the world, and the
//! record of the effect it made.

use super::super::lock;
use super::super::world::World;
use super::{SimEc2, SimEffect};
use crate::core::errors::PortError;
use crate::core::ids::ImageId;
use crate::core::image::ImageInfo;

impl SimEc2 {
    /// Every call yields to the scheduler; with `SimConfig::call_latency_ms` it takes that long (tokio's clock:
    /// concurrent calls overlap, as real ones do).
    pub(super) async fn latency(&self) {
        let ms = lock(&self.world).config.call_latency_ms;
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }

    pub(super) fn record(&self, w: &mut World, op: &'static str, target: impl ToString, detail: String) {
        let effect = SimEffect {
            op,
            account: self.account.clone(),
            region: self.region.clone(),
            target: target.to_string(),
            detail,
        };
        w.effects.push(effect);
    }

    /// Counts the call; answers as STS would for a role that refuses the replicator, and with injected
    /// throttling.
    pub(super) fn call<'a>(&self, w: &'a mut World, op: &'static str) -> Result<&'a mut World, PortError> {
        if w.faults.halted {
            return Err(PortError::transient("Halted", format!("{op}: the invocation has stopped")));
        }
        if w.denied_roles.contains(&self.account) {
            *w.calls.entry(op).or_default() += 1;
            return Err(PortError::permanent(
                "AssumeRoleDenied",
                format!("{op}: STS refused to let the replicator assume the role of {}: AccessDenied", self.account),
            ));
        }
        if w.disabled_regions.contains(&self.region) {
            *w.calls.entry(op).or_default() += 1;
            return Err(PortError::from_code(
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            ));
        }
        w.ec2_call(op, &self.account, &self.region)?;
        Ok(w)
    }

    /// DisableImage / EnableImage: [`World::set_disabled`].
    pub(super) async fn set_disabled(&self, id: &ImageId, disabled: bool, op: &'static str) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, op)?;
        w.set_disabled(&self.region, &self.account, id, disabled)?;
        self.record(w, op, id, String::new());
        Ok(())
    }

    pub(super) fn own_images(&self, keep: impl Fn(&ImageInfo) -> bool) -> Vec<ImageInfo> {
        let mut w = lock(&self.world);
        w.settle(&self.region);
        w.images
            .get(&self.region)
            .map(|m| {
                m.values()
                    .filter(|i| i.info.owner.as_ref() == Some(&self.account) && keep(&i.info))
                    .map(|i| i.info.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
