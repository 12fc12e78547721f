//! The outputs port over aws-sdk-eventbridge (PutEvents on the home region's default bus) and aws-sdk-ssm
//! (GetParameter/PutParameter in each place, with that place's credentials: a target account's through its role).

use super::ec2::PlaceConfigs;
use super::port_error;
use crate::core::errors::PortError;
use crate::core::ids::{ImageId, Place};
use crate::ports::{OutgoingEvent, Outputs, PortFuture, EVENT_SOURCE};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_ssm::types::ParameterType;
use std::collections::HashMap;
use std::sync::Mutex;

/// PutEvents takes at most 10 entries per call.
const ENTRIES_PER_CALL: usize = 10;

pub struct AwsOutputs {
    events: aws_sdk_eventbridge::Client,
    places: PlaceConfigs,
    ssm: Mutex<HashMap<Place, aws_sdk_ssm::Client>>,
}

impl AwsOutputs {
    /// `events` is the home region's EventBridge client; SSM clients are made per place on first use.
    pub fn new(events: aws_sdk_eventbridge::Client, places: PlaceConfigs) -> Self {
        Self { events, places, ssm: Mutex::new(HashMap::new()) }
    }

    /// Uses `client` for SSM at `place` (tests answer its calls with aws-smithy-mocks).
    pub fn with_ssm_client(self, place: &Place, client: aws_sdk_ssm::Client) -> Self {
        self.ssm.lock().unwrap_or_else(|e| e.into_inner()).insert(place.clone(), client);
        self
    }

    fn ssm(&self, place: &Place) -> Result<aws_sdk_ssm::Client, PortError> {
        let mut clients = self.ssm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(place) {
            return Ok(c.clone());
        }
        let config = self.places.config(place)?;
        let client = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&config)
                .region(aws_sdk_ssm::config::Region::new(place.region.to_string()))
                .build(),
        );
        clients.insert(place.clone(), client.clone());
        Ok(client)
    }
}

impl Outputs for AwsOutputs {
    fn publish<'a>(&'a self, events: &'a [OutgoingEvent]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            for chunk in events.chunks(ENTRIES_PER_CALL) {
                let entries = chunk
                    .iter()
                    .map(|e| {
                        PutEventsRequestEntry::builder()
                            .source(EVENT_SOURCE)
                            .detail_type(&e.detail_type)
                            .detail(e.detail.to_string())
                            .set_resources(Some(e.resources.clone()))
                            .build()
                    })
                    .collect();
                let out = self
                    .events
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| port_error("PutEvents", e))?;
                if out.failed_entry_count() > 0 {
                    let first = out.entries().iter().find(|e| e.error_code().is_some());
                    let code = first.and_then(|e| e.error_code()).unwrap_or("InternalFailure");
                    let message = first.and_then(|e| e.error_message()).unwrap_or("");
                    return Err(PortError::from_code(
                        code,
                        format!(
                            "PutEvents: {} of {} entries refused: {message}",
                            out.failed_entry_count(),
                            chunk.len()
                        ),
                    ));
                }
            }
            Ok(())
        })
    }

    fn parameter<'a>(&'a self, place: &'a Place, name: &'a str) -> PortFuture<'a, Option<String>> {
        Box::pin(async move {
            match self.ssm(place)?.get_parameter().name(name).send().await {
                Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
                Err(e) => {
                    let err = port_error("GetParameter", e);
                    if err.code == "ParameterNotFound" {
                        Ok(None)
                    } else {
                        Err(err)
                    }
                }
            }
        })
    }

    fn put_image_parameter<'a>(&'a self, place: &'a Place, name: &'a str, image: &'a ImageId) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ssm(place)?
                .put_parameter()
                .name(name)
                .value(image.as_str())
                .r#type(ParameterType::String)
                .data_type("aws:ec2:image")
                .overwrite(true)
                .send()
                .await
                .map_err(|e| port_error("PutParameter", e))?;
            Ok(())
        })
    }
}
