//! Schema roots. Each module adds its fields here with one delegating resolver per field,
//! so the public API is readable in one file; the resolvers live in the module.

use juniper::{RootNode, graphql_object{% if auth %}, graphql_subscription{% endif %}};

use super::Context;
use super::GraphqlSettings;
use crate::health::HealthReport;

pub struct Query;

#[graphql_object]
#[graphql(context = Context)]
impl Query {
    /// Version of this API (the crate version).
    fn api_version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// Readiness of the service and of each dependency, checked at most once a second.
    async fn health(context: &Context) -> HealthReport {
        context.state.readiness.report().await
    }
{%- if auth %}

    /// The signed-in user.
    async fn me(context: &Context) -> Result<crate::storage::users::User, crate::error::AppError> {
        crate::auth::resolvers::me(context).await
    }

    /// Users, oldest first, a page at a time, optionally only those whose email starts
    /// with `emailPrefix` or who have `role`. Admins only.
    async fn users(
        context: &Context,
        #[graphql(default = 20)] first: i32,
        after: Option<juniper::ID>,
        email_prefix: Option<String>,
        role: Option<crate::domain::Role>,
    ) -> Result<crate::auth::resolvers::UserPage, crate::error::AppError> {
        let filter = crate::storage::users::UserFilter { email_prefix, role };
        crate::auth::resolvers::users(context, first, after, filter).await
    }

    /// The signed-in user's live sessions, newest first.
    async fn sessions(context: &Context) -> Result<Vec<crate::auth::account::Session>, crate::error::AppError> {
        crate::auth::account::sessions(context).await
    }

    /// What admins did, newest first, a page at a time. Admins only.
    async fn audit_log(
        context: &Context,
        #[graphql(default = 20)] first: i32,
        after: Option<juniper::ID>,
    ) -> Result<crate::auth::administration::AuditPage, crate::error::AppError> {
        crate::auth::administration::audit_log(context, first, after).await
    }
{%- endif %}
}
{%- if auth %}

pub struct Mutation;

#[graphql_object]
#[graphql(context = Context)]
impl Mutation {
    /// Creates an account. The answer is the same whether or not the email is taken.
    async fn register(
        context: &Context,
        email: String,
        password: String,
    ) -> Result<crate::auth::resolvers::RegisterPayload, crate::error::AppError> {
        crate::auth::resolvers::register(context, email, password).await
    }

    /// Starts a session: an HttpOnly cookie, or with `bearer: true` the token itself.
    async fn login(
        context: &Context,
        email: String,
        password: String,
        #[graphql(default = false)] bearer: bool,
    ) -> Result<crate::auth::resolvers::LoginPayload, crate::error::AppError> {
        crate::auth::resolvers::login(context, email, password, bearer).await
    }

    /// Finishes a sign-in that asked for a second factor, with a code from the
    /// authenticator app or an unused recovery code. Browsers are recognised by the
    /// cookie `login` set; `bearer: true` clients pass the `secondFactorToken` it gave.
    async fn complete_login(
        context: &Context,
        code: String,
        second_factor_token: Option<String>,
    ) -> Result<crate::auth::resolvers::LoginPayload, crate::error::AppError> {
        crate::auth::second_factor::resolvers::complete_login(context, code, second_factor_token).await
    }

    /// Ends this session.
    async fn logout(context: &Context) -> Result<bool, crate::error::AppError> {
        crate::auth::resolvers::logout(context).await
    }

    /// Ends every session of the signed-in user, on every device.
    async fn logout_everywhere(context: &Context) -> Result<bool, crate::error::AppError> {
        crate::auth::resolvers::logout_everywhere(context).await
    }

    /// Changes the password and ends every other session.
    async fn change_password(
        context: &Context,
        current_password: String,
        new_password: String,
    ) -> Result<bool, crate::error::AppError> {
        crate::auth::resolvers::change_password(context, current_password, new_password).await
    }

