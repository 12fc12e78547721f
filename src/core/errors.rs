//! Error kinds and their retry class. Adapters translate every SDK error into a [`PortError`] using the
//! AWS error code (never the message text); the core decides what to do from the [`ErrorClass`].

use std::fmt;

/// What the product does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The API asked us to slow down: retry later with backoff.
    Throttled,
    /// The destination region has no room for another copy (the concurrent-copy limit): wait for capacity.
    Capacity,
    /// A passing fault (service error, timeout, network): retry with backoff, a bounded number of times.
    Transient,
    /// Retrying cannot help: dead-letter with the reason.
    Permanent,
}

/// How each AWS error code the product can meet is treated. Codes not listed are [`ErrorClass::Transient`]
/// (and therefore bounded by the job's retry budget).
pub const ERROR_TABLE: &[(&str, ErrorClass, &str)] = &[
    ("RequestLimitExceeded", ErrorClass::Throttled, "EC2 API request rate exceeded"),
    ("Throttling", ErrorClass::Throttled, "API request rate exceeded"),
    ("ThrottlingException", ErrorClass::Throttled, "API request rate exceeded"),
    ("RequestThrottled", ErrorClass::Throttled, "SQS request rate exceeded"),
    ("ProvisionedThroughputExceededException", ErrorClass::Throttled, "DynamoDB request rate exceeded"),
    ("ResourceLimitExceeded", ErrorClass::Capacity, "too many concurrent AMI copies in the destination region"),
    ("InternalError", ErrorClass::Transient, "EC2 internal error"),
    ("InternalFailure", ErrorClass::Transient, "internal error"),
    ("ServiceUnavailable", ErrorClass::Transient, "service unavailable"),
    ("Unavailable", ErrorClass::Transient, "service unavailable"),
    ("RequestTimeout", ErrorClass::Transient, "request timed out"),
    ("IncorrectState", ErrorClass::Transient, "the resource is not in a state that allows this yet"),
    ("InvalidAMIID.NotFound", ErrorClass::Permanent, "the image does not exist (or is not visible to this account)"),
    ("InvalidAMIID.Malformed", ErrorClass::Permanent, "the image id is malformed"),
    ("InvalidAMIID.Unavailable", ErrorClass::Permanent, "the image is deregistered or not available"),
    ("InvalidSnapshot.NotFound", ErrorClass::Permanent, "a snapshot of the image does not exist or is not readable"),
    ("InvalidParameterValue", ErrorClass::Permanent, "a request parameter was rejected"),
    ("InvalidParameter", ErrorClass::Permanent, "a request parameter was rejected"),
    ("InvalidParameterCombination", ErrorClass::Permanent, "request parameters cannot be combined"),
    ("InvalidRequest", ErrorClass::Permanent, "the request was rejected"),
    ("MissingParameter", ErrorClass::Permanent, "a required parameter is missing"),
    ("UnsupportedOperation", ErrorClass::Permanent, "the operation is not supported for this image"),
    ("IdempotentParameterMismatch", ErrorClass::Permanent, "a ClientToken was reused with other parameters"),
    ("UnauthorizedOperation", ErrorClass::Permanent, "the function's role is not allowed to do this"),
    ("AccessDenied", ErrorClass::Permanent, "access denied"),
    ("AccessDeniedException", ErrorClass::Permanent, "access denied"),
    ("AuthFailure", ErrorClass::Permanent, "credentials were rejected"),
    ("OptInRequired", ErrorClass::Permanent, "the account has not opted in to the region"),
    (
        "OperationNotPermitted",
        ErrorClass::Permanent,
        "not permitted (snapshots encrypted with the AWS-managed key aws/ebs cannot be shared)",
    ),
    ("ResourceNotFoundException", ErrorClass::Permanent, "the resource does not exist"),
    ("ParameterNotFound", ErrorClass::Permanent, "the SSM parameter does not exist"),
    ("ParameterLimitExceeded", ErrorClass::Permanent, "too many SSM parameters in this account and region"),
    ("HierarchyLevelLimitExceededException", ErrorClass::Permanent, "the SSM parameter name has too many levels"),
    ("InvalidDataType", ErrorClass::Permanent, "the parameter value is not an image this account can use"),
    ("AssumeRoleDenied", ErrorClass::Permanent, "the target account's role could not be assumed"),
    ("InvalidClientTokenId", ErrorClass::Permanent, "credentials were rejected"),
    ("UnrecognizedClientException", ErrorClass::Permanent, "credentials were rejected"),
    ("DisabledException", ErrorClass::Permanent, "the KMS key is disabled"),
    ("KMSInvalidStateException", ErrorClass::Permanent, "the KMS key is not in a usable state (pending deletion?)"),
    ("InvalidKeyUsageException", ErrorClass::Permanent, "the KMS key cannot be used for EBS encryption"),
    ("NotFoundException", ErrorClass::Permanent, "the KMS key does not exist in this region"),
    ("KeyUnavailableException", ErrorClass::Transient, "the KMS key is temporarily unavailable"),
    ("DependencyTimeoutException", ErrorClass::Transient, "KMS timed out"),
    ("AWS.SimpleQueueService.NonExistentQueue", ErrorClass::Permanent, "the queue does not exist"),
    ("QueueDoesNotExist", ErrorClass::Permanent, "the queue does not exist"),
    ("MessageTooLong", ErrorClass::Permanent, "the message is over the queue's maximum message size"),
    ("BatchRequestTooLong", ErrorClass::Permanent, "the batch is over the queue's maximum message size"),
];

/// The class of an AWS error code (see [`ERROR_TABLE`]).
pub fn classify(code: &str) -> ErrorClass {
    ERROR_TABLE.iter().find(|(c, _, _)| *c == code).map(|(_, class, _)| *class).unwrap_or(ErrorClass::Transient)
}

/// An error as a port reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PortError {
    pub class: ErrorClass,
    /// The AWS error code, or a short name of the fault (`dispatch`, `timeout`, ...) when there is none.
    pub code: String,
    pub message: String,
}

impl PortError {
    /// An error from an AWS error code, classified by [`classify`].
    pub fn from_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        let code = code.into();
        Self { class: classify(&code), code, message: message.into() }
    }

    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Transient, code: code.into(), message: message.into() }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, code: code.into(), message: message.into() }
    }

    /// Not an AWS answer: the product's own pacing says "not now" (the job waits as for capacity).
    pub fn paced(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Capacity, code: PACED.into(), message: message.into() }
    }
}

/// The code of [`PortError::paced`].
pub const PACED: &str = "Paced";

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = ERROR_TABLE.iter().find(|(c, _, _)| *c == self.code).map(|(_, _, m)| *m);
        match meaning {
            Some(m) => write!(f, "{} ({m}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
