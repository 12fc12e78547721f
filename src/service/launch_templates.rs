//! Launch templates that follow the copies (LAUNCH_TEMPLATES): once a copy is shared, its place's template gets a
//! version with the copy's image id (the default with LAUNCH_TEMPLATE_SET_DEFAULT). Observe (the template's
//! versions; the latest version's image, when it is a copy of ours, for its source's creation date), decide in
//! `core::launch_templates`, act (CreateLaunchTemplateVersion with a ClientToken of template and copy, so a retry
//! never makes a second version; ModifyLaunchTemplate).

use super::Replicator;
use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::ImageId;
use crate::core::job::Job;
use crate::core::launch_templates::{self, Update};
use crate::core::time::format_rfc3339;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use sha2::{Digest, Sha256};
use tracing::{error, info};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Points `template` at `copy`. A passing fault is returned (the share is retried); a permanent refusal (no
    /// such template, not allowed) is logged and the copy counts as shared, as for SSM parameters.
    pub(super) async fn update_launch_template(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        template: &str,
        job: &Job,
        copy: &ImageId,
        set_default: bool,
    ) -> Result<(), PortError> {
        match self.launch_template_step(ec2, template, job, copy, set_default).await {
            Ok(()) => Ok(()),
            Err(e) if e.class == ErrorClass::Permanent || e.code.starts_with("InvalidLaunchTemplate") => {
                error!(template = %template, copy = %copy, error = %e, "launch template not updated; the copy is shared anyway");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn launch_template_step(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        template: &str,
        job: &Job,
        copy: &ImageId,
        set_default: bool,
    ) -> Result<(), PortError> {
        let versions = ec2.launch_template_versions(template).await?;
        let latest_image = versions.iter().max_by_key(|v| v.number).and_then(|v| v.image.clone()).filter(|i| i != copy);
        let latest_source_created = match latest_image {
            Some(image) => {
                ec2.describe_own_images(&[image]).await?.first().and_then(|i| ec2.source_created(i)).map(format_rfc3339)
            }
            None => None,
        };
        let update = launch_templates::decide(
            copy,
            job.source_created.as_deref(),
            &versions,
            latest_source_created.as_deref(),
            set_default,
        );
        match update {
            Update::CreateVersion { from, set_default } => {
                let token = hex(&Sha256::digest(format!("ami-replicator/{template}/{copy}")));
                let version = ec2.create_launch_template_version(template, from, copy, &token).await?;
                if set_default {
                    ec2.set_default_launch_template_version(template, version).await?;
                }
                info!(template = %template, version, default = set_default, copy = %copy, "launch template version made");
            }
            Update::SetDefault { version } => {
                ec2.set_default_launch_template_version(template, version).await?;
                info!(template = %template, version, copy = %copy, "launch template default set");
            }
            Update::Nothing(why) => {
                info!(template = %template, copy = %copy, reason = %why, "launch template left as it is")
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