    /// Ends one of the signed-in user's sessions (from `sessions`), this one or another.
    async fn revoke_session(context: &Context, id: juniper::ID) -> Result<bool, crate::error::AppError> {
        crate::auth::account::revoke_session(context, &id).await
    }

    /// Proves the password again, so that this session may run sensitive operations for
    /// the next `auth.reauth_window_secs`.
    async fn reauthenticate(context: &Context, password: String) -> Result<bool, crate::error::AppError> {
        crate::auth::account::reauthenticate(context, password).await
    }

    /// Erases the signed-in account and everything kept about it. Needs a recent
    /// password proof (`reauthenticate`).
    async fn delete_account(context: &Context) -> Result<bool, crate::error::AppError> {
        crate::auth::account::delete_account(context).await
    }

    /// Shows a new TOTP secret for an authenticator app; nothing changes until
    /// `confirmTotp`. Needs a recent password proof.
    async fn set_up_totp(context: &Context) -> Result<crate::auth::second_factor::resolvers::TotpSetup, crate::error::AppError> {
        crate::auth::second_factor::resolvers::set_up_totp(context).await
    }

    /// Turns the second factor on with a first code from the app, and returns 10
    /// single-use recovery codes: shown this once, keep them somewhere safe.
    async fn confirm_totp(context: &Context, code: String) -> Result<Vec<String>, crate::error::AppError> {
        crate::auth::second_factor::resolvers::confirm_totp(context, code).await
    }

    /// Turns the second factor off. Needs a recent password proof.
    async fn disable_totp(context: &Context) -> Result<bool, crate::error::AppError> {
        crate::auth::second_factor::resolvers::disable_totp(context).await
    }

    /// Replaces the recovery codes with 10 new ones, shown this once. Needs a recent
    /// password proof.
    async fn regenerate_recovery_codes(context: &Context) -> Result<Vec<String>, crate::error::AppError> {
        crate::auth::second_factor::resolvers::regenerate_recovery_codes(context).await
    }

    /// Gives an account a role; the last admin keeps theirs. Admins only, with a recent
    /// password proof.
    async fn set_user_role(
        context: &Context,
        id: juniper::ID,
        role: crate::domain::Role,
    ) -> Result<crate::storage::users::User, crate::error::AppError> {
        crate::auth::administration::set_user_role(context, &id, role).await
    }

    /// Stops an account from signing in and ends its sessions. Admins only, with a
    /// recent password proof.
    async fn disable_user(
        context: &Context,
        id: juniper::ID,
        reason: String,
    ) -> Result<crate::storage::users::User, crate::error::AppError> {
        crate::auth::administration::disable_user(context, &id, reason).await
    }

    /// Lets a disabled account sign in again. Admins only, with a recent password proof.
    async fn enable_user(context: &Context, id: juniper::ID) -> Result<crate::storage::users::User, crate::error::AppError> {
        crate::auth::administration::enable_user(context, &id).await
    }
{%- if email %}

    /// Confirms the email address with the token from the confirmation mail.
    async fn confirm_email(context: &Context, token: String) -> Result<bool, crate::error::AppError> {
        crate::auth::email_flows::confirm_email(context, &token).await
    }

    /// Sends a new confirmation link. The answer is the same for unknown addresses.
    async fn resend_confirmation(context: &Context, email: String) -> Result<String, crate::error::AppError> {
        crate::auth::email_flows::resend_confirmation(context, email).await
    }

    /// Mails a password-reset link. The answer is the same for unknown addresses.
    async fn request_password_reset(context: &Context, email: String) -> Result<String, crate::error::AppError> {
        crate::auth::email_flows::request_password_reset(context, email).await
    }

    /// Sets a new password with the token from the reset mail; ends every session.
    async fn reset_password(
        context: &Context,
        token: String,
        new_password: String,
    ) -> Result<bool, crate::error::AppError> {
        crate::auth::email_flows::reset_password(context, &token, new_password).await
    }

