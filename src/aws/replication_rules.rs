//! REPLICATION_RULES given as `ssm:/path`: the document is read with one GetParameter (SecureString decrypted)
//! at start-up, before the configuration is validated.

use super::port_error;
use crate::core::errors::PortError;

/// The rules document `value` names: itself, or the parameter's value for `ssm:NAME`. `None` when unset.
pub async fn rules_document(ssm: &aws_sdk_ssm::Client, value: Option<String>) -> Result<Option<String>, PortError> {
    let Some(value) = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else { return Ok(None) };
    let Some(name) = value.strip_prefix("ssm:") else { return Ok(Some(value)) };
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| port_error(&format!("SSM GetParameter {name} (REPLICATION_RULES)"), e))?;
    Ok(out.parameter().and_then(|p| p.value()).map(str::to_string))
}

/// The configuration from the environment, REPLICATION_RULES read from SSM when it names a parameter.
pub async fn config_from_env(sdk: &aws_config::SdkConfig) -> Result<crate::config::Config, String> {
    let lookup = |name: &str| std::env::var(name).ok();
    config_from(sdk, &lookup).await
}

/// The configuration from `lookup`, REPLICATION_RULES read from SSM when it names a parameter.
pub async fn config_from(
    sdk: &aws_config::SdkConfig,
    lookup: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<crate::config::Config, String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let document = rules_document(&ssm, lookup("REPLICATION_RULES")).await.map_err(|e| e.to_string())?;
    crate::config::Config::from_lookup(&|name| match name {
        "REPLICATION_RULES" => document.clone(),
        other => lookup(other),
    })
    .map_err(|e| e.to_string())
}
