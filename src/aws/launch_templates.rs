//! The launch-template calls of the EC2 port (LAUNCH_TEMPLATES): a template is named by its id (`lt-...`) or name.

use super::ec2::AwsEc2;
use crate::core::errors::PortError;
use crate::core::ids::ImageId;
use crate::core::launch_templates::Version;
use aws_sdk_ec2::types::RequestLaunchTemplateData;

/// The call for `template`: by id when it is one (`lt-...`), else by name (each call's builder has both setters).
macro_rules! for_template {
    ($call:expr, $template:expr) => {
        if $template.starts_with("lt-") {
            $call.launch_template_id($template)
        } else {
            $call.launch_template_name($template)
        }
    };
}

impl AwsEc2 {
    pub(super) async fn template_versions(&self, template: &str) -> Result<Vec<Version>, PortError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let call = for_template!(self.client().describe_launch_template_versions().set_next_token(token), template);
            let page = call.send().await.map_err(|e| self.error("DescribeLaunchTemplateVersions", e))?;
            for v in page.launch_template_versions() {
                let Some(number) = v.version_number() else { continue };
                let image = v.launch_template_data().and_then(|d| d.image_id()).and_then(|i| ImageId::parse(i).ok());
                out.push(Version { number, image, is_default: v.default_version() == Some(true) });
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub(super) async fn create_template_version(
        &self,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> Result<i64, PortError> {
        let call = self
            .client()
            .create_launch_template_version()
            .source_version(from.to_string())
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image.as_str()).build())
            .version_description(format!("ami-replicator: {image}"))
            .client_token(token);
        let out =
            for_template!(call, template).send().await.map_err(|e| self.error("CreateLaunchTemplateVersion", e))?;
        out.launch_template_version().and_then(|v| v.version_number()).ok_or_else(|| {
            PortError::transient("NoVersion", format!("CreateLaunchTemplateVersion on {template} returned no version"))
        })
    }

    pub(super) async fn set_default_template_version(&self, template: &str, version: i64) -> Result<(), PortError> {
        let call = self.client().modify_launch_template().default_version(version.to_string());
        for_template!(call, template).send().await.map_err(|e| self.error("ModifyLaunchTemplate", e))?;
        Ok(())
    }
}
