//! Domain types that parse rather than validate: once a value exists, it is valid.

mod email;
mod password;
mod role;
mod user_id;

pub use email::Email;
pub use password::Password;
pub use role::Role;
pub use user_id::UserId;

/// Why a value was refused; the message is meant for the API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

impl From<DomainError> for crate::error::AppError {
    fn from(error: DomainError) -> Self {
        Self::BadUserInput(error.0)
    }
}