    /// Mails a link to `newEmail` that moves the signed-in account there. Needs a recent
    /// password proof; nothing changes until the link is followed.
    async fn change_email(context: &Context, new_email: String) -> Result<String, crate::error::AppError> {
        crate::auth::email_flows::change_email(context, new_email).await
    }

    /// Mails a sign-in code to `email`, valid 3 minutes on this client only: a cookie, or
    /// with `bearer: true` the `loginCodeToken` of the answer. The answer is the same for
    /// every address.
    async fn request_login_code(
        context: &Context,
        email: String,
        #[graphql(default = false)] bearer: bool,
    ) -> Result<crate::auth::login_code::resolvers::LoginCodeRequest, crate::error::AppError> {
        crate::auth::login_code::resolvers::request_login_code(context, email, bearer).await
    }

    /// Signs in with the code from `requestLoginCode`'s mail (3 tries). An account with a
    /// second factor then waits for `completeLogin`.
    async fn login_with_code(
        context: &Context,
        code: String,
        login_code_token: Option<String>,
    ) -> Result<crate::auth::resolvers::LoginPayload, crate::error::AppError> {
        crate::auth::login_code::resolvers::login_with_code(context, code, login_code_token).await
    }

    /// Completes an email change with the token from its mail, signed in as the account
    /// that asked; ends the account's other sessions.
    async fn confirm_email_change(context: &Context, token: String) -> Result<bool, crate::error::AppError> {
        crate::auth::email_flows::confirm_email_change(context, &token).await
    }
{%- endif %}
}

pub struct Subscription;

#[graphql_subscription]
#[graphql(context = Context)]
impl Subscription {
    /// The signed-in account's security events, live, over the `/graphql` WebSocket
    /// (graphql-transport-ws), until the session ends: the event that ends it is the
    /// last, and the server closes the connection after it (4401).
    async fn account_events(context: &Context) -> Result<crate::auth::events::AccountEventStream, crate::error::AppError> {
        crate::auth::events::account_events(context).await
    }
}

pub type Schema = RootNode<Query, Mutation, Subscription>;

fn roots() -> Schema {
    Schema::new(Query, Mutation, Subscription)
}
{%- else %}

// No module adds mutations to this service yet: the README's "Extending" section says
// how to add the `Mutation` root.
pub type Schema = RootNode<Query, juniper::EmptyMutation<Context>, juniper::EmptySubscription<Context>>;

fn roots() -> Schema {
    Schema::new(Query, juniper::EmptyMutation::new(), juniper::EmptySubscription::new())
}
{%- endif %}

/// The schema with the configured depth and field limits, which juniper enforces while
/// parsing, before validation or execution.
pub fn build(settings: &GraphqlSettings) -> Schema {
    let schema = roots()
        .limit_depth(settings.max_depth.get())
        .limit_fields(settings.max_fields.get());
    if settings.introspection {
        schema
    } else {
        schema.disable_introspection()
    }
}

/// The schema in SDL, as printed by the `schema` subcommand.
pub fn sdl() -> String {
    roots().as_sdl()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema clients rely on is committed, so that a change to it is reviewed (and
    /// CI classifies it against the default branch's) instead of slipping in with code.
    #[test]
    fn schema_graphql_is_the_schema_this_code_serves() {
        let committed = include_str!("../../schema.graphql");
        let served = sdl();
        if committed != served {
            let changes = match crate::graphql::schema_diff::diff(committed, &served) {
                Ok(changes) if changes.is_empty() => "  descriptions or order only\n".to_owned(),
                Ok(changes) => changes.iter().map(|c| format!("  {c}\n")).collect(),
                Err(error) => format!("  {error:#}\n"),
            };
            panic!(
                "schema.graphql is not the schema this code serves:\n{changes}\
                 If the change is meant, run `cargo run -- schema > schema.graphql` and commit it."
            );
        }
    }
}
