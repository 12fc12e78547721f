//! Launch templates in the simulated world: versions per (owner, region, id or name), and the versions made per
//! ClientToken (a token used again answers with its version, as EC2 does).

use super::world::World;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::launch_templates::Version;

fn no_template(template: &str) -> PortError {
    PortError::from_code(
        "InvalidLaunchTemplateName.NotFoundException",
        format!("launch template {template} does not exist"),
    )
}

impl World {
    /// DescribeLaunchTemplateVersions.
    pub(super) fn template_versions(
        &self,
        account: &AccountId,
        region: &Region,
        template: &str,
    ) -> Result<Vec<Version>, PortError> {
        let key = (account.clone(), region.clone(), template.to_string());
        self.launch_templates.get(&key).cloned().ok_or_else(|| no_template(template))
    }

    /// CreateLaunchTemplateVersion from version `from` with `image`: the version's number, and whether it is new.
    pub(super) fn new_template_version(
        &mut self,
        account: &AccountId,
        region: &Region,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> Result<(i64, bool), PortError> {
        let key = (account.clone(), region.clone(), template.to_string());
        let token_key = (account.clone(), region.clone(), token.to_string());
        if let Some(version) = self.launch_template_tokens.get(&token_key) {
            return Ok((*version, false));
        }
        let versions = self.launch_templates.get_mut(&key).ok_or_else(|| no_template(template))?;
        if !versions.iter().any(|v| v.number == from) {
            return Err(PortError::from_code(
                "InvalidLaunchTemplateId.VersionNotFound",
                format!("{template} has no version {from}"),
            ));
        }
        let number = versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
        versions.push(Version { number, image: Some(image.clone()), is_default: false });
        self.launch_template_tokens.insert(token_key, number);
        Ok((number, true))
    }

    /// ModifyLaunchTemplate's default version.
    pub(super) fn set_default_template_version(
        &mut self,
        account: &AccountId,
        region: &Region,
        template: &str,
        version: i64,
    ) -> Result<(), PortError> {
        let key = (account.clone(), region.clone(), template.to_string());
        let versions = self.launch_templates.get_mut(&key).ok_or_else(|| no_template(template))?;
        for v in versions.iter_mut() {
            v.is_default = v.number == version;
        }
        Ok(())
    }
}
