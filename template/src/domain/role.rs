use juniper::GraphQLEnum;
use serde::{Deserialize, Serialize};

/// What a user may do. Every account starts as `User`; admins are made with the
/// `create-admin` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, GraphQLEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Admin,
}
