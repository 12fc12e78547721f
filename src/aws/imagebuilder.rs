//! The Image Builder port over aws-sdk-imagebuilder: one call, GetImage.

use super::port_error;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::ports::{BuiltAmi, ImageBuilder};
use aws_sdk_imagebuilder::Client;
use tracing::warn;

#[derive(Clone, Debug)]
pub struct AwsImageBuilder {
    client: Client,
}

impl AwsImageBuilder {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ImageBuilder for AwsImageBuilder {
    async fn output_amis(&self, arn: &str) -> Result<Vec<BuiltAmi>, PortError> {
        let output =
            self.client.get_image().image_build_version_arn(arn).send().await.map_err(|e| port_error("GetImage", e))?;
        let amis = output.image().and_then(|i| i.output_resources()).map(|o| o.amis()).unwrap_or_default();
        Ok(amis
            .iter()
            .filter_map(|ami| {
                let parsed = (ImageId::parse(ami.image()?), Region::parse(ami.region()?));
                match parsed {
                    (Ok(image), Ok(region)) => Some(BuiltAmi {
                        region,
                        image,
                        account: ami.account_id().and_then(|a| AccountId::parse(a).ok()),
                    }),
                    (image, region) => {
                        warn!(image = ?image.err(), region = ?region.err(), "ignoring an Image Builder output AMI");
                        None
                    }
                }
            })
            .collect())
    }
}
