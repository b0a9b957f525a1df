use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;

/// A user's id: a UUIDv7, so ids sort by creation time and can serve as page cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(Uuid);

impl UserId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id as 32 hex digits, without hyphens (parses back with [`UserId::parse`]).
    pub fn simple(self) -> String {
        self.0.simple().to_string()
    }

    /// # Errors
    /// Refuses anything that is not a UUID.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        Uuid::parse_str(input)
            .map(Self)
            .map_err(|_| DomainError(format!("`{input}` is not a valid id")))
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for UserId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation() {
        let first = UserId::generate();
        let second = UserId::generate();
        assert!(first < second);
        assert!(first.to_string() < second.to_string());
    }
}
